"""Topic names, which event goes where, and how it is keyed.

Topics are named `verity.<area>.v1`. The partition key keeps each batch's events in order;
DetectRequested is keyed by detect id, so that the files of one batch spread over all detector
workers, and ledger entries by team, so that a team's balance updates arrive in order. `ROUTES`
is the single source of truth for producers, consumers and the AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contracts import events as ev

BATCHES = "verity.batches.v1"
WALLET = "verity.wallet.v1"
DETECT_REQUESTS = "verity.detect-requests.v1"
DETECT_RESULTS = "verity.detect-results.v1"
LEDGER = "verity.ledger.v1"
CALLBACKS = "verity.callbacks.v1"
VOICEPRINTS = "verity.voiceprints.v1"
QUESTIONS = "verity.questions.v1"

ALL_TOPICS: tuple[str, ...] = (
    BATCHES,
    WALLET,
    DETECT_REQUESTS,
    DETECT_RESULTS,
    LEDGER,
    CALLBACKS,
    VOICEPRINTS,
    QUESTIONS,
)


# How the topics are laid out. A service that creates its topics uses PARTITIONS (the ceiling
# of a group's parallelism); production's are Strimzi KafkaTopics with these replicas
# (deploy/k8s/generate.py) and the broker's default retention, except for these two kinds.
PARTITIONS = 6
PRODUCTION_REPLICAS = 3
MIN_INSYNC_REPLICAS = 2
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000  # dead letters wait for a human: keep them a month
# other teams' consumers may be down over a long weekend: a week of public events to catch up on
PUBLIC_RETENTION_MS = 7 * 24 * 3600 * 1000

# service -> {consumer group: topics it reads}. The services' own constants
# (services/intake/app.py GROUPS, services/*/consumers.py) are checked against this table by
# tests/deploy/test_manifests.py; the KafkaUsers' ACLs and the AsyncAPI document use it.
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "intake": {
        "intake-account": (LEDGER,),
        "intake-callbacks": (CALLBACKS,),
        "intake-saga": (WALLET,),
        "intake-results": (DETECT_RESULTS,),
        "intake-voiceprints": (VOICEPRINTS,),
        "intake-questions": (QUESTIONS,),
    },
    "wallet": {"wallet": (BATCHES, DETECT_RESULTS)},
    "detector": {
        "detector": (DETECT_REQUESTS,),
        "detector-voiceprints": (VOICEPRINTS,),
        "detector-questions": (QUESTIONS,),
    },
    "notifier": {"notifier": (BATCHES,)},
}


def group_of(service: str, topic: str) -> str:
    """The consumer group in which `service` reads `topic`."""
    return next(g for g, topics in GROUPS[service].items() if topic in topics)


def dead_letter_topic(group_id: str) -> str:
    """Each consumer group has its own dead-letter topic, so one group's poison is its own."""
    return f"verity.dlq.{group_id}.v1"


def _by_batch(event: ev.Event) -> str:
    return event.correlation_id


def _by_team(event: ev.Event) -> str:
    return event.team_id


def _by_request(event: ev.Event) -> str:
    return event.correlation_id  # a voiceprint's correlation id is its request id


def _by_detect(event: ev.Event) -> str:
    assert isinstance(event, ev.DetectRequested)
    return event.detect_id


@dataclass(frozen=True)
class Route:
    event_type: type[ev.Event]
    topic: str
    key: Callable[[ev.Event], str]
    key_doc: str
    producer: str
    consumers: tuple[str, ...]


ROUTES: dict[type[ev.Event], Route] = {
    r.event_type: r
    for r in (
        Route(ev.BatchRequested, BATCHES, _by_batch, "batch id", "intake", ("wallet",)),
        Route(ev.FundsReserved, WALLET, _by_batch, "batch id", "wallet", ("intake",)),
        Route(ev.FundsRejected, WALLET, _by_batch, "batch id", "wallet", ("intake",)),
        Route(
            ev.DetectRequested, DETECT_REQUESTS, _by_detect, "detect id", "intake", ("detector",)
        ),
        Route(
            ev.DetectCompleted,
            DETECT_RESULTS,
            _by_batch,
            "batch id",
            "detector",
            ("intake", "wallet"),
        ),
        Route(
            ev.DetectFailed, DETECT_RESULTS, _by_batch, "batch id", "detector", ("intake", "wallet")
        ),
        Route(ev.BatchTerminal, BATCHES, _by_batch, "batch id", "intake", ("notifier", "wallet")),
        Route(ev.BatchAbandoned, BATCHES, _by_batch, "batch id", "intake", ("wallet",)),
        Route(ev.LedgerEntryRecorded, LEDGER, _by_team, "team id", "wallet", ("intake",)),
        Route(ev.CallbackAttempted, CALLBACKS, _by_batch, "batch id", "notifier", ("intake",)),
        Route(
            ev.VoiceprintRequested, VOICEPRINTS, _by_request, "request id", "intake", ("detector",)
        ),
        Route(
            ev.VoiceprintComputed, VOICEPRINTS, _by_request, "request id", "detector", ("intake",)
        ),
        Route(ev.VoiceprintFailed, VOICEPRINTS, _by_request, "request id", "detector", ("intake",)),
        Route(
            ev.DetectQuestionAsked, QUESTIONS, _by_request, "question id", "intake", ("detector",)
        ),
        Route(
            ev.DetectQuestionAnswered,
            QUESTIONS,
            _by_request,
            "question id",
            "detector",
            ("intake",),
        ),
        Route(
            ev.DetectQuestionFailed, QUESTIONS, _by_request, "question id", "detector", ("intake",)
        ),
    )
}


def route(event: ev.Event) -> tuple[str, str]:
    """The (topic, partition key) an event is published with."""
    r = ROUTES[type(event)]
    return r.topic, r.key(event)
