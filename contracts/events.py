"""Event schemas: every message that crosses a service boundary.

All events share one envelope (`Event`) and are frozen pydantic models. A consumer decodes
bytes with `decode_event`, which picks the class from `event_type`. Changing a field's meaning
means a new `schema_version` (and, for an incompatible change, a new topic version).

Producers are strict, readers tolerant: building an event with a field the model does not know
fails, but decoding ignores unknown fields (`TOLERANT`), so a release may add optional fields
while older consumers (the other half of a rolling deploy) keep reading its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from contracts.ids import Id, Micros, UtcDatetime, new_id, utcnow

MediaType = Literal["audio", "video", "image"]
BatchOutcome = Literal["completed", "partially_failed", "failed", "cancelled"]


class Frozen(BaseModel):
    """Base for every contract model: immutable, and strict about unknown fields when built."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(Frozen):
    """The envelope every event carries.

    `correlation_id` is the batch id (for a single detect, the detect's own batch id: intake
    gives every detect a batch). `causation_id` is the event id, or the request id, that
    caused this event.
    """

    event_id: Id = Field(default_factory=new_id)
    event_type: str
    schema_version: int = 1
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    team_id: Id
    correlation_id: Id
    causation_id: str | None = None


# --- value objects carried inside events ---------------------------------------------------


class DetectOptions(Frozen):
    """The effective options of a batch (API.md form fields), applied to each of its files."""

    callback_url: str | None = None
    intelligence: bool = False
    search_identity: bool = False
    visualize: bool = True
    audio_source_tracing: bool = False
    frame_length: int = Field(default=2, ge=1, le=4)
    start_region: float | None = Field(default=None, ge=0)
    end_region: float | None = Field(default=None, ge=0)
    max_video_secs: float | None = Field(default=None, gt=0)
    use_llm: bool = False
    zero_retention_mode: bool = False
    # Resemble's request fields (docs/api.md, "Resemble's fields"): what a video analysis runs
    modality: Literal["audio", "video", "all"] = "all"
    face_only: bool = False
    max_video_fps: float | None = Field(default=None, gt=0)
    detect_watermark: bool = False
    model_types: Literal["image", "talking_head"] | None = None  # legacy; talking_head: faces
    # accepted and echoed; they change nothing here (docs/api.md says why)
    use_ood_detector: bool = False
    wait_for_intelligence: bool = False
    infer_from_intelligence: bool = False
    pipeline: str | None = Field(default=None, max_length=200)


class FileSpec(Frozen):
    """One stored, probed upload. `analysed_seconds` is what will be analysed (and billed)."""

    detect_id: Id
    filename: str
    media_type: MediaType
    blob_key: str
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    duration_seconds: float | None = Field(default=None, ge=0)
    analysed_seconds: float | None = Field(default=None, ge=0)


class CostLine(Frozen):
    """The wallet's price for one file: reserved, later captured or released."""

    detect_id: Id
    filename: str
    media_type: MediaType
    duration_seconds: float | None = None
    cost_micros: Micros


# --- the events ------------------------------------------------------------------------------


class BatchRequested(Event):
    """Intake stored and probed every file of a batch; the wallet is asked to reserve its cost."""

    event_type: Literal["BatchRequested"] = "BatchRequested"
    batch_id: Id
    files: tuple[FileSpec, ...] = Field(min_length=1)
    options: DetectOptions


class FundsReserved(Event):
    """The whole batch's projected cost is reserved; `lines` price each file."""

    event_type: Literal["FundsReserved"] = "FundsReserved"
    batch_id: Id
    reserved_micros: Micros
    lines: tuple[CostLine, ...]


class FundsRejected(Event):
    """The wallet cannot cover the batch: the figures of the 402 answer."""

    event_type: Literal["FundsRejected"] = "FundsRejected"
    batch_id: Id
    required_micros: Micros
    available_micros: Micros
    shortfall_micros: Micros
    lines: tuple[CostLine, ...]


class DetectRequested(Event):
    """One file to analyse. Keyed by detect id so that detector workers share the load."""

    event_type: Literal["DetectRequested"] = "DetectRequested"
    batch_id: Id
    detect_id: Id
    file: FileSpec
    options: DetectOptions


class DetectCompleted(Event):
    """The detector's result for one file. `result` follows the detect item's shape (API.md)."""

    event_type: Literal["DetectCompleted"] = "DetectCompleted"
    batch_id: Id
    detect_id: Id
    media_type: MediaType
    analysed_seconds: float | None = Field(default=None, ge=0)
    result: dict[str, JsonValue]


class DetectFailed(Event):
    """A file could not be analysed; `error_message` is shown to the client as is."""

    event_type: Literal["DetectFailed"] = "DetectFailed"
    batch_id: Id
    detect_id: Id
    error_code: str
    error_message: str


class BatchTerminal(Event):
    """Every detect of a batch is terminal (or the batch was cancelled).

    `cancelled_detect_ids` are the detects a cancel stopped before they finished: their
    reservations are released. Every other detect is settled by its own DetectCompleted or
    DetectFailed, which may arrive after this event (they travel on another topic).
    """

    event_type: Literal["BatchTerminal"] = "BatchTerminal"
    batch_id: Id
    status: BatchOutcome
    total_files: int = Field(ge=0)
    completed_count: int = Field(ge=0)
    failed_count: int = Field(ge=0)
    cancelled_detect_ids: tuple[Id, ...] = ()
    callback_url: str | None = None
    # What the notifier POSTs to callback_url, rendered by intake when the batch ended:
    # {"success": true, "item": <batch item>}, or the detect item for a single detect.
    callback_payload: dict[str, JsonValue] | None = None


class BatchAbandoned(Event):
    """The client never got a 202 (the wallet did not answer in time): release any reservation."""

    event_type: Literal["BatchAbandoned"] = "BatchAbandoned"
    batch_id: Id
    reason: str


LedgerKind = Literal["credit", "debit", "reserve", "capture", "release", "refund"]


class LedgerEntryRecorded(Event):
    """One movement of a team's money, with the wallet's figures right after it.

    The wallet publishes one per movement so that intake can serve `GET /account/wallet` and
    `GET /account/billing_usage` from its own projection. `wallet_version` orders them: a
    reader keeps the figures of the highest version it has seen. `correlation_id` is the batch
    id for batch movements and the entry's own id for operator credits and debits.
    """

    event_type: Literal["LedgerEntryRecorded"] = "LedgerEntryRecorded"
    entry_id: Id
    wallet_version: int = Field(ge=1)
    kind: LedgerKind
    amount_micros: Micros
    balance_micros: int
    reserved_micros: Micros
    available_micros: int
    batch_id: Id | None = None
    detect_id: Id | None = None
    media_type: MediaType | None = None
    billed_seconds: int | None = Field(default=None, ge=0)
    reason: str = ""


VoiceprintPurpose = Literal["identity", "search"]


class VoiceprintRequested(Event):
    """Intake asks the detector for the speaker embedding of one stored audio sample.

    `identity`: enrolling a saved identity (`request_id` is the identity's id); `search`: a
    one-off query of POST /identity/search. `correlation_id` is the request id.
    """

    event_type: Literal["VoiceprintRequested"] = "VoiceprintRequested"
    request_id: Id
    purpose: VoiceprintPurpose
    blob_key: str
    media_type: MediaType


class SameSpeaker(Frozen):
    """How to read a cosine similarity between two voiceprints of this model: the calibrated
    probability of one speaker is sigmoid(slope * cosine + intercept); `threshold` is the
    cosine at the measured equal-error rate (services/detector/models/identity.md)."""

    model: str
    slope: float
    intercept: float
    threshold: float


class VoiceprintComputed(Event):
    """A unit-length speaker embedding of the sample's speech."""

    event_type: Literal["VoiceprintComputed"] = "VoiceprintComputed"
    request_id: Id
    purpose: VoiceprintPurpose
    embedding: tuple[float, ...] = Field(min_length=8, max_length=1024)
    speech_seconds: float = Field(ge=0)
    same_speaker: SameSpeaker


class VoiceprintFailed(Event):
    """No voiceprint: the sample is unreadable or holds too little speech (shown as is)."""

    event_type: Literal["VoiceprintFailed"] = "VoiceprintFailed"
    request_id: Id
    purpose: VoiceprintPurpose
    error_code: str
    error_message: str


CallbackOutcome = Literal["delivered", "retrying", "abandoned"]


MAX_QUESTION = 2000


class DetectQuestionAsked(Event):
    """Intake asks the detector's LLM a question about one completed detect (Resemble's
    POST /detects/{uuid}/intelligence). It carries the detect's result as intake has it, so
    the detector needs no read model; `correlation_id` is the question id."""

    event_type: Literal["DetectQuestionAsked"] = "DetectQuestionAsked"
    question_id: Id
    detect_id: Id
    query: str = Field(min_length=1, max_length=MAX_QUESTION)
    result: dict[str, JsonValue]


class DetectQuestionAnswered(Event):
    """The operator's LLM answered, from the result's numbers only (never the media)."""

    event_type: Literal["DetectQuestionAnswered"] = "DetectQuestionAnswered"
    question_id: Id
    detect_id: Id
    answer: str
    model: str


class DetectQuestionFailed(Event):
    """No answer: no LLM is configured, or it did not answer usefully (shown as is)."""

    event_type: Literal["DetectQuestionFailed"] = "DetectQuestionFailed"
    question_id: Id
    detect_id: Id
    error_code: str
    error_message: str


class CallbackAttempted(Event):
    """The notifier tried a callback once. `webhook_id` is the same on every attempt."""

    event_type: Literal["CallbackAttempted"] = "CallbackAttempted"
    batch_id: Id
    webhook_id: str
    url: str
    attempt: int = Field(ge=1)
    outcome: CallbackOutcome
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: UtcDatetime | None = None


AnyEvent = Annotated[
    BatchRequested
    | FundsReserved
    | FundsRejected
    | DetectRequested
    | DetectCompleted
    | DetectFailed
    | BatchTerminal
    | BatchAbandoned
    | LedgerEntryRecorded
    | CallbackAttempted
    | VoiceprintRequested
    | VoiceprintComputed
    | VoiceprintFailed
    | DetectQuestionAsked
    | DetectQuestionAnswered
    | DetectQuestionFailed,
    Field(discriminator="event_type"),
]

EVENT_TYPES: tuple[type[Event], ...] = (
    BatchRequested,
    FundsReserved,
    FundsRejected,
    DetectRequested,
    DetectCompleted,
    DetectFailed,
    BatchTerminal,
    BatchAbandoned,
    LedgerEntryRecorded,
    CallbackAttempted,
    VoiceprintRequested,
    VoiceprintComputed,
    VoiceprintFailed,
    DetectQuestionAsked,
    DetectQuestionAnswered,
    DetectQuestionFailed,
)

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
# How every reader validates (here, and the services' event stores): fields added by a newer
# producer are dropped, at any depth; everything the reader knows is still checked.
TOLERANT: Literal["ignore"] = "ignore"


def decode_event(data: bytes | str) -> Event:
    """Parse one serialized event; raises `pydantic.ValidationError` on anything malformed."""
    event: Event = _ANY_EVENT.validate_json(data, extra=TOLERANT)
    return event


def decode_event_dict(data: Mapping[str, Any]) -> Event:
    """Parse an event from its JSON-compatible dict form (as stored in `events.payload`)."""
    event: Event = _ANY_EVENT.validate_python(data, extra=TOLERANT)
    return event


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode()
