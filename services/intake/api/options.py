"""The option fields of POST /detect/batch and POST /detect, checked before anything is stored.

Multipart fields arrive as strings (booleans as true/false/1/0, any case); a JSON body brings
real booleans and numbers. Both go through `parse_options`, which names every bad field.
A single detect takes every field of Resemble's POST /detect (docs/api.md says which are
implemented, which are accepted and echoed, which are refused); a batch takes Resemble's
batch fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import JsonValue, ValidationError

from contracts import problems as p
from contracts.events import DetectOptions
from services.intake.errors import ApiError

BOOLEANS = (
    "intelligence",
    "search_identity",
    "visualize",
    "audio_source_tracing",
    "use_llm",
    "zero_retention_mode",
    "face_only",
    "detect_watermark",
    "use_ood_detector",
    "wait_for_intelligence",
    "infer_from_intelligence",
)
NUMBERS = ("start_region", "end_region", "max_video_secs", "max_video_fps")
CHOICES = {"modality": ("audio", "video", "all"), "model_types": ("image", "talking_head")}
STRINGS = ("callback_url", "pipeline")
# Resemble add-ons this server does not offer: `false` is accepted, `true` is a 403 (as Resemble
# answers for a product the plan lacks) that names the field
NOT_OFFERED = {
    "signal": "Signal content analysis",
    "use_reverse_search": "reverse image search",
}
# the batch calls tracing `audio_source_tracing_enabled`; a single detect accepts both names
ALIASES = {"audio_source_tracing_enabled": "audio_source_tracing"}
MAX_PIPELINE = 200
_COMMON = {*BOOLEANS, *NUMBERS, *ALIASES, *STRINGS, "frame_length", "infer_from_intelligence"}
BATCH_FIELDS = frozenset(
    {"callback_url", "intelligence", "infer_from_intelligence", "search_identity", "visualize",
     "audio_source_tracing_enabled", "frame_length", "start_region", "end_region",
     "max_video_secs", "use_llm", "face_only", "zero_retention_mode"}
)  # fmt: skip
SINGLE_FIELDS = frozenset({*_COMMON, *CHOICES, *NOT_OFFERED})


def _bool(value: JsonValue) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0"):
        return False
    return None


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def parse_options(
    fields: Sequence[tuple[str, JsonValue]], allowed: frozenset[str]
) -> DetectOptions:
    """DetectOptions from request fields, or a 400 listing every problem by field name."""
    errors: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for name, raw in fields:
        if name not in allowed:
            errors.setdefault(name, []).append("unknown field")
            continue
        key = ALIASES.get(name, name)
        if key in values:
            errors.setdefault(name, []).append("given more than once")
        elif key in BOOLEANS:
            values[key] = flag = _bool(raw)
            if flag is None:
                errors.setdefault(name, []).append("must be true, false, 1 or 0")
        elif key in NUMBERS:
            values[key] = number = _number(raw)
            if number is None:
                errors.setdefault(name, []).append("must be a number")
        elif key == "frame_length":
            number = _number(raw)
            if number is None or not number.is_integer() or not 1 <= number <= 4:
                errors.setdefault(name, []).append("must be an integer from 1 to 4")
            values[key] = int(number) if number is not None and number.is_integer() else None
        elif key in CHOICES:
            values[key] = raw
            if raw not in CHOICES[key]:
                errors.setdefault(name, []).append(f"must be one of {', '.join(CHOICES[key])}")
        elif key in STRINGS:
            values[key] = raw if isinstance(raw, str) and raw.strip() else None
            if values[key] is None:
                errors.setdefault(name, []).append("must be a non-empty string")
            elif "\x00" in str(raw):  # no text column (nor jsonb) can hold NUL
                errors.setdefault(name, []).append("must not contain NUL")
            elif key == "pipeline" and len(str(raw)) > MAX_PIPELINE:
                errors.setdefault(name, []).append(f"must be at most {MAX_PIPELINE} characters")
        elif key in NOT_OFFERED:
            values[key] = flag = _bool(raw)
            if flag is None:
                errors.setdefault(name, []).append("must be true, false, 1 or 0")
    _check_ranges(values, errors)
    if errors:
        raise ApiError(p.VALIDATION, _summary(errors), errors=errors)
    _refuse_what_is_not_offered(values)
    try:
        return DetectOptions.model_validate(values)
    except ValidationError as exc:  # every range is checked above; this is a safety net
        raise ApiError(p.VALIDATION, str(exc)) from exc


def _refuse_what_is_not_offered(values: dict[str, object]) -> None:
    asked = [name for name in NOT_OFFERED if values.pop(name, None)]
    if asked:
        products = ", ".join(f"`{name}` ({NOT_OFFERED[name]})" for name in asked)
        raise ApiError(
            p.PRODUCT_UNAVAILABLE,
            f"this server does not offer {products}; send it as false or leave it out",
            errors={name: ["not offered by this server"] for name in asked},
        )


def _check_ranges(values: dict[str, object], errors: dict[str, list[str]]) -> None:
    start, end, cap, fps = (values.get(k) for k in NUMBERS)
    if isinstance(fps, float) and fps <= 0:
        errors.setdefault("max_video_fps", []).append("must be greater than 0")
    if isinstance(start, float) and start < 0:
        errors.setdefault("start_region", []).append("must be 0 or more")
    if isinstance(end, float) and end < 0:
        errors.setdefault("end_region", []).append("must be 0 or more")
    if isinstance(start, float) and isinstance(end, float) and start >= end:
        errors.setdefault("end_region", []).append("must be greater than start_region")
    if isinstance(cap, float) and cap <= 0:
        errors.setdefault("max_video_secs", []).append("must be greater than 0")


def _summary(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(msgs)}" for name, msgs in errors.items())
