"""The HTTP edge's one translation of errors into problem+json (API.md "Conventions").

ApiError (services/intake/errors.py), Litestar's own errors and anything unexpected all leave
as one problem+json response each.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from contracts import problems as p
from services.intake.errors import ApiError

log = logging.getLogger(__name__)

# the problem type of each status that Litestar's own errors (routing, parameters) take; a status
# with several types (403, 422) takes the general one
_BY_STATUS = {
    kind.status: kind
    for kind in p.ALL_PROBLEMS
    if kind not in (p.PRODUCT_UNAVAILABLE, p.IDEMPOTENCY_MISMATCH)
}


def _response(problem: p.Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=p.PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return _response(exc.problem, exc.headers)


def on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors (bad parameters, unknown routes, 405s) in our shape."""
    kind = _BY_STATUS.get(exc.status_code)
    if kind is None:
        kind = p.VALIDATION if exc.status_code < 500 else p.INTERNAL
    errors: dict[str, list[str]] | None = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = {}
        for item in exc.extra:
            if isinstance(item, dict):
                errors.setdefault(str(item.get("key", "request")), []).append(
                    str(item.get("message", ""))
                )
    problem = p.Problem.of(kind, exc.detail, errors=errors)
    if problem.status != exc.status_code:
        problem = problem.model_copy(update={"status": exc.status_code})
    return _response(problem, dict(exc.headers or {}))


def on_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", exc_info=exc)
    return _response(p.Problem.of(p.INTERNAL, "internal error; it has been logged"))


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    ApiError: on_api_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
