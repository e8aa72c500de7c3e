"""The public events' JSON Schemas: committed, current, compatible with the release, and true.

"True" means the items intake really renders (`views.detect_item`, `views.batch_item`)
validate against them; "compatible" is contracts/compat.py's rule, exercised on mutations of
the released schema itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contracts import public, schemas
from contracts.compat import breaking_changes
from services.intake.api.links import Links
from services.intake.api.views import batch_item, detect_item

Schema = dict[str, Any]
LINKS = Links("https://verity.test", b"k" * 32, ttl_seconds=600)
WHEN = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def released(name: str = "detection.v1.json") -> Schema:
    loaded: Schema = json.loads((schemas.ROOT / "released" / name).read_text())
    return loaded


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((schemas.ROOT / "public" / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_committed_schemas_are_current_and_compatible_with_the_release() -> None:
    assert schemas.main(["--check"]) == 0, "run `python -m contracts.schemas` (see its docstring)"


def test_every_public_event_has_a_released_schema() -> None:
    for kind in public.PUBLIC_EVENTS:
        assert (schemas.ROOT / "released" / kind.schema_file).exists(), kind.type


# --- the schemas describe the items intake renders -------------------------------------------


def detect_row(**changes: Any) -> dict[str, Any]:
    """A read model row of a completed audio detect of a batch, its result as docs/api.md has it."""
    result = {
        "metrics": {
            "label": "fake",
            "score": ["0.91", "0.88"],
            "consistency": "0.93",
            "aggregated_score": "0.90",
        },
        "audio_source_tracing": {"label": "elevenlabs", "error_message": None},
        "model": {"name": "audio-head", "version": "1", "threshold": 0.5},
        "segments": [{"start": 0.0, "end": 2.0, "score": 0.91, "label": "fake"}],
        "visualization": "visualizations/d.png",
    }
    options = {
        "visualize": True,
        "audio_source_tracing": True,
        "intelligence": False,
        "search_identity": False,
        "zero_retention_mode": False,
    }
    row = {
        "detect_id": "d" * 32,
        "batch_id": "b" * 32,
        "kind": "batch",
        "media_type": "audio",
        "status": "completed",
        "filename": "call.wav",
        "duration_seconds": 12.5,
        "analysed_seconds": 12.5,
        "created_at": WHEN,
        "updated_at": WHEN,
        "error_message": None,
        "media_deleted": False,
        "file_deleted_at": None,
        "options": options,
        "result": result,
    }
    return row | changes


DETECT_ITEMS = {
    "completed audio": detect_item(detect_row(), LINKS),
    "failed image, zero retention": detect_item(
        detect_row(
            media_type="image",
            status="failed",
            kind="single",
            duration_seconds=None,
            analysed_seconds=None,
            error_message="could not decode the image",
            result=None,
            media_deleted=True,
            file_deleted_at=WHEN,
            filename="redacted_abc.png",
            options={**detect_row()["options"], "zero_retention_mode": True},
        ),
        LINKS,
    ),
}
BATCH_ITEM = batch_item(
    {
        "batch_id": "b" * 32,
        "status": "cancelled",
        "completed_count": 1,
        "failed_count": 1,
        "total_files": 2,
        "created_at": WHEN,
        "updated_at": WHEN,
        "finished_at": WHEN,
        "detect_ids": ["d" * 32, "e" * 32],
        "options": {"visualize": True},
    }
)


@pytest.mark.parametrize("name", DETECT_ITEMS)
def test_a_rendered_detect_item_is_valid_and_a_broken_one_is_not(name: str) -> None:
    item = DETECT_ITEMS[name]
    public.Detection.checked(item)  # the producer's own check: a sample it refuses is wrong
    schema = validator("detection.v1.json")
    schema.validate(item)
    for broken in ({**item, "status": "bogus"}, {**item, "created_at": "yesterday"}):
        assert not schema.is_valid(broken)
    assert not schema.is_valid({k: v for k, v in item.items() if k != "uuid"})


def test_a_rendered_batch_item_is_valid_and_a_broken_one_is_not() -> None:
    public.Batch.checked(BATCH_ITEM)
    schema = validator("batch.v1.json")
    schema.validate(BATCH_ITEM)
    assert not schema.is_valid({**BATCH_ITEM, "status": "cancelled"})  # Resemble has none
    assert not schema.is_valid({**BATCH_ITEM, "total_files": -1})


def test_the_schemas_are_open_to_fields_added_later() -> None:
    validator("detection.v1.json").validate({**DETECT_ITEMS["completed audio"], "new": 1})


# --- compatibility ---------------------------------------------------------------------------

Mutation = Callable[[Schema], object]


def def_behind(s: Schema, prop: str) -> Schema:
    """The $def behind a property, nullable or not (whatever contracts/results.py calls it)."""
    node = s["properties"][prop]
    ref = node.get("$ref") or next(b["$ref"] for b in node["anyOf"] if "$ref" in b)
    found: Schema = s["$defs"][ref.rsplit("/", 1)[1]]
    return found


def metrics_def(s: Schema) -> Schema:
    return def_behind(s, "metrics")


def first_property(s: Schema) -> str:
    name: str = next(iter(s["properties"]))
    return name


def other_type(node: Schema) -> Schema:
    return {"type": "boolean" if node.get("type") != "boolean" else "integer"}


def rename_def(s: Schema, old: str, new: str) -> None:
    s["$defs"][new] = s["$defs"].pop(old)
    text = json.dumps(s).replace(f'"#/$defs/{old}"', f'"#/$defs/{new}"')
    s.clear()
    s.update(json.loads(text))


def _set(path: str, value: Any) -> Mutation:
    def mutate(s: Schema) -> None:
        *parents, last = path.split(".")
        node = s
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _nested_type(s: Schema) -> None:
    props = metrics_def(s)["properties"]
    name = first_property(metrics_def(s))
    props[name] = other_type(props[name])


BREAKING: dict[str, tuple[Mutation, str]] = {
    "remove a property": (lambda s: s["properties"].pop("filename"), "Detection.filename"),
    "make a property required": (lambda s: s["required"].append("duration"), "Detection.duration"),
    "add a required property": (
        lambda s: (s["properties"].update(score={"type": "number"}), s["required"].append("score")),
        "Detection.score",
    ),
    "stop requiring a property": (lambda s: s["required"].remove("filename"), "Detection.filename"),
    "change a type": (_set("properties.visualize", {"type": "string"}), "Detection.visualize"),
    "nullable to non-null": (
        _set("properties.error_message", {"type": "string"}),
        "Detection.error_message",
    ),
    "non-null to nullable": (
        _set("properties.filename", {"anyOf": [{"type": "string"}, {"type": "null"}]}),
        "Detection.filename",
    ),
    "add an enum value": (
        lambda s: s["properties"]["status"]["enum"].append("processing"),
        "Detection.status",
    ),
    "remove an enum value": (
        lambda s: s["properties"]["status"]["enum"].remove("failed"),
        "Detection.status",
    ),
    "change a format": (_set("properties.created_at.format", "date"), "Detection.created_at"),
    "change a pattern": (_set("properties.uuid.pattern", "^[0-9a-f]+$"), "Detection.uuid"),
    "change a default": (_set("properties.duration.default", 0.0), "Detection.duration"),
    "close an object": (_set("additionalProperties", False), "Detection"),
    "remove a property of a $def": (
        lambda s: metrics_def(s)["properties"].pop(first_property(metrics_def(s))),
        "Detection.metrics.",
    ),
    "change a type in a $def": (_nested_type, "Detection.metrics."),
    "change array items": (
        lambda s: s["properties"]["reasons"]["anyOf"][0].update(items={"type": "integer"}),
        "Detection.reasons[]",
    ),
    "an unknown keyword": (_set("properties.filename.maxLength", 255), "Detection.filename"),
}
COMPATIBLE: dict[str, Mutation] = {
    "a new optional property": _set("properties.new_field", {"type": "string"}),
    "a new optional property in a $def": lambda s: metrics_def(s)["properties"].update(
        new_field={"anyOf": [{"type": "number"}, {"type": "null"}]}
    ),
    "a changed description": _set("properties.filename.description", "The file's name"),
    "a changed title in a $def": lambda s: metrics_def(s).update(title="Verdict"),
    "a renamed $def of the same shape": lambda s: rename_def(s, "Segment", "TimeSegment"),
    "reordered enum values": lambda s: s["properties"]["status"]["enum"].reverse(),
    "reordered anyOf branches": lambda s: s["properties"]["error_message"]["anyOf"].reverse(),
    "deprecated": _set("properties.pipeline.deprecated", True),
}


@pytest.mark.parametrize("name", BREAKING)
def test_a_breaking_change_is_reported_with_its_path(name: str) -> None:
    mutate, path = BREAKING[name]
    new = released()
    mutate(new)
    changes = breaking_changes(released(), new)
    assert changes, f"{name} went unnoticed"
    assert all(change.startswith(path) for change in changes), changes


@pytest.mark.parametrize("name", COMPATIBLE)
def test_a_compatible_change_is_not_reported(name: str) -> None:
    new = released()
    COMPATIBLE[name](new)
    assert new != released()
    assert breaking_changes(released(), new) == []


def test_recursive_refs_are_compared_by_shape_and_terminate() -> None:
    def tree(name: str, value: str) -> Schema:
        node = {
            "type": "object",
            "properties": {
                "value": {"type": value},
                "children": {"type": "array", "items": {"$ref": f"#/$defs/{name}"}},
            },
        }
        return {"title": "Tree", "$ref": f"#/$defs/{name}", "$defs": {name: node}}

    assert breaking_changes(tree("Node", "string"), tree("Branch", "string")) == []
    assert breaking_changes(tree("Node", "string"), tree("Node", "integer")) == [
        "Tree.value: type string → integer"
    ]


def test_each_shared_def_is_reported_where_it_is_used() -> None:
    new = released()
    visual = def_behind(new, "image_metrics")
    visual["properties"].pop(first_property(visual))
    changes = breaking_changes(released(), new)
    assert {c.split(".")[1] for c in changes} == {"image_metrics", "video_metrics"}


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(schemas, "ROOT", tmp_path)
    assert schemas.main([]) == 0
    assert schemas.main(["--release"]) == 0
    return tmp_path


def test_check_passes_right_after_a_release(root: Path) -> None:
    assert schemas.main(["--check"]) == 0
    assert sorted(p.name for p in (root / "released").iterdir()) == sorted(schemas.build())


def test_check_fails_when_a_committed_schema_is_stale(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "public" / "batch.v1.json").write_text("{}\n")
    assert schemas.main(["--check"]) == 1
    assert "batch.v1.json is stale" in capsys.readouterr().out


def test_check_and_release_fail_when_the_release_is_incompatible(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frozen = root / "released" / "detection.v1.json"
    old = json.loads(frozen.read_text())
    old["properties"]["status"]["enum"].append("processing")  # v1 promised it; gone now
    frozen.write_text(schemas.render(old))
    before = frozen.read_text()
    assert schemas.main(["--check"]) == 1
    assert schemas.main(["--release"]) == 1
    assert frozen.read_text() == before
    out = capsys.readouterr().out
    assert "detection.v1.json breaks its release (needs a new major): Detection.status: enum" in out


def test_check_fails_when_a_released_schema_is_no_longer_published(root: Path) -> None:
    (root / "released" / "detection.v0.json").write_text("{}\n")
    assert schemas.main(["--check"]) == 1
