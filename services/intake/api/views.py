"""Reads of batches and detects: queries of the read model and their wire shapes (API.md).

Every query is scoped to a team: another team's uuid finds nothing, exactly like an unknown
one. Batches still waiting for the wallet, rejected (402) or abandoned (503) never became
visible: a client never got a 202 for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from contracts import events as ev
from services.common.db import Conn
from services.intake.api.links import Links
from services.intake.api.wire import cents, timestamp
from services.intake.store.batches import PayloadRenderer

VISIBLE = ("processing", "completed", "partially_failed", "failed", "cancelled")
# keys of a detector result copied onto the detect item (API.md "The detect item")
RESULT_KEYS = (
    "metrics",
    "image_metrics",
    "video_metrics",
    "audio_source_tracing",
    "intelligence",
    "identity_matches",
    "watermark",
    "model",
    "segments",
    "reasons",
)
# Resemble's schema has these as objects that are never null: absent instead of null
OMITTED_WHEN_NULL = frozenset(
    {"metrics", "image_metrics", "video_metrics", "watermark", "duration"}
)
Row = Mapping[str, Any]


def _row(record: Any) -> Row | None:
    return dict(record) if record is not None else None


_BATCH_SELECT = """
SELECT b.*,
  coalesce((SELECT sum(CASE l.kind WHEN 'capture' THEN amount_micros ELSE -amount_micros END)
            FROM account_ledger l WHERE l.batch_id = b.batch_id
            AND l.kind IN ('capture', 'refund')), 0)::bigint AS charged_micros,
  coalesce((SELECT sum(amount_micros) FROM account_ledger l
            WHERE l.batch_id = b.batch_id AND l.kind IN ('release', 'refund')), 0)::bigint
    AS refunded_micros
FROM batches b
"""


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int


def wire_status(status: str, completed_count: int) -> str:
    """Resemble's batch statuses have no `cancelled`: a cancelled batch is reported by what its
    files became (the stopped ones failed), with `cancelled: true` beside it [ours]."""
    if status != "cancelled":
        return status
    return "partially_failed" if completed_count else "failed"


def batch_item(row: Row) -> dict[str, JsonValue]:
    body: dict[str, JsonValue] = {
        "uuid": row["batch_id"],
        "status": wire_status(row["status"], row["completed_count"]),
        "cancelled": row["status"] == "cancelled",
        "total_files": row["total_files"],
        "completed_count": row["completed_count"],
        "failed_count": row["failed_count"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "finished_at": timestamp(row["finished_at"]),
        "detect_uuids": list(row["detect_ids"]),
        "settings": row["options"],
    }
    if "charged_micros" in row:
        body["charged_cents"] = cents(row["charged_micros"])
        body["refunded_cents"] = cents(row["refunded_micros"])
    return body


def detect_item(row: Row, links: Links) -> dict[str, JsonValue]:
    options = row["options"]
    result: Mapping[str, JsonValue] = row["result"] or {}
    retained = not options["zero_retention_mode"] and not row["media_deleted"]
    url = links.media(row["detect_id"]) if retained else None
    body: dict[str, JsonValue] = {key: result.get(key) for key in RESULT_KEYS}
    if result.get("visualization"):
        _link_visualization(body, links.visualization(row["detect_id"]))
    body.update(
        {
            "uuid": row["detect_id"],
            "media_type": row["media_type"],
            "status": row["status"],
            "filename": row["filename"],
            "duration": row["duration_seconds"],
            "analysed_seconds": row["analysed_seconds"],
            "created_at": timestamp(row["created_at"]),
            "updated_at": timestamp(row["updated_at"]),
            "error_message": row["error_message"],
            "visualize": options["visualize"],
            "audio_source_tracing_enabled": options["audio_source_tracing"],
            "intelligence_enabled": options["intelligence"],
            "search_identity": options["search_identity"],
            "zero_retention_mode": options["zero_retention_mode"],
            "url": url,
            "audio_url": url if row["media_type"] == "audio" else None,
            "media_deleted": row["media_deleted"],
            "file_deleted_at": timestamp(row["file_deleted_at"]),
            "batch_uuid": row["batch_id"] if row["kind"] == "batch" else None,
            # Resemble's request fields, as this detect ran them (docs/api.md)
            "modality": options.get("modality", "all"),
            "face_only": _face_only(row, options),
            "use_ood_detector": options.get("use_ood_detector", False),
            "pipeline": options.get("pipeline"),
            "extra_params": _extra_params(options),
        }
    )
    return {k: v for k, v in body.items() if v is not None or k not in OMITTED_WHEN_NULL}


def _face_only(row: Row, options: Mapping[str, Any]) -> bool:
    """Effective, as Resemble reports it: only a video whose pictures are analysed."""
    faces = bool(options.get("face_only")) or options.get("model_types") == "talking_head"
    return faces and row["media_type"] == "video" and options.get("modality", "all") != "audio"


def _extra_params(options: Mapping[str, Any]) -> dict[str, JsonValue]:
    """Resemble's request fields that have no field of their own on the item, as given."""
    echoed = ("wait_for_intelligence", "infer_from_intelligence", "model_types", "max_video_fps")
    return {key: options[key] for key in echoed if options.get(key) not in (None, False)}


def _link_visualization(body: dict[str, JsonValue], link: str) -> None:
    """The PNG goes where API.md puts it: `image` of the metrics the modality has."""
    for key in ("video_metrics", "image_metrics", "metrics"):
        metrics = body.get(key)
        if isinstance(metrics, dict):
            body[key] = {**metrics, "image": link}
            return


async def batch_row(conn: Conn, team_id: str, batch_id: str, *, kind: str = "batch") -> Row | None:
    return _row(
        await conn.fetchrow(
            _BATCH_SELECT + " WHERE b.batch_id = $1 AND b.team_id = $2 AND b.kind = $3"
            " AND b.status = ANY($4::text[])",
            batch_id,
            team_id,
            kind,
            list(VISIBLE),
        )
    )


async def batch_page(conn: Conn, team_id: str, page: int, page_size: int) -> Page:
    where = " WHERE b.team_id = $1 AND b.kind = 'batch' AND b.status = ANY($2::text[])"
    total = await conn.fetchval("SELECT count(*) FROM batches b" + where, team_id, list(VISIBLE))
    rows = await conn.fetch(
        _BATCH_SELECT + where + " ORDER BY b.created_at DESC, b.batch_id LIMIT $3 OFFSET $4",
        team_id,
        list(VISIBLE),
        page_size,
        (page - 1) * page_size,
    )
    return Page([dict(r) for r in rows], total)


async def detect_row(conn: Conn, team_id: str, detect_id: str) -> Row | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM detects WHERE detect_id = $1 AND team_id = $2", detect_id, team_id
        )
    )


async def detect_page(
    conn: Conn, team_id: str, page: int, page_size: int, where: str = "team_id = $1"
) -> Page:
    """The team's detects matching `where` (its $1 is the team), newest first."""
    total = await conn.fetchval(f"SELECT count(*) FROM detects WHERE {where}", team_id)
    rows = await conn.fetch(
        f"SELECT * FROM detects WHERE {where}"
        " ORDER BY created_at DESC, position DESC, detect_id LIMIT $2 OFFSET $3",
        team_id,
        page_size,
        (page - 1) * page_size,
    )
    return Page([dict(r) for r in rows], total)


# --- audio source tracings (Resemble's GET /audio_source_tracings): a view of the detects ------

_TRACED = (
    "team_id = $1 AND status = 'completed' AND (options->>'audio_source_tracing')::boolean"
    " AND result->'metrics' IS NOT NULL"
)


async def tracing_page(conn: Conn, team_id: str, page: int, page_size: int) -> Page:
    return await detect_page(conn, team_id, page, page_size, where=_TRACED)


async def tracing_row(conn: Conn, team_id: str, tracing_id: str) -> Row | None:
    return _row(
        await conn.fetchrow(
            f"SELECT * FROM detects WHERE {_TRACED} AND detect_id = $2", team_id, tracing_id
        )
    )


def tracing_item(row: Row) -> dict[str, JsonValue]:
    """A tracing report is named by its detect's uuid. Resemble's `results.label` is the
    synthesizer family of a fake, `real` for a voice judged real; tracing runs only on fakes."""
    result: Mapping[str, Any] = row["result"] or {}
    traced = result.get("audio_source_tracing")
    verdict = (result.get("metrics") or {}).get("label")
    if isinstance(traced, dict) and traced.get("label"):
        results: dict[str, JsonValue] = dict(traced)
    elif isinstance(traced, dict):
        results = {**traced, "label": "unknown"}
    elif verdict == "real":
        results = {"label": "real", "error_message": None}
    else:
        reason = "the audio got no verdict, so nothing was traced"
        results = {"label": "inconclusive", "error_message": reason}
    return {
        "uuid": row["detect_id"],
        "detect_uuid": row["detect_id"],
        "results": results,
        "created_at": timestamp(row["updated_at"]),
    }


def callback_renderer(links: Links) -> PayloadRenderer:
    """What the notifier POSTs when a batch ends: the batch item, or a single detect's item."""

    async def render(conn: Conn, terminal: ev.BatchTerminal) -> dict[str, JsonValue]:
        row = await conn.fetchrow("SELECT * FROM batches WHERE batch_id = $1", terminal.batch_id)
        assert row is not None, "a terminal batch has a read model row"
        if row["kind"] == "single":
            detect = await conn.fetchrow(
                "SELECT * FROM detects WHERE batch_id = $1", terminal.batch_id
            )
            assert detect is not None
            return {"success": True, "item": detect_item(dict(detect), links)}
        ended = {
            **row,
            "status": terminal.status,
            "completed_count": terminal.completed_count,
            "failed_count": terminal.failed_count,
            "updated_at": terminal.occurred_at,
            "finished_at": terminal.occurred_at,
        }
        return {"success": True, "item": batch_item(ended)}

    return render


# --- identities --------------------------------------------------------------------------------

_IDENTITY_COLUMNS = (
    "identity_id, name, status, speech_seconds, error_code, error_message, created_at, updated_at"
)


async def identity_row(conn: Conn, team_id: str, identity_id: str) -> Row | None:
    return _row(
        await conn.fetchrow(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE team_id = $1 AND identity_id = $2",
            team_id,
            identity_id,
        )
    )


async def identity_page(
    conn: Conn, team_id: str, page: int, page_size: int, search: str | None
) -> tuple[list[Row], int]:
    """Newest first; `search` matches names case-insensitively, anywhere in the name."""
    pattern = None
    if search:  # ILIKE's wildcards in the search text match themselves
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    where = "team_id = $1 AND ($2::text IS NULL OR name ILIKE $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM identities WHERE {where}", team_id, pattern)
    rows = await conn.fetch(
        f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE {where}"
        " ORDER BY created_at DESC, identity_id LIMIT $3 OFFSET $4",
        team_id, pattern, page_size, (page - 1) * page_size,
    )  # fmt: skip
    return [dict(r) for r in rows], int(total)


def identity_item(row: Row) -> dict[str, Any]:
    return {
        "uuid": row["identity_id"],
        "name": row["name"],
        "status": row["status"],
        "speech_seconds": row["speech_seconds"],
        "error_message": row["error_message"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }
