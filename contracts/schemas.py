"""The JSON Schemas of the public events' data, generated from contracts/public.py.

    python -m contracts.schemas            # rewrite contracts/schemas/public/*.json
    python -m contracts.schemas --check    # exit 1 when stale, or incompatible with the release
    python -m contracts.schemas --release  # freeze the current schemas as the released ones

Other teams' consumers are built against these files (intake serves them at `/events/schemas`,
each event names its own in `ce_dataschema`), so they are committed, reviewed and checked:

- `public/<name>.v<major>.json` is what the code publishes now: one file per data model and
  major version (several event types share one), draft 2020-12, generated from the pydantic
  model in serialization mode: the data is the item as the HTTP API renders it (canonical ids,
  timestamps as `date-time` strings), not what the model would accept as input. `--check`
  fails while a committed file differs from generation, as the AsyncAPI document's does.
- `released/<name>.v<major>.json` is a frozen copy of each schema as of the last release.
  `--check` also fails when a generated schema is not backward compatible with its released
  copy (contracts/compat.py has the rules: in short, only new optional fields), so an
  incompatible change cannot reach a release unnoticed. The test suite runs `--check`
  (tests/unit/test_public_schemas.py).
- `$id` is `urn:verity:schema:<name>:v<major>`: a name for the contract, not a location, since
  every deployment serves the files at its own URL; compatible releases keep it.

A release: `--release` (refused while `--check` fails) copies the current schemas over the
released ones; commit them with the release. Between releases the public files may only grow
compatibly away from the released ones.

A breaking change is a new major, never an edit of the released one: a new model and a new topic
(`verity.public.detections.v2`) with their own `PublicEvent`s, hence a new file
`detection.v2.json`, published beside v1 while consumers move. Retiring v1 means removing its
events and deleting `released/detection.v1.json` in the same change (`--check` fails while a
released schema is no longer generated, so that cannot happen by accident).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from contracts.compat import breaking_changes
from contracts.public import PUBLIC_EVENTS, Item

ROOT = Path(__file__).parent / "schemas"  # public/ and released/; tests point it elsewhere
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class PublicSchemaGenerator(GenerateJsonSchema):
    """A key that may be missing but is never null (`results.absent`) is not required, and
    shows no `default: null`: a consumer would read that as a value the key may have."""

    def default_schema(self, schema: Any) -> JsonSchemaValue:  # a core WithDefaultSchema
        generated = super().default_schema(schema)
        if generated.get("default", 0) is None and not _nullable(generated):
            del generated["default"]
        return generated


def _nullable(schema: JsonSchemaValue) -> bool:
    return schema.get("type") == "null" or any(_nullable(b) for b in schema.get("anyOf", ()))


def build() -> dict[str, dict[str, Any]]:
    """Every public schema, by file name."""
    models: dict[str, tuple[type[Item], str, int]] = {}
    for kind in PUBLIC_EVENTS:
        entry = (kind.model, kind.schema_name, kind.major)
        if models.setdefault(kind.schema_file, entry) != entry:
            raise ValueError(f"{kind.schema_file}: two models for one schema file")
    return {
        file: {
            "$schema": DIALECT,
            "$id": f"urn:verity:schema:{name}:v{major}",
            **model.model_json_schema(mode="serialization", schema_generator=PublicSchemaGenerator),
        }
        for file, (model, name, major) in sorted(models.items())
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def problems(root: Path, built: dict[str, dict[str, Any]]) -> list[str]:
    """What makes `--check` fail: stale public files, incompatibility with the released ones."""
    found: list[str] = []
    public, released = root / "public", root / "released"
    for file, schema in built.items():
        path = public / file
        if not path.exists() or path.read_text() != render(schema):
            found.append(f"{path} is stale: run `python -m contracts.schemas`")
        if (released / file).exists():
            old = json.loads((released / file).read_text())
            changes = breaking_changes(old, schema)
            found += [f"{file} breaks its release (needs a new major): {c}" for c in changes]
    for path in sorted(public.glob("*.json")):
        if path.name not in built:
            found.append(f"{path} is no longer generated: run `python -m contracts.schemas`")
    for path in sorted(released.glob("*.json")):
        if path.name not in built:
            found.append(f"{path} is released but no longer published (see the docstring)")
    return found


def _write(directory: Path, built: dict[str, dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for file, schema in built.items():
        (directory / file).write_text(render(schema))
        print(f"wrote {directory / file}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    built = build()
    if "--check" in args or "--release" in args:
        if found := problems(ROOT, built):
            print("\n".join(found))
            return 1
        if "--release" in args:
            _write(ROOT / "released", built)
        return 0
    _write(ROOT / "public", built)
    for path in sorted((ROOT / "public").glob("*.json")):
        if path.name not in built:
            path.unlink()
            print(f"deleted {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
