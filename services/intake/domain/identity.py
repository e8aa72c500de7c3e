"""The saved-identity aggregate (API.md "Identities"): pure `decide` and `evolve`, no I/O.

An identity is a name plus the voiceprint of a sample the team uploaded. Intake owns the
identity; the detector computes its voiceprint. One stream per identity (`identity-<id>`):

    Enroll --> IdentityCreated + VoiceprintRequested --VoiceprintComputed--> ready
                                                     --VoiceprintFailed----> failed
    Delete (any time) --> IdentityDeleted

The sample is deleted once its voiceprint is known (or the identity is): intake keeps the
embedding, never the voice recording. A late or repeated voiceprint decides nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts import events as ev
from contracts.events import Frozen, MediaType
from contracts.ids import Id
from services.common.eventstore import DomainEvent

IdentityStatus = Literal["new", "processing", "ready", "failed", "deleted"]
MAX_NAME = 200


def stream_id(identity_id: str) -> str:
    return f"identity-{identity_id}"


class IdentityCreated(DomainEvent):
    event_type: Literal["IdentityCreated"] = "IdentityCreated"
    team_id: Id
    identity_id: Id
    name: str = Field(min_length=1, max_length=MAX_NAME)
    blob_key: str
    media_type: MediaType


class IdentityDeleted(DomainEvent):
    event_type: Literal["IdentityDeleted"] = "IdentityDeleted"
    team_id: Id
    identity_id: Id


IdentityEvent = Annotated[
    IdentityCreated
    | IdentityDeleted
    | ev.VoiceprintRequested
    | ev.VoiceprintComputed
    | ev.VoiceprintFailed,
    Field(discriminator="event_type"),
]
IDENTITY_EVENTS: TypeAdapter[IdentityEvent] = TypeAdapter(IdentityEvent)
IDENTITY_EVENT_TYPES = (
    IdentityCreated,
    IdentityDeleted,
    ev.VoiceprintRequested,
    ev.VoiceprintComputed,
    ev.VoiceprintFailed,
)


class Identity(Frozen):
    identity_id: Id
    team_id: Id | None = None
    status: IdentityStatus = "new"
    blob_key: str | None = None
    version: int = 0


# --- commands --------------------------------------------------------------------------------


class Enroll(Frozen):
    team_id: Id
    name: str = Field(min_length=1, max_length=MAX_NAME)
    blob_key: str
    media_type: MediaType


class RecordVoiceprint(Frozen):
    result: ev.VoiceprintComputed | ev.VoiceprintFailed


class Delete(Frozen):
    team_id: Id


Command = Enroll | RecordVoiceprint | Delete


def decide(identity: Identity, command: Command) -> list[IdentityEvent]:
    match command:
        case Enroll() if identity.status == "new":
            i = identity.identity_id
            return [
                IdentityCreated(
                    team_id=command.team_id, identity_id=i, name=command.name,
                    blob_key=command.blob_key, media_type=command.media_type,
                ),
                ev.VoiceprintRequested(
                    team_id=command.team_id, correlation_id=i, request_id=i, purpose="identity",
                    blob_key=command.blob_key, media_type=command.media_type,
                ),
            ]  # fmt: skip
        case RecordVoiceprint() if identity.status == "processing":
            return [command.result]
        case Delete() if identity.team_id == command.team_id and identity.status != "deleted":
            return [IdentityDeleted(team_id=command.team_id, identity_id=identity.identity_id)]
    return []


def evolve(identity: Identity, event: IdentityEvent) -> Identity:
    version = identity.version + 1
    match event:
        case IdentityCreated():
            return identity.model_copy(update={
                "team_id": event.team_id, "status": "processing", "blob_key": event.blob_key,
                "version": version,
            })  # fmt: skip
        case ev.VoiceprintComputed():
            return identity.model_copy(update={"status": "ready", "version": version})
        case ev.VoiceprintFailed():
            return identity.model_copy(update={"status": "failed", "version": version})
        case IdentityDeleted():
            return identity.model_copy(update={"status": "deleted", "version": version})
    return identity.model_copy(update={"version": version})


def replay(identity_id: str, events: list[IdentityEvent]) -> Identity:
    identity = Identity(identity_id=identity_id)
    for event in events:
        identity = evolve(identity, event)
    return identity


def sample_to_delete(before: Identity, events: list[IdentityEvent]) -> str | None:
    """The sample's blob once nothing needs it: the voiceprint is known, or the identity gone."""
    ends = (ev.VoiceprintComputed, ev.VoiceprintFailed, IdentityDeleted)
    if before.blob_key and any(isinstance(e, ends) for e in events):
        return before.blob_key
    return None
