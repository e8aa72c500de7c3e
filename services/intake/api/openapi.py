"""Intake's OpenAPI document: what Litestar cannot infer from handlers that read their own bodies.

The POST handlers stream their requests themselves (uploads go straight into the blob store,
uploads/multipart.py) and every handler returns a plain dict built in views.py or beside it, so
Litestar sees neither a request body nor a response shape. Both are declared here, once, and
wired through the route handlers' own parameters:
- `responses=answers(...)`: a ResponseSpec per status, with the frozen models below (Litestar
  puts them in components/schemas); every error is a `Problem` as application/problem+json;
- `operation_class=operation(...)`: an Operation whose `__post_init__` adds the request body,
  the request headers and the response headers (X-Request-Id, RateLimit, Retry-After, Location),
  for which Litestar has no handler parameter; it also lifts the bearer requirement off the
  operations that need no token;
- `operation_id=`: Resemble's operationId where the endpoint is Resemble's.
The option fields of the two POSTs are derived from api/options.py's tables and the contract's
DetectOptions, so the document lists exactly what `parse_options` accepts
(tests/unit/test_intake_openapi.py holds it to that). The models describe the wire only:
nothing builds or validates them at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal, cast, get_args

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
    Tag,
)
from pydantic import BaseModel, ConfigDict, Field

from contracts import events as ev
from contracts import problems as p
from contracts import public
from contracts.events import DetectOptions
from services.intake.api.options import (
    ALIASES,
    BATCH_FIELDS,
    BOOLEANS,
    MAX_PIPELINE,
    NOT_OFFERED,
    SINGLE_FIELDS,
)
from services.intake.domain import feedback as feedback_domain
from services.intake.domain import identity as identity_domain
from services.intake.store.idempotency import MAX_KEY_LENGTH

BEARER = "bearer"
SECURITY: list[SecurityRequirement] = [{BEARER: []}]
COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description=(
                "An API token issued by the operator (`verity-admin token create`), sent as"
                " `Authorization: Bearer <token>`. The spelling Resemble's SDKs send,"
                " `Authorization: Token token=<token>` (or `Token <token>`), is accepted too."
                " Missing or malformed: 401; unknown or revoked: 403."
            ),
        )
    }
)
TAGS = [
    Tag(name="batches", description="Upload up to 50 files (or one zip) and follow the batch."),
    Tag(name="detects", description="Single detects, their results, media and feedback."),
    Tag(name="identities", description="Saved voice identities and voice search."),
    Tag(name="account", description="The team, its wallet and its usage."),
    Tag(name="problems", description="What each error `type` means (RFC 9457)."),
    Tag(name="events", description="The JSON Schemas of the public Kafka events (docs/events.md)."),
]
DESCRIPTION = (
    "Self-hosted deepfake detection, wire-compatible with Resemble AI's Detect API (v2). Every"
    " path is also served below `/v2` and at `/` (for Resemble's SDKs); this document lists"
    " each operation once, below `/api/v2`. Errors are `application/problem+json` bodies that"
    " carry Resemble's `Error` members and RFC 9457's; each `type` is a page at"
    " `/problems/{slug}`. Every response carries `X-Request-Id` (yours when you send a sane one),"
    " authenticated ones the IETF draft `RateLimit` and `RateLimit-Policy` fields."
)


class _Wire(BaseModel):
    """A wire shape, for the document only."""

    model_config = ConfigDict(frozen=True)


def absent(description: str) -> Any:
    """A member that is left out rather than sent as null (docs/api.md "Absent rather than
    null"): not required, and not nullable either."""
    return Field(default=None, description=description)


Uuid = str  # 32 lowercase hex characters (docs/api.md "Identifiers")


@dataclass
class WireExample(Example):
    """An example body as sent: Litestar leaves null members out when it renders the document,
    but a wire example needs them (`finished_at: null` is required)."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        if self.value is not None:
            schema["value"] = self.value
        return schema


# --- errors -------------------------------------------------------------------------------------


class Problem(_Wire):
    """Every error body: Resemble's `Error` members and RFC 9457's, in one object."""

    success: Literal[False] = False
    message: str = Field(description="What went wrong and what to do; the same as `detail`")
    error: str = Field(description="Resemble's short error string: the problem's title")
    error_code: str = Field(description="Machine-readable: the problem type's slug, snake_case")
    errors: dict[str, list[str]] = absent("What is wrong with each named field or header")
    type: str = Field(
        json_schema_extra={"format": "uri-reference"},
        description="The problem type: a page at this path (`/problems/<slug>`) says what it"
        " means and what to do",
    )
    title: str
    status: int = Field(description="The HTTP status code")
    detail: str
    details: dict[str, Any] = absent("Figures that explain the problem (the 402 has them)")


class CostLine(_Wire):
    filename: str
    media_type: ev.MediaType
    duration_seconds: float | None
    estimated_cost_cents: float


class FundsShortfall(_Wire):
    """What the request would cost and what the wallet has, in cents."""

    required_cents: float
    estimated_cost_cents: float = Field(description="Resemble's name for `required_cents`")
    detect_cost_cents: float = Field(description="Resemble's name for `required_cents`")
    available_cents: float
    shortfall_cents: float
    files: list[CostLine]


class InsufficientFunds(Problem):
    """The 402: nothing was created or charged."""

    details: FundsShortfall  # type: ignore[assignment]  # the 402 always has its figures


# --- batches and detects ------------------------------------------------------------------------


class BatchItem(_Wire):
    """Aggregate state of a batch (docs/api.md "The batch item")."""

    uuid: Uuid
    status: Literal["processing", "completed", "partially_failed", "failed"]
    cancelled: bool = Field(description="[ours] true for a batch stopped by cancel")
    total_files: int
    completed_count: int
    failed_count: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    detect_uuids: list[Uuid] = Field(description="The batch's detects, in upload order")
    settings: dict[str, Any] = Field(description="[ours] the effective options")
    charged_cents: float = absent("[ours] what the batch's detects cost")
    refunded_cents: float = absent("[ours] reservations released and charges refunded")


class DetectItem(public.Detection):
    """One file's detect and its result (docs/api.md "The detect item"); once it is terminal,
    the same item is published on Kafka (contracts/public.py, docs/events.md)."""

    status: Literal["processing", "completed", "failed"]  # type: ignore[assignment]


class Deleted(_Wire):
    uuid: Uuid
    deleted: Literal[True]


class _Page(_Wire):
    success: Literal[True]
    page: int
    num_pages: int
    page_size: int
    total_count: int


class BatchResponse(_Wire):
    success: Literal[True]
    item: BatchItem


class BatchList(_Page):
    items: list[BatchItem]


class DetectResponse(_Wire):
    success: Literal[True]
    item: DetectItem


class DetectList(_Page):
    items: list[DetectItem]


class DeleteResponse(_Wire):
    success: Literal[True]
    message: str
    item: Deleted


class CallbackAttempt(_Wire):
    attempt: int
    outcome: ev.CallbackOutcome
    status_code: int | None
    error: str | None
    attempted_at: datetime
    next_attempt_at: datetime | None


class CallbackLog(_Wire):
    batch_uuid: Uuid
    webhook_id: str
    url: str
    status: ev.CallbackOutcome = Field(description="The last attempt's outcome")
    next_attempt_at: datetime | None
    attempts: list[CallbackAttempt]


class CallbackLogResponse(_Wire):
    success: Literal[True]
    item: CallbackLog


class SecureUpload(_Wire):
    uuid: Uuid
    media_token: str
    filename: str
    size_bytes: int
    sha256: str
    expires_at: datetime


class SecureUploadResponse(_Wire):
    success: Literal[True]
    token: str = Field(description="The media_token for POST /detect: one detect, this team")
    item: SecureUpload


class FeedbackItem(_Wire):
    detect_uuid: Uuid
    type: feedback_domain.FeedbackType
    vote: Literal["up", "down"]
    verdict: feedback_domain.Verdict | None = Field(description="What the model said")
    score: float | None
    media_type: ev.MediaType
    comment: str | None
    credit: int
    source: str
    token_uuid: Uuid
    created_at: datetime
    updated_at: datetime


class FeedbackResponse(_Wire):
    success: Literal[True]
    item: FeedbackItem


class FeedbackList(_Page):
    items: list[FeedbackItem]


class Done(_Wire):
    success: Literal[True]


class QuestionItem(_Wire):
    uuid: Uuid
    detect_uuid: Uuid
    query: str
    answer: str | None
    status: Literal["processing", "completed", "failed"]
    error_message: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime


class QuestionResponse(_Wire):
    success: Literal[True]
    item: QuestionItem


class TracingResults(_Wire):
    label: str = Field(description="The synthesizer family of a fake; real; or inconclusive")
    error_message: str | None = None


class TracingItem(_Wire):
    uuid: Uuid = Field(description="The detect's uuid")
    detect_uuid: Uuid
    results: TracingResults
    created_at: datetime


class TracingResponse(_Wire):
    success: Literal[True]
    item: TracingItem


class TracingList(_Page):
    items: list[TracingItem]


# --- identities ---------------------------------------------------------------------------------


class IdentityItem(_Wire):
    uuid: Uuid
    name: str
    status: Literal["processing", "ready", "failed"]
    speech_seconds: float | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime


class IdentityResponse(_Wire):
    success: Literal[True]
    item: IdentityItem


class IdentityList(_Page):
    items: list[IdentityItem]


class Match(_Wire):
    name: str
    distance: float = Field(description="Resemble's 0-100 match score: higher is closer")
    score_type: Literal["cosine"]
    confidence: float = Field(description="[ours] calibrated same-speaker probability")
    cosine_distance: float = Field(description="[ours] 1 - cosine")
    match: bool = Field(description="[ours] at the calibrated threshold")


class RankedMatch(Match):
    uuid: Uuid


class IdentitySearchResponse(_Wire):
    success: Literal[True]
    modality: Literal["audio"]
    item: dict[str, Match] = Field(description="Keyed by identity uuid, nearest first")
    matches: list[RankedMatch] = Field(description="[ours] the same ranking as a list")


# --- account ------------------------------------------------------------------------------------


class Named(_Wire):
    uuid: Uuid
    name: str


class TokenInfo(_Wire):
    uuid: Uuid
    label: str
    created_at: datetime


class Account(_Wire):
    created_at: datetime
    teams: int
    team: Named
    token: TokenInfo


class AccountResponse(_Wire):
    success: Literal[True]
    item: Account


class LedgerEntry(_Wire):
    id: str
    kind: ev.LedgerKind
    amount_cents: float
    amount_micros: int
    balance_cents: float
    balance_micros: int
    available_cents: float
    available_micros: int
    batch_uuid: Uuid | None
    detect_uuid: Uuid | None
    media_type: str | None
    billed_seconds: int | None
    reason: str
    created_at: datetime


class Wallet(_Wire):
    currency: Literal["USD"]
    balance_cents: float
    balance_micros: int
    reserved_cents: float
    reserved_micros: int
    available_cents: float
    available_micros: int
    updated_at: datetime | None
    recent_entries: list[LedgerEntry]


class WalletResponse(_Wire):
    success: Literal[True]
    item: Wallet


class MediaUsage(_Wire):
    files: int
    seconds: int
    charged_cents: float
    charged_micros: int


class BillingUsage(_Wire):
    start_date: date
    end_date: date
    seconds_analyzed: int
    files_analyzed: int
    charged_cents: float
    charged_micros: int
    by_media_type: dict[str, MediaUsage]


class BillingUsageResponse(_Wire):
    success: Literal[True]
    item: BillingUsage


# --- responses ----------------------------------------------------------------------------------

_ID, _ID2 = "6f1c2a9b8d7e4f30a1b2c3d4e5f60718", "0a9b8c7d6e5f40312a3b4c5d6e7f8091"
_WHEN = "2026-11-24T10:30:00.000Z"
_BATCH = {
    "uuid": _ID, "status": "processing", "cancelled": False, "total_files": 2,
    "completed_count": 0, "failed_count": 0, "created_at": _WHEN, "updated_at": _WHEN,
    "finished_at": None, "detect_uuids": [_ID2, "1b2c3d4e5f60718293a4b5c6d7e8f901"],
    "settings": {"visualize": True, "frame_length": 2}, "charged_cents": 0.0,
    "refunded_cents": 0.0,
}  # fmt: skip
_DETECT = {
    "uuid": _ID2, "media_type": "audio", "status": "completed", "filename": "call.wav",
    "duration": 12.5, "analysed_seconds": 12.5, "created_at": _WHEN, "updated_at": _WHEN,
    "error_message": None,
    "metrics": {"label": "fake", "score": ["0.91", "0.88"], "consistency": "1.00",
                "aggregated_score": "0.90"},
    "audio_source_tracing": None, "intelligence": None, "identity_matches": None,
    "model": {"name": "audio-detector", "version": "1", "threshold": 0.5},
    "segments": [{"start": 0.0, "end": 2.0, "score": 0.91, "label": "fake"}], "reasons": None,
    "visualize": False, "audio_source_tracing_enabled": False, "intelligence_enabled": False,
    "search_identity": False, "zero_retention_mode": False,
    "url": f"http://127.0.0.1:8000/api/v2/detect/{_ID2}/media",
    "audio_url": f"http://127.0.0.1:8000/api/v2/detect/{_ID2}/media",
    "media_deleted": False, "file_deleted_at": None, "batch_uuid": _ID, "modality": "all",
    "face_only": False, "use_ood_detector": False, "pipeline": None, "extra_params": {},
}  # fmt: skip
EXAMPLES: dict[type[BaseModel], Any] = {
    BatchResponse: {"success": True, "item": _BATCH},
    DetectResponse: {"success": True, "item": _DETECT},
    Problem: p.Problem.of(
        p.VALIDATION, "frame_length: must be an integer from 1 to 4",
        errors={"frame_length": ["must be an integer from 1 to 4"]},
    ).model_dump(mode="json", exclude_none=True),
    InsufficientFunds: p.Problem.of(
        p.INSUFFICIENT_FUNDS,
        "the wallet's available 0.05 cents do not cover the 0.2 cents this needs; nothing was"
        " created or charged",
        details={
            "required_cents": 0.2, "estimated_cost_cents": 0.2, "detect_cost_cents": 0.2,
            "available_cents": 0.05, "shortfall_cents": 0.15,
            "files": [{"filename": "call.wav", "media_type": "audio", "duration_seconds": 1.0,
                       "estimated_cost_cents": 0.1}] * 2,
        },
    ).model_dump(mode="json", exclude_none=True),
}  # fmt: skip

_STATUS_TEXT = {
    400: "The request is invalid: the problem's `errors` name each bad field",
    401: "Missing or malformed Authorization header",
    402: "The team's wallet cannot cover the request: nothing was created or charged",
    403: "The token is unknown or revoked, or the request asks for a product not offered",
    404: "No such resource for this team",
    409: "The resource changed concurrently, or is in a state that forbids this",
    413: "The upload or body exceeds its size limit",
    422: "Well-formed, but unusable: see the problem's detail",
    429: "Over the token's rate limit: retry after Retry-After seconds",
    503: "A dependency did not answer in time: nothing was created or charged; retry",
}
AUTH_ERRORS = (401, 403, 429)


def _spec(model: type[BaseModel], description: str, media_type: str) -> ResponseSpec:
    examples: list[Example] | None = None
    if model in EXAMPLES:
        examples = [WireExample(summary=model.__name__, value=EXAMPLES[model])]
    return ResponseSpec(
        model,
        description=description,
        media_type=media_type,
        generate_examples=False,
        examples=examples,
    )


def answers(
    ok: Mapping[int, tuple[type[BaseModel], str]],
    *,
    errors: Iterable[int] = (),
    public: bool = False,
) -> dict[int, ResponseSpec]:
    """`responses=` for a handler: its success bodies, then a Problem for each error status
    (401, 403 and 429 on every operation that takes a token)."""
    specs = {status: _spec(model, text, "application/json") for status, (model, text) in ok.items()}
    for status in sorted({*errors, *(() if public else AUTH_ERRORS)}):
        model = InsufficientFunds if status == 402 else Problem
        specs[status] = _spec(model, _STATUS_TEXT[status], p.PROBLEM_CONTENT_TYPE)
    return specs


# --- headers ------------------------------------------------------------------------------------


def _header(
    description: str, *, required: bool = False, kind: OpenAPIType = OpenAPIType.STRING
) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=kind), description=description, required=required)


REQUEST_ID = _header(
    "Names this request: the client's own X-Request-Id when it is 1-128 of `A-Za-z0-9._:-`,"
    " else a new id",
    required=True,
)
RATE_LIMIT = {
    "RateLimit": _header('What is left of the token\'s allowance: `"per-token";r=<left>;t=<s>`'),
    "RateLimit-Policy": _header('The token\'s allowance: `"per-token";q=<requests>;w=<seconds>`'),
}
RETRY_AFTER = _header("Seconds to wait before retrying", required=True, kind=OpenAPIType.INTEGER)
HEADERS: dict[str, OpenAPIHeader] = {
    "Location": _header("The batch's URL (GET it to follow the batch)", required=True),
    "Content-Disposition": _header('`attachment; filename="<the file\'s name>"`', required=True),
}
WWW_AUTHENTICATE = _header('`Bearer realm="verity"`', required=True)


def _request_header(name: str, description: str, schema: Schema) -> Parameter:
    return Parameter(name=name, param_in="header", schema=schema, description=description)


IDEMPOTENCY_KEY = _request_header(
    "Idempotency-Key",
    "Repeat a POST safely: the same key with the same request within 24 h returns the first"
    " response without creating or charging anything again; with a different request, 422",
    Schema(
        type=OpenAPIType.STRING,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern="^[ -~]+$",
        description="Printable characters (any printable ones are accepted; ASCII is safest)",
    ),
)
PREFER_WAIT = _request_header(
    "Prefer",
    "`wait` or `wait=<seconds>` (RFC 7240): hold the request until the detect is terminal (at"
    " most 120 s, then the processing item is returned)",
    Schema(type=OpenAPIType.STRING, examples=["wait=30"]),
)
PREFER_REFUSED = _request_header(
    "Prefer",
    "`wait` is refused (400): batches are never synchronous; poll or set callback_url",
    Schema(type=OpenAPIType.STRING),
)


# --- request bodies -----------------------------------------------------------------------------

_OPTION_TEXT = {
    "callback_url": "POSTed the batch (or detect) item when it reaches a terminal state",
    "intelligence": "A multimodal intelligence report per file",
    "search_identity": "Match voices against the team's saved identities (audio, video)",
    "visualize": "Produce visualization artifacts",
    "audio_source_tracing": "Attribute fake audio to a generator family",
    "audio_source_tracing_enabled": "Attribute fake audio to a generator family",
    "frame_length": "Analysis window, seconds (audio, video)",
    "start_region": "Analyse from this second on",
    "end_region": "Analyse up to this second (greater than start_region)",
    "max_video_secs": "Cap the processed video duration, seconds",
    "use_llm": "LLM-assisted commentary (the operator's endpoint)",
    "zero_retention_mode": "Delete media after processing, redact filenames",
    "face_only": "Video: score only frames with a face",
    "modality": "Video: the audio track, the pictures, or both",
    "max_video_fps": "Lower the video sampling rate (never raises it)",
    "detect_watermark": "Look for Resemble's Perth audio watermark",
    "model_types": "Legacy; talking_head means face_only",
    "use_ood_detector": "Accepted and echoed: the out-of-domain rules always run",
    "wait_for_intelligence": "Accepted and echoed: intelligence comes with the detection",
    "infer_from_intelligence": "Accepted and echoed: it changes nothing here",
    "pipeline": "Deprecated; accepted and echoed",
    "signal": "Not offered by this server: true is refused (403)",
    "use_reverse_search": "Not offered by this server: true is refused (403)",
}
_JSON_KEYS = {
    "type": "type", "minimum": "minimum", "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum", "maxLength": "max_length", "enum": "enum",
    "default": "default",
}  # fmt: skip


def _from_json_schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Schema keyword arguments from a pydantic JSON schema of an optional scalar field."""
    branches = [b for b in raw.get("anyOf", [raw]) if b.get("type") != "null"]
    merged = {**branches[0], **{k: v for k, v in raw.items() if k == "default"}}
    kwargs = {_JSON_KEYS[k]: v for k, v in merged.items() if k in _JSON_KEYS and v is not None}
    kwargs["type"] = OpenAPIType(kwargs["type"])
    return kwargs


def option_schema(name: str) -> Schema:
    """One option field as parse_options reads it: types, ranges and defaults from
    DetectOptions (multipart sends them as text: booleans as true/false/1/0)."""
    key = ALIASES.get(name, name)
    kwargs: dict[str, Any] = {"type": OpenAPIType.BOOLEAN, "default": False}
    if key not in NOT_OFFERED:
        kwargs = _from_json_schema(DetectOptions.model_json_schema()["properties"][key])
    if key in BOOLEANS:
        kwargs.setdefault("default", False)
    if key == "callback_url":
        kwargs.update(format=OpenAPIFormat.URI, min_length=1)
    if key == "pipeline":
        kwargs.update(min_length=1, max_length=MAX_PIPELINE)
    return Schema(description=_OPTION_TEXT[name], **kwargs)


def _options(fields: Iterable[str]) -> dict[str, Schema | Reference]:
    return {name: option_schema(name) for name in sorted(fields)}


def _object(
    properties: Mapping[str, Schema | Reference],
    required: Sequence[str] = (),
    *,
    closed: bool = False,
    **more: Any,
) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=dict(properties),
        required=list(required) or None,
        additional_properties=False if closed else None,
        **more,
    )


def _body(description: str, **content: OpenAPIMediaType) -> RequestBody:
    return RequestBody(description=description, required=True, content=dict(content))


_MULTIPART, _JSON = "multipart/form-data", "application/json"
_MEDIA = "An audio, video or image file (docs/api.md, the allowlist), at most 150 MB"
_SAMPLE = "A voice sample: audio, or a video with sound"
_FILE = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=_MEDIA)

_FILES = Schema(
    type=OpenAPIType.ARRAY, items=_FILE, min_items=1, max_items=50,
    description="Media files, one part each (repeated `files[]` fields)",
)  # fmt: skip
_ZIP = Schema(
    type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
    description="A .zip archive of media files (sub-folders flattened, archive order)",
)  # fmt: skip
BATCH_UPLOAD = _body(
    "Exactly one of `files[]` (1-50 media files) and `file` (one .zip); at most 500 MB in all."
    " The options apply to every file.",
    **{
        _MULTIPART: OpenAPIMediaType(
            # exactly one of the two, said in words: as a oneOf, generated clients (e.g.
            # openapi-python-client) drop the multipart body altogether
            schema=_object({"files[]": _FILES, "file": _ZIP, **_options(BATCH_FIELDS)}, closed=True)
        )
    },
)  # fmt: skip
_MEDIA_URL = Schema(
    type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description="An http(s) URL of the media"
)
_MEDIA_TOKEN = Schema(
    type=OpenAPIType.STRING, description="From POST /secure_uploads: good for one detect"
)
DETECT_UPLOAD = _body(
    "One file as multipart `file`, or JSON with exactly one of `url` (fetched; private"
    " addresses refused) and `media_token` (from POST /secure_uploads), with the options.",
    **{
        _MULTIPART: OpenAPIMediaType(
            schema=_object({"file": _FILE, **_options(SINGLE_FIELDS)}, ["file"], closed=True)
        ),
        _JSON: OpenAPIMediaType(
            schema=Schema(
                one_of=[
                    _object(
                        {"url": _MEDIA_URL, **_options(SINGLE_FIELDS)}, ["url"], closed=True,
                        title="DetectByUrl",
                    ),
                    _object(
                        {"media_token": _MEDIA_TOKEN, **_options(SINGLE_FIELDS)}, ["media_token"],
                        closed=True, title="DetectByMediaToken",
                    ),
                ]
            ),
            examples={
                "url": WireExample(
                    summary="A URL", value={"url": "https://example.com/call.wav"}
                ),
                "media_token": WireExample(
                    summary="A secure upload",
                    value={"media_token": f"{_ID}.1795512600.{'0' * 64}", "visualize": False},
                ),
            },
        ),
    },
)  # fmt: skip
SECURE_UPLOAD = _body(
    "One file as multipart `file` (at most 150 MB); nothing else",
    **{_MULTIPART: OpenAPIMediaType(schema=_object({"file": _FILE}, ["file"], closed=True))},
)
_NAME = Schema(
    type=OpenAPIType.STRING, min_length=1, max_length=identity_domain.MAX_NAME,
    description="The identity's name (trimmed; no control characters)",
)  # fmt: skip
_URL = Schema(
    type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description=f"An http(s) URL: {_SAMPLE}"
)
_SAMPLE_FILE = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=_SAMPLE)
_TOP_K = Schema(
    type=OpenAPIType.INTEGER, minimum=1, maximum=20, default=5,
    description="How many of the nearest identities",
)  # fmt: skip
IDENTITY = _body(
    "A name and a voice sample: multipart `file`, or JSON `url`",
    **{
        _MULTIPART: OpenAPIMediaType(
            schema=_object({"name": _NAME, "file": _SAMPLE_FILE}, ["name", "file"])
        ),
        _JSON: OpenAPIMediaType(
            schema=_object({"name": _NAME, "url": _URL}, ["name", "url"]),
            examples={
                "url": WireExample(
                    summary="A sample by URL",
                    value={"name": "Ada", "url": "https://example.com/ada.wav"},
                )
            },
        ),
    },
)
IDENTITY_SEARCH = _body(
    "A voice sample (multipart `file`, or JSON `url`) and how many matches",
    **{
        _MULTIPART: OpenAPIMediaType(
            schema=_object({"file": _SAMPLE_FILE, "top_k": _TOP_K}, ["file"])
        ),
        _JSON: OpenAPIMediaType(
            schema=_object({"url": _URL, "top_k": _TOP_K}, ["url"]),
            examples={
                "url": WireExample(
                    summary="A sample by URL",
                    value={"url": "https://example.com/call.wav", "top_k": 3},
                )
            },
        ),
    },
)
FEEDBACK = _body(
    "This token's answer about a completed detect (given again, it is revised)",
    **{
        _JSON: OpenAPIMediaType(
            schema=_object(
                {
                    "type": Schema(
                        type=OpenAPIType.STRING, enum=list(get_args(feedback_domain.FeedbackType)),
                        description="Was the verdict right?",
                    ),
                    "comment": Schema(
                        type=[OpenAPIType.STRING, OpenAPIType.NULL],
                        max_length=feedback_domain.MAX_COMMENT,
                        description="Trimmed; blank becomes null",
                    ),
                    "source": Schema(
                        type=OpenAPIType.STRING, min_length=1, default="api",
                        description=f"Cut to {feedback_domain.MAX_SOURCE} characters",
                    ),
                },
                ["type"],
            ),
            examples={
                "wrong": WireExample(
                    summary="The verdict was wrong",
                    value={"type": "should_be_authentic", "comment": "my own voice"},
                )
            },
        )
    },
)  # fmt: skip
QUESTION = _body(
    "A question about a completed detect, answered in the background",
    **{
        _JSON: OpenAPIMediaType(
            schema=_object(
                {
                    "query": Schema(
                        type=OpenAPIType.STRING, min_length=1, max_length=ev.MAX_QUESTION,
                        description="The question",
                    )
                },
                ["query"],
            ),
            examples={
                "why": WireExample(summary="Why", value={"query": "Why was this judged fake?"})
            },
        )
    },
)  # fmt: skip


# --- the operation ------------------------------------------------------------------------------


@dataclass
class VerityOperation(Operation):
    """An Operation with what Litestar cannot infer here (see the module's docstring).

    Litestar builds it with the handler's responses, parameters and resolved security; its
    subclasses from `operation()` say what to add.
    """

    body: ClassVar[RequestBody | None] = None
    header_parameters: ClassVar[tuple[Parameter, ...]] = ()
    success_headers: ClassVar[tuple[str, ...]] = ()
    public: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.public:
            self.security = []  # the signed link (or the page) is the credential
        if self.body is not None:
            self.request_body = self.body
        if self.header_parameters:
            self.parameters = [*(self.parameters or []), *self.header_parameters]
        responses = self.responses or {}
        litestars = responses.get("400")  # Litestar's own 400 shape, for any handler with params
        if isinstance(litestars, OpenAPIResponse) and p.PROBLEM_CONTENT_TYPE not in (
            litestars.content or {}
        ):
            del responses["400"]  # handlers that can answer 400 declare it (as a Problem)
        for status, response in responses.items():
            if isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), **self._headers(int(status))}

    def _headers(self, status: int) -> dict[str, OpenAPIHeader | Reference]:
        headers: dict[str, OpenAPIHeader | Reference] = {"X-Request-Id": REQUEST_ID}
        if not self.public and status != 401:
            headers.update(RATE_LIMIT)
        if status in (429, 503):
            headers["Retry-After"] = RETRY_AFTER
        if status == 401:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        if 200 <= status < 300:
            headers.update({name: HEADERS[name] for name in self.success_headers})
        return headers


def operation(
    body: RequestBody | None = None,
    *,
    headers: tuple[Parameter, ...] = (),
    success_headers: tuple[str, ...] = (),
    public: bool = False,
) -> type[Operation]:
    """`operation_class=` for a handler: its request body, request headers, extra success
    headers (names in HEADERS), and whether it needs no token."""
    attributes = {
        "body": body,
        "header_parameters": headers,
        "success_headers": success_headers,
        "public": public,
    }
    return cast(type[Operation], type("VerityOperation", (VerityOperation,), attributes))


DOCUMENTED = operation()
PUBLIC = operation(public=True)
