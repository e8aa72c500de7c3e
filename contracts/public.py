"""Public events: what Verity publishes for other teams' consumers (docs/events.md).

The internal topics carry blob keys, costs, voiceprints and every service's bookkeeping, and may
change with any release. The public topics carry only what the HTTP API would show a client:
the detect item of `GET /detect/{uuid}` when a detect reaches a terminal state, and the batch
item of `GET /detect/batch/{uuid}` when a batch does. They follow these rules:

- CloudEvents 1.0 in Kafka binary mode: the value is the JSON item itself, the attributes are
  `ce_*` headers (`cloudevent_headers`); `ce_id` is stable across redeliveries, so a consumer
  dedupes by (`ce_source`, `ce_id`).
- One committed JSON Schema per event type and major version (contracts/schemas/); a new
  release may only add optional fields (`python -m contracts.schemas --check` enforces it), so
  consumers must ignore fields they do not know. The models here do (`extra="ignore"`); the
  producer validates with `extra="forbid"` (`Detection.checked`), so nothing unplanned leaves.
- Keyed by the detect's or the batch's uuid; one topic for all teams by default, or one pair of
  topics per team (`per_team_topic`) when teams must not read each other's results.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field

from contracts import results as r
from contracts.ids import Id

DETECTIONS = "verity.public.detections.v1"
BATCHES = "verity.public.batches.v1"
PUBLIC_TOPICS: tuple[str, ...] = (DETECTIONS, BATCHES)
TEAM_TOPIC_PREFIX = "verity.public.team."


def per_team_topic(topic: str, team_id: str) -> str:
    """The team's own copy of a public topic: `verity.public.team.<team>.detections.v1`.

    A prefixed ACL on `verity.public.team.<team>.` then grants one team's consumers exactly
    that team's results (deploy/k8s/examples/public-consumer.yaml)."""
    return topic.replace("verity.public.", f"{TEAM_TOPIC_PREFIX}{team_id}.", 1)


class Item(r.Open):
    """Base of the public items; see `checked` for how the producer validates one."""

    @classmethod
    def checked(cls, item: dict[str, Any]) -> Self:
        """Validate an item about to be published: strictly, unknown fields refused."""
        return cls.model_validate(item, extra="forbid")


MediaType = Literal["audio", "video", "image"]


class Detection(Item):
    """A detect in a terminal state: exactly the item `GET /detect/{uuid}` returns then.

    Resemble's schema has `duration` and the metrics as values that are never null, so an item
    without them leaves the key out (docs/api.md "Absent rather than null")."""

    uuid: Id
    media_type: MediaType
    status: Literal["completed", "failed"]
    filename: str = Field(description="redacted_<token>.<ext> in zero retention mode")
    duration: float = r.absent("Seconds; absent for an image")
    analysed_seconds: float | None = Field(description="What was analysed (and billed)")
    created_at: datetime
    updated_at: datetime
    error_message: str | None = Field(description="Why a failed detect failed")
    metrics: r.AudioMetrics = r.absent("The audio verdict (audio, and a video's sound)")
    image_metrics: r.VisualMetrics = r.absent("The image verdict")
    video_metrics: r.VisualMetrics = r.absent("The verdict on a video's pictures")
    watermark: r.Watermark = r.absent("The watermark analysis, when asked for")
    audio_source_tracing: r.SourceTracing | None = Field(
        description="The synthesizer family, only when the audio label is fake"
    )
    intelligence: r.Intelligence | None
    identity_matches: list[r.IdentityMatch] | None = Field(
        description="The team's saved identities nearest the voice, with search_identity"
    )
    model: r.ModelInfo | None = Field(description="Which model decided, and its threshold")
    segments: list[r.Segment] | None = Field(description="Time-aligned scores")
    reasons: list[str] | None = Field(description="Why a verdict is inconclusive")
    visualize: bool
    audio_source_tracing_enabled: bool
    intelligence_enabled: bool
    search_identity: bool
    zero_retention_mode: bool
    url: str | None = Field(description="The media while it is retained (needs the team's token)")
    audio_url: str | None
    media_deleted: bool
    file_deleted_at: datetime | None
    batch_uuid: Id | None = Field(description="The batch, for a detect of a batch")
    modality: Literal["audio", "video", "all"]
    face_only: bool = Field(description="Effective: true only for a video's analysed pictures")
    use_ood_detector: bool
    pipeline: str | None
    extra_params: dict[str, Any] = Field(description="Resemble's other request fields, as given")


class Batch(Item):
    """A batch in a terminal state: the item `GET /detect/batch/{uuid}` returns then."""

    uuid: Id
    status: Literal["completed", "partially_failed", "failed"]
    cancelled: bool = Field(description="True for a batch stopped by cancel")
    total_files: int = Field(ge=0)
    completed_count: int = Field(ge=0)
    failed_count: int = Field(ge=0)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    detect_uuids: list[Id] = Field(description="The batch's detects, in upload order")
    settings: dict[str, Any] = Field(description="The effective options")


# --- CloudEvents ------------------------------------------------------------------------------

SPEC_VERSION = "1.0"
JSON = "application/json"
TEAM_EXTENSION = "verityteam"  # CloudEvents extension attribute: the team the item belongs to


@dataclass(frozen=True)
class PublicEvent:
    """One kind of public event: its CloudEvents type, topic, data model and schema."""

    type: str
    topic: str
    model: builtins.type[Item]  # `type` is the CloudEvents attribute above
    schema_name: str
    key_doc: str
    summary: str

    @property
    def major(self) -> int:
        return int(self.topic.rsplit(".v", 1)[1])

    @property
    def schema_file(self) -> str:
        return f"{self.schema_name}.v{self.major}.json"


DETECT_COMPLETED = PublicEvent(
    "dev.verity.detect.completed",
    DETECTIONS,
    Detection,
    "detection",
    "detect uuid",
    "A detect completed: its item, with the verdict",
)
DETECT_FAILED = PublicEvent(
    "dev.verity.detect.failed",
    DETECTIONS,
    Detection,
    "detection",
    "detect uuid",
    "A detect failed (or its batch was cancelled first): its item, with error_message",
)
BATCH_FINISHED = PublicEvent(
    "dev.verity.batch.finished",
    BATCHES,
    Batch,
    "batch",
    "batch uuid",
    "Every detect of a batch is terminal, or the batch was cancelled: its item",
)
PUBLIC_EVENTS: tuple[PublicEvent, ...] = (DETECT_COMPLETED, DETECT_FAILED, BATCH_FINISHED)


def cloudevent_headers(
    kind: PublicEvent,
    *,
    event_id: str,
    source: str,
    subject: str,
    time: datetime,
    schema_base: str,
    team_id: str,
) -> dict[str, str]:
    """The CloudEvents 1.0 Kafka binary-mode headers of one event (all values UTF-8).

    `source` + "/" + `subject` is the resource's URL in the API; `schema_base` is where the
    schemas are served (intake's `/events/schemas`)."""
    return {
        "ce_specversion": SPEC_VERSION,
        "ce_id": event_id,
        "ce_source": source,
        "ce_type": kind.type,
        "ce_subject": subject,
        "ce_time": time.isoformat().replace("+00:00", "Z"),
        "ce_dataschema": f"{schema_base}/{kind.schema_file}",
        f"ce_{TEAM_EXTENSION}": team_id,
        "content-type": JSON,
    }


def public_model(name: str) -> type[BaseModel]:
    """The data model of a schema name (`detection`, `batch`)."""
    for kind in PUBLIC_EVENTS:
        if kind.schema_name == name:
            return kind.model
    raise KeyError(name)
