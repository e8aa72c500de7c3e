"""Problem types for HTTP errors (RFC 9457), shared so every service names errors alike.

A response body carries both Resemble's envelope (`success`, `message`, `error`, `error_code`,
`errors`) and the RFC 9457 members (`type`, `title`, `status`, `detail`), see API.md
"Conventions".
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, JsonValue

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        """A path at the server's root: GET it for a page about the problem (intake serves it)."""
        return f"/problems/{self.slug}"


VALIDATION = ProblemType("validation-error", "The request is invalid", 400)
UNAUTHENTICATED = ProblemType("unauthenticated", "Missing or malformed credentials", 401)
INSUFFICIENT_FUNDS = ProblemType("insufficient-funds", "The wallet cannot cover this request", 402)
FORBIDDEN = ProblemType("forbidden", "The token may not do this", 403)
PRODUCT_UNAVAILABLE = ProblemType(
    "product-unavailable", "This server does not offer the requested product", 403
)
NOT_FOUND = ProblemType("not-found", "No such resource", 404)
CONFLICT = ProblemType("conflict", "The resource changed concurrently", 409)
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", "The upload exceeds its size limit", 413)
IDEMPOTENCY_MISMATCH = ProblemType(
    "idempotency-key-reused", "The Idempotency-Key was used for a different request", 422
)
UNPROCESSABLE = ProblemType(
    "unprocessable-media", "The media is valid but holds nothing this request can use", 422
)
RATE_LIMITED = ProblemType("rate-limited", "Too many requests", 429)
INTERNAL = ProblemType("internal-error", "Internal error", 500)
UNAVAILABLE = ProblemType("service-unavailable", "A dependency did not answer in time", 503)

ALL_PROBLEMS: tuple[ProblemType, ...] = (
    VALIDATION,
    UNAUTHENTICATED,
    INSUFFICIENT_FUNDS,
    FORBIDDEN,
    PRODUCT_UNAVAILABLE,
    NOT_FOUND,
    CONFLICT,
    PAYLOAD_TOO_LARGE,
    IDEMPOTENCY_MISMATCH,
    UNPROCESSABLE,
    RATE_LIMITED,
    INTERNAL,
    UNAVAILABLE,
)


class Problem(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(frozen=True)

    success: bool = False
    message: str
    error: str  # Resemble's short error string: the problem's title
    error_code: str  # Resemble's machine-readable code: the problem's slug, with underscores
    errors: dict[str, list[str]] | None = None
    type: str
    title: str
    status: int
    detail: str
    details: dict[str, JsonValue] | None = None

    @classmethod
    def of(
        cls,
        kind: ProblemType,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        details: dict[str, JsonValue] | None = None,
    ) -> Problem:
        return cls(
            message=detail,
            error=kind.title,
            error_code=kind.slug.replace("-", "_"),
            errors=errors,
            type=kind.uri,
            title=kind.title,
            status=kind.status,
            detail=detail,
            details=details,
        )
