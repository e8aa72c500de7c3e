"""GET /problems/{slug}: the page each problem's `type` names (RFC 9457, API.md "Conventions").

Every error body's `type` is `/problems/<slug>` (contracts/problems.py): an absolute path, so a
client resolves it against the host it called and lands here, at the root (not under /api/v2).
One small HTML page per problem type says what it means and what to do; it needs no token.
"""

from __future__ import annotations

import html
import re

from litestar import Controller, MediaType, get
from litestar.params import FromPath

from contracts import problems as p
from services.intake.api import openapi as doc
from services.intake.errors import ApiError

# what each problem means, and what the client can do about it
PAGES: dict[str, tuple[str, str]] = {
    p.VALIDATION.slug: (
        "The request breaks a rule of the API: a missing or unknown field, a value out of range,"
        " a file that is not an allowed media type, a malformed header.",
        "Read `errors`: it names each offending field (or file, or header) with what is wrong."
        " Fix those and send the request again; nothing was created or charged.",
    ),
    p.UNAUTHENTICATED.slug: (
        "The request has no `Authorization` header, or one in no spelling this API reads.",
        "Send `Authorization: Bearer <api token>` (or `Token token=<api token>`, as Resemble's"
        " SDKs do). Tokens come from the operator (`verity-admin token create`).",
    ),
    p.INSUFFICIENT_FUNDS.slug: (
        "The team's wallet cannot cover what the request would cost. Billing is all or"
        " nothing: no detect was created and the uploaded media was deleted.",
        "`details` has the figures in cents (required, available, shortfall, and each file's"
        " estimate). Ask the operator to credit the wallet, or send fewer or shorter files.",
    ),
    p.FORBIDDEN.slug: (
        "The API token is unknown or revoked, or a signed link (a visualization) is invalid or"
        " has expired.",
        "Use a current token. For a visualization, GET the detect again: every read renders a"
        " fresh link.",
    ),
    p.PRODUCT_UNAVAILABLE.slug: (
        "The request asks for a product this server does not offer (Resemble's `signal` or"
        " `use_reverse_search`, say). `errors` names the fields.",
        "Send those fields as false, or leave them out.",
    ),
    p.NOT_FOUND.slug: (
        "No such resource for this team. Another team's uuid looks exactly like an unknown one,"
        " and so does a malformed one.",
        "Check the uuid (32 hex characters; dashes are accepted) and the token's team.",
    ),
    p.CONFLICT.slug: (
        "The resource is in a state that forbids the request (cancelling a finished batch,"
        " deleting a detect that is still running), or another request changed it meanwhile.",
        "GET the resource to see its state; retry once it allows the request.",
    ),
    p.PAYLOAD_TOO_LARGE.slug: (
        "The upload or body is over its limit (one file 150 MB, a batch 500 MB, a JSON body"
        " 64 KB). The server stopped reading as soon as the limit was crossed.",
        "Send smaller files, or split a batch into several.",
    ),
    p.IDEMPOTENCY_MISMATCH.slug: (
        "The `Idempotency-Key` was first used, within the last 24 hours, for a different"
        " request (other fields or other files).",
        "Use a new key for a new request; reuse a key only to retry the very same request.",
    ),
    p.UNPROCESSABLE.slug: (
        "The request is well-formed but the media (or the resource) holds nothing it can use:"
        " a voice sample without enough speech, a question about a detect not yet completed.",
        "Read `detail`: send a longer or clearer sample, or wait until the detect completes.",
    ),
    p.RATE_LIMITED.slug: (
        "The token sent more requests than its allowance (40 per second by default).",
        "Wait `Retry-After` seconds; the `RateLimit` header says what is left of the"
        " allowance, so a client can pace itself before it gets here.",
    ),
    p.INTERNAL.slug: (
        "The server failed in a way it did not expect. It has been logged.",
        "Retry later; if it persists, give the operator the response's `X-Request-Id`.",
    ),
    p.UNAVAILABLE.slug: (
        "A service this request depends on (the wallet, the detector) did not answer in time."
        " Nothing was created or charged.",
        "Retry after `Retry-After` seconds, with the same `Idempotency-Key` if you sent one.",
    ),
}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p><code>type: {uri}</code> &middot; <code>error_code: {code}</code> &middot; HTTP {status}</p>
<h2>What it means</h2>
<p>{meaning}</p>
<h2>What to do</h2>
<p>{remedy}</p>
</body></html>
"""

_KINDS = {kind.slug: kind for kind in p.ALL_PROBLEMS}


def _text(markdown: str) -> str:
    """Escaped, with `code` spans kept as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(markdown))


def page(kind: p.ProblemType) -> str:
    meaning, remedy = PAGES[kind.slug]
    return _PAGE.format(
        title=html.escape(kind.title),
        uri=html.escape(kind.uri),
        code=kind.slug.replace("-", "_"),
        status=kind.status,
        meaning=_text(meaning),
        remedy=_text(remedy),
    )


class ProblemController(Controller):
    path = "/problems"
    tags = ["problems"]

    @get(
        "/{slug:str}",
        summary="What a problem type means and what to do about it",
        operation_id="getProblemType",
        media_type=MediaType.HTML,
        response_description="The problem type's page",
        responses=doc.answers({}, errors=(404,), public=True),
        operation_class=doc.PUBLIC,
    )
    async def problem_page(self, slug: FromPath[str]) -> str:
        kind = _KINDS.get(slug)
        if kind is None:
            raise ApiError(p.NOT_FOUND, f"no problem type {slug!r}")
        return page(kind)
