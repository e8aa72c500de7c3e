"""ApiError: what any part of a request raises to answer with a problem (API.md "Conventions").

Uploads, options, the saga's submission and idempotency all refuse requests this way; only the
HTTP edge (api/errors.py) turns it into a response. A leaf module, so that those parts need not
import the edge.
"""

from __future__ import annotations

from pydantic import JsonValue

from contracts import problems as p


class ApiError(Exception):
    """Raised anywhere in a request: becomes one problem+json response."""

    def __init__(
        self,
        kind: p.ProblemType,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        details: dict[str, JsonValue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = p.Problem.of(kind, detail, errors=errors, details=details)
        self.headers = headers or {}
