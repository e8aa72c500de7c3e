"""Resemble's published OpenAPI (tests/data/resemble/openapi.json) as a response validator.

`check` is an httpx response hook: every JSON body from an endpoint that Resemble's spec also
describes must validate against the spec's schema for that method, path and status, or against
its `Error` schema when the spec lists no body for that status (our 401, 409, 413, 429, 503).
Our own additions are extra fields, which the spec allows; a changed type fails the request.
Paths are matched below `/api/v2` and at the `/` alias.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[1] / "data" / "resemble" / "openapi.json"
PREFIX = "/api/v2"
URN = "urn:resemble"


class SpecViolationError(AssertionError):
    """A response body that Resemble's published schema does not accept."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    schemas: dict[int, str | None]  # status -> JSON pointer of its body schema (None: no body)


@functools.cache
def _spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC.read_text())
    return loaded


@functools.cache
def operations() -> tuple[Operation, ...]:
    found = []
    for template, item in _spec()["paths"].items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            schemas: dict[int, str | None] = {}
            for status, response in op.get("responses", {}).items():
                if not status.isdigit():
                    continue
                body = response.get("content", {}).get("application/json", {}).get("schema")
                where = ("paths", template, method, "responses", status, "content",
                         "application/json", "schema")  # fmt: skip
                schemas[int(status)] = _pointer(where) if body else None
            found.append(Operation(method.upper(), template, re.compile(regex + "/?"), schemas))
    # literal segments first, so that /detect/batch is not taken for /detect/{uuid}
    found.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
    return tuple(found)


def _pointer(parts: tuple[str, ...]) -> str:
    """A JSON pointer (RFC 6901) into the spec."""
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        URN, Resource.from_contents(_spec(), default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{URN}{pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def operation_for(method: str, path: str) -> Operation | None:
    if path.startswith(PREFIX + "/"):
        path = path[len(PREFIX) :]
    for op in operations():
        if op.method == method and op.pattern.fullmatch(path):
            return op
    return None


def violations(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with `body` by Resemble's spec ([] when it validates or is not covered)."""
    op = operation_for(method, path)
    if op is None:
        return []
    pointer = op.schemas.get(status, "#/components/schemas/Error" if status >= 400 else None)
    if pointer is None:
        return []
    return [_describe(error, pointer) for error in _validator(pointer).iter_errors(body)]


def _describe(error: ValidationError, pointer: str) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "<body>"
    schema = error.schema.get("title", pointer) if isinstance(error.schema, dict) else pointer
    return f"{where}: {error.message} (schema {schema})"


async def check(response: httpx.Response) -> None:
    """httpx response hook: raise SpecViolationError for a body Resemble's schema refuses."""
    if "json" not in response.headers.get("content-type", ""):
        return
    await response.aread()
    request = response.request
    found = violations(request.method, request.url.path, response.status_code, response.json())
    if found:
        raise SpecViolationError(
            f"{request.method} {request.url.path} -> {response.status_code} breaks Resemble's"
            " published schema:\n  " + "\n  ".join(found[:20])
        )


Client = TypeVar("Client", bound=httpx.AsyncClient)


def checked(client: Client) -> Client:
    """`client` with `check` on every response (works for Litestar's AsyncTestClient too)."""
    client.event_hooks = {
        **client.event_hooks,
        "response": [*client.event_hooks["response"], check],
    }
    return client
