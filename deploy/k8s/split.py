"""Splits `kustomize build` output for the validators (stdlib only; validate.sh runs it).

    python3 deploy/k8s/split.py BUILT.yaml OUTDIR

writes OUTDIR/core.yaml (the Kubernetes kinds, for kubernetes-validate) and one file per
custom resource under OUTDIR/cr/ (for check-jsonschema against schemas/custom-resources.json,
which takes one document per file). A custom resource whose apiVersion and kind the schema
does not know fails here, by name: an unvalidated kind must not pass silently.

kustomize writes block-style YAML with top-level keys at column 0, so the few fields needed
here are read with patterns; nothing else in the documents is interpreted.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

SCHEMA = Path(__file__).resolve().parent / "schemas" / "custom-resources.json"
_TOP = re.compile(r"^(apiVersion|kind): *(\S+) *$", re.MULTILINE)
_META = re.compile(r"^metadata:\n((?:[ \-].*\n?)*)", re.MULTILINE)
_FIELD = re.compile(r"^  (name|namespace): *(\S+) *$", re.MULTILINE)


class Document(NamedTuple):
    api_version: str
    kind: str
    name: str
    namespace: str
    text: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def is_core(self) -> bool:
        """Kinds the Kubernetes API itself serves (kubernetes-validate knows them)."""
        return "." not in self.group or self.group.endswith(".k8s.io")


def documents(text: str) -> list[Document]:
    docs = []
    for chunk in re.split(r"^---[ \t]*$\n?", text, flags=re.MULTILINE):
        if not chunk.strip() or all(
            not line.strip() or line.lstrip().startswith("#") for line in chunk.splitlines()
        ):
            continue
        top = dict(_TOP.findall(chunk))
        meta = _META.search(chunk)
        fields = dict(_FIELD.findall(meta.group(1))) if meta else {}
        if "apiVersion" not in top or "kind" not in top:
            raise ValueError(f"a document without apiVersion or kind:\n{chunk[:300]}")
        docs.append(
            Document(
                top["apiVersion"],
                top["kind"],
                fields.get("name", "").strip("\"'"),
                fields.get("namespace", "").strip("\"'"),
                chunk if chunk.endswith("\n") else chunk + "\n",
            )
        )
    return docs


def known_custom_resources(schema: Path = SCHEMA) -> set[tuple[str, str]]:
    """The (apiVersion, kind) pairs schemas/custom-resources.json dispatches on."""
    known = set()
    for branch in json.loads(schema.read_text())["allOf"]:
        props = branch.get("if", {}).get("properties", {})
        if "apiVersion" in props and "kind" in props:
            known.add((props["apiVersion"]["const"], props["kind"]["const"]))
    return known


def split(built: Path, out: Path) -> tuple[int, int]:
    docs = documents(built.read_text())
    known = known_custom_resources()
    unknown = sorted(
        {(d.api_version, d.kind) for d in docs if not d.is_core} - known,
    )
    if unknown:
        raise SystemExit(
            f"{built}: no schema for {', '.join(f'{a} {k}' for a, k in unknown)} "
            f"(add it to {SCHEMA.relative_to(SCHEMA.parents[3])})"
        )
    (out / "cr").mkdir(parents=True, exist_ok=True)
    core = [d for d in docs if d.is_core]
    (out / "core.yaml").write_text("".join("---\n" + d.text for d in core))
    custom = [d for d in docs if not d.is_core]
    for i, d in enumerate(custom):
        (out / "cr" / f"{i:03d}-{d.kind}-{d.name}.yaml").write_text(d.text)
    return len(core), len(custom)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    core, custom = split(Path(argv[0]), Path(argv[1]))
    print(f"{argv[0]}: {core} Kubernetes objects, {custom} custom resources")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
