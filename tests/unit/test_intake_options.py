"""Form options and the per-token rate limit: pure rules, no infrastructure."""

from __future__ import annotations

import pytest
from pydantic import JsonValue

from services.intake.api.options import BATCH_FIELDS, SINGLE_FIELDS, parse_options
from services.intake.api.ratelimit import RateLimiter, retry_after_header
from services.intake.errors import ApiError


def errors_of(
    fields: list[tuple[str, JsonValue]], allowed: frozenset[str] = BATCH_FIELDS
) -> dict[str, list[str]]:
    with pytest.raises(ApiError) as caught:
        parse_options(fields, allowed)
    assert caught.value.problem.status == 400
    return caught.value.problem.errors or {}


def test_defaults_and_multipart_strings() -> None:
    assert parse_options([], BATCH_FIELDS).visualize is True
    options = parse_options(
        [("visualize", "FALSE"), ("intelligence", "1"), ("frame_length", "4"),
         ("start_region", "1.5"), ("end_region", "3"), ("audio_source_tracing_enabled", "true")],
        BATCH_FIELDS,
    )  # fmt: skip
    assert (options.visualize, options.intelligence, options.frame_length) == (False, True, 4)
    assert (options.start_region, options.end_region) == (1.5, 3.0)
    assert options.audio_source_tracing is True


def test_json_values_and_single_detect_alias() -> None:
    options = parse_options([("audio_source_tracing", True), ("max_video_secs", 10)], SINGLE_FIELDS)
    assert options.audio_source_tracing is True
    assert options.max_video_secs == 10.0
    assert "audio_source_tracing" in errors_of([("audio_source_tracing", "true")])  # batch name


def test_every_field_resemble_sdks_send_is_accepted() -> None:
    """What `resemble` 1.9.0 and `@resemble/node` 3.5.3 send, as JSON values."""
    options = parse_options(
        [("use_ood_detector", True), ("pipeline", "general->facial"),
         ("model_types", "talking_head"), ("max_video_fps", 2), ("modality", "video"),
         ("face_only", True), ("wait_for_intelligence", True), ("detect_watermark", False),
         ("infer_from_intelligence", True), ("signal", False), ("use_reverse_search", False)],
        SINGLE_FIELDS,
    )  # fmt: skip
    assert (options.modality, options.face_only, options.max_video_fps) == ("video", True, 2.0)
    assert (options.pipeline, options.model_types) == ("general->facial", "talking_head")
    assert options.use_ood_detector
    assert options.wait_for_intelligence
    batch = parse_options([("face_only", "true"), ("infer_from_intelligence", "0")], BATCH_FIELDS)
    assert batch.face_only is True


def test_resemble_choices_and_strings_are_checked() -> None:
    errors = errors_of(
        [("modality", "both"), ("model_types", "x"), ("max_video_fps", "0"), ("pipeline", "")],
        SINGLE_FIELDS,
    )
    assert errors == {
        "modality": ["must be one of audio, video, all"],
        "model_types": ["must be one of image, talking_head"],
        "max_video_fps": ["must be greater than 0"],
        "pipeline": ["must be a non-empty string"],
    }
    assert "modality" in errors_of([("modality", "audio")])  # not a batch field


def test_products_this_server_does_not_offer_are_a_403_naming_them() -> None:
    with pytest.raises(ApiError) as caught:
        parse_options([("signal", "true"), ("use_reverse_search", True)], SINGLE_FIELDS)
    problem = caught.value.problem
    assert (problem.status, problem.type) == (403, "/problems/product-unavailable")
    assert set(problem.errors or {}) == {"signal", "use_reverse_search"}
    assert "Signal content analysis" in problem.detail


def test_every_bad_field_is_named() -> None:
    errors = errors_of(
        [("frame_length", "2.5"), ("visualize", "yes"), ("colour", "red"),
         ("start_region", "5"), ("end_region", "2"), ("max_video_secs", "nan"),
         ("callback_url", "")],
    )  # fmt: skip
    assert set(errors) == {
        "frame_length", "visualize", "colour", "end_region", "max_video_secs", "callback_url"
    }  # fmt: skip
    assert errors_of([("frame_length", "0")]) == {
        "frame_length": ["must be an integer from 1 to 4"]
    }
    assert "visualize" in errors_of([("visualize", "true"), ("visualize", "false")])


def test_rate_limiter_allows_the_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=40, burst=40, clock=lambda: now[0])
    assert all(limiter.acquire("t").wait == 0 for _ in range(40))
    refused = limiter.acquire("t")
    assert refused.wait == pytest.approx(1 / 40)
    assert retry_after_header(refused.wait) == "1"
    assert (refused.remaining, refused.reset) == (0, 1)
    assert limiter.acquire("other").wait == 0  # buckets are per token
    now[0] += 0.5
    assert sum(limiter.acquire("t").wait == 0 for _ in range(40)) == 20


def test_rate_limit_fields_say_what_is_left_and_when_it_is_full() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=40, clock=lambda: now[0])
    assert limiter.policy_header() == '"per-token";q=40;w=4'
    first = limiter.acquire("t")
    assert (first.remaining, first.reset) == (39, 1)
    assert first.header() == '"per-token";r=39;t=1'
    for _ in range(29):
        limiter.acquire("t")
    assert limiter.acquire("t").header() == '"per-token";r=9;t=4'  # 31 used, 3.1 s to refill
