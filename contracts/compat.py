"""Backward compatibility of a public JSON Schema with its last released version.

The public topics promise consumers that a release only *adds optional fields*
(contracts/public.py). `breaking_changes` enforces exactly that, and conservatively: a consumer
may have generated classes, validators or `match` statements from the released schema, so a
change that merely *widens* what is sent (`string` → `string|null`, a new enum value) breaks it
as surely as one that narrows it. Allowed, and only these:

- a new property of an object that is not required (when the object admits unknown properties,
  as every public model does: `additionalProperties` absent or true);
- a change of an annotation that no validator or generated type reads: `title`, `description`,
  `examples`, `$comment`, `deprecated` (marking a field deprecated before a new major drops it);
- renaming or reorganising `$defs`: `$ref`s are resolved and the shapes compared, not the names;
- reordering `enum` values, `required` names, `type` lists or `anyOf`/`oneOf` branches.

Everything else that differs is reported, among them: a removed property; a property that
becomes required or stops being required; a new required property; a changed `type` (including
gaining or losing `null`); added or removed `enum` values; a changed `const`, `format`,
`pattern`, bound (`minimum`, `maxLength`, ...), `additionalProperties`, array `items`; and any
keyword this module does not know. `default` counts too: it is what a consumer assumes when the
field is absent, so changing it changes the meaning of data already flowing.

Only local references (`#/...`) are supported; the public schemas are self-contained.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

Schema = dict[str, Any]

SAFE = frozenset({"title", "description", "examples", "$comment", "deprecated"})
# subschemas where absent means `true` (anything), and those where absence means something else
_OPEN_SUBSCHEMA = {"items": "[]", "additionalProperties": ".*", "propertyNames": "/propertyNames"}
_SUBSCHEMA = ("not", "contains", "if", "then", "else")
_SUBSCHEMA_MAPS = ("patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "prefixItems")
_STRUCTURAL = frozenset(
    {"$ref", "$defs", "definitions", "properties", "required", "type", "enum", "anyOf", "oneOf"}
    | {*_OPEN_SUBSCHEMA, *_SUBSCHEMA, *_SUBSCHEMA_MAPS, *_SUBSCHEMA_LISTS}
)


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Why `new` is not a backward-compatible successor of `old`; empty when it is.

    Each message starts with the path of the change, `Detection.metrics.label` style (`[]` is
    an array's items, `*` an object's additional properties)."""
    return list(_Compare(old, new).walk(old, new, str(old.get("title", "$")), frozenset()))


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(node: Schema, key: str) -> str:
    return _canon(node[key]) if key in node else "absent"


class _Compare:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.roots = (old_root, new_root)

    def walk(
        self, old: Any, new: Any, path: str, comparing: frozenset[tuple[str, str]]
    ) -> Iterator[str]:
        (old, old_ref), (new, new_ref) = self._deref(old, 0), self._deref(new, 1)
        pair = (old_ref, new_ref)
        if old_ref and new_ref:
            if pair in comparing:  # a recursive $ref: this pair is already compared above
                return
            comparing |= {pair}
        old_types, new_types = self._types(old, 0), self._types(new, 1)
        if old_types != new_types:
            yield f"{path}: type {'|'.join(old_types)} → {'|'.join(new_types)}"
            return
        yield from self._properties(old, new, path, comparing)
        yield from self._branches(old, new, path, comparing)
        for key, sub in _OPEN_SUBSCHEMA.items():
            if key in old or key in new:
                yield from self.walk(old.get(key, True), new.get(key, True), path + sub, comparing)
        for key in _SUBSCHEMA:
            if key in old and key in new:
                yield from self.walk(old[key], new[key], f"{path}/{key}", comparing)
            elif key in old or key in new:
                yield f"{path}: {key} {_show(old, key)} → {_show(new, key)}"
        for key in _SUBSCHEMA_MAPS:
            old_map, new_map = old.get(key, {}), new.get(key, {})
            if old_map.keys() != new_map.keys():
                yield f"{path}: {key} {sorted(old_map)} → {sorted(new_map)}"
                continue
            for name in old_map:
                sub = f"{path}/{key}/{name}"
                yield from self.walk(old_map[name], new_map[name], sub, comparing)
        for key in _SUBSCHEMA_LISTS:
            old_list, new_list = old.get(key, []), new.get(key, [])
            if len(old_list) != len(new_list):
                yield f"{path}: {key} has {len(old_list)} → {len(new_list)} schemas"
                continue
            for i, (o, n) in enumerate(zip(old_list, new_list, strict=True)):
                yield from self.walk(o, n, f"{path}/{key}/{i}", comparing)
        if "enum" in old or "enum" in new:
            yield from _enum(old, new, path)
        for key in sorted((old.keys() | new.keys()) - SAFE - _STRUCTURAL):
            if key not in old or key not in new or _canon(old[key]) != _canon(new[key]):
                yield f"{path}: {key} {_show(old, key)} → {_show(new, key)}"

    def _properties(
        self, old: Schema, new: Schema, path: str, comparing: frozenset[tuple[str, str]]
    ) -> Iterator[str]:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
        open_before = old.get("additionalProperties", True) is True and not (
            old.keys() & {"patternProperties", "unevaluatedProperties"}
        )
        for name in sorted(old_props.keys() | new_props.keys() | old_req | new_req):
            at = f"{path}.{name}"
            if name in old_props and name not in new_props:
                yield f"{at}: removed"
                continue
            if name in new_req and name not in old_req:
                yield f"{at}: {'became required' if name in old_props else 'new, and required'}"
            elif name in old_req and name not in new_req:
                yield f"{at}: no longer required"
            if name in old_props:
                yield from self.walk(old_props[name], new_props[name], at, comparing)
            elif name in new_props and not open_before:
                yield f"{at}: new, but {path} admitted no unknown properties"

    def _branches(
        self, old: Schema, new: Schema, path: str, comparing: frozenset[tuple[str, str]]
    ) -> Iterator[str]:
        """`anyOf`/`oneOf` branches, paired by their types (their order does not matter)."""
        for key in ("anyOf", "oneOf"):
            old_list, new_list = old.get(key, []), new.get(key, [])
            old_by, new_by = self._by_types(old_list, 0), self._by_types(new_list, 1)
            if sorted(old_by) != sorted(new_by) or any(
                len(old_by[t]) != len(new_by[t]) for t in old_by
            ):
                yield f"{path}: {key} has {len(old_list)} → {len(new_list)} branches"
                continue
            for types, olds in old_by.items():
                for o, n in zip(olds, new_by[types], strict=True):
                    yield from self.walk(o, n, path, comparing)

    def _by_types(self, branches: list[Any], side: int) -> dict[tuple[str, ...], list[Any]]:
        grouped: dict[tuple[str, ...], list[Any]] = {}
        for branch in branches:
            grouped.setdefault(self._types(self._deref(branch, side)[0], side), []).append(branch)
        return grouped

    def _types(self, node: Schema, side: int) -> tuple[str, ...]:
        """The JSON types a node admits: its `type`, or the union of its branches' types."""
        if "type" in node:
            declared = node["type"]
            return tuple(sorted([declared] if isinstance(declared, str) else declared))
        for key in ("anyOf", "oneOf"):
            if key in node:
                branches = (self._deref(b, side)[0] for b in node[key])
                found = {t for b in branches for t in self._types(b, side)}
                return tuple(sorted(found))
        return ("any",)

    def _deref(self, node: Any, side: int) -> tuple[Schema, str]:
        """The node with its `$ref` chain followed (siblings of a `$ref` kept), and the first
        reference followed ("" when none). `true` is the empty schema, `false` its negation."""
        if node is True:
            return {}, ""
        if node is False:
            return {"not": {}}, ""
        first, seen = "", set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"$ref cycle through {ref}")
            seen.add(ref)
            first = first or ref
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**_pointer(self.roots[side], ref), **siblings}
        if not isinstance(node, dict):
            raise ValueError(f"not a schema: {node!r}")
        return node, first


def _enum(old: Schema, new: Schema, path: str) -> Iterator[str]:
    if "enum" not in old or "enum" not in new:
        yield f"{path}: enum {_show(old, 'enum')} → {_show(new, 'enum')}"
        return
    old_values = {_canon(v) for v in old["enum"]}
    new_values = {_canon(v) for v in new["enum"]}
    for value in sorted(new_values - old_values):
        yield f"{path}: enum value {value} added"
    for value in sorted(old_values - new_values):
        yield f"{path}: enum value {value} removed"


def _pointer(root: Schema, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node
