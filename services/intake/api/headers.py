"""Headers on every response of the API: `X-Request-Id`, and the token's RateLimit fields.

`X-Request-Id` echoes the client's own when it is a sane one (1-128 of `A-Za-z0-9._:-`), else
a new id, so a client and an operator can name one request to each other. Authentication
(auth.py) leaves the request's Allowance in the ASGI scope; the `before_send` hook turns it into
the IETF RateLimit fields (ratelimit.py) on whatever response the request ends with, 429
included.
"""

from __future__ import annotations

import re
from typing import Any, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from contracts.ids import new_id
from services.intake.api.ratelimit import Allowance

REQUEST_ID = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ALLOWANCE = "verity.allowance"


def remember_allowance(scope: Scope, allowance: Allowance, policy: str) -> None:
    cast(dict[str, Any], scope)[_ALLOWANCE] = (allowance, policy)


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID.encode():
            candidate = value.decode("latin-1")
            return candidate if _SANE_ID.fullmatch(candidate) else new_id()
    return new_id()


async def add_response_headers(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: runs for every response, the router's 404 and 405 too."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers[REQUEST_ID] = request_id_of(scope)
    remembered = cast(dict[str, Any], scope).get(_ALLOWANCE)
    if remembered is not None:
        allowance, policy = remembered
        headers["RateLimit-Policy"] = policy
        headers["RateLimit"] = allowance.header()
