"""Media tokens (POST /secure_uploads -> `media_token` of POST /detect): signed, team-bound.

A token is `<upload id>.<expires>.<signature>`, the signature HMAC-SHA256 over
"media:<team id>:<upload id>:<expires>" with the operator's key (VERITY_URL_SIGNING_KEY, as
for visualization links): another team's token, an edited one or an expired one is refused
before anything is looked up. Whether it was already used is the store's to say
(store/secure_uploads.py): a token is good for one detect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from contracts.ids import ID_PATTERN
from services.intake.api.links import same_signature, sign


@dataclass(frozen=True)
class MediaTokens:
    signing_key: bytes
    ttl_seconds: float

    def issue(self, team_id: str, upload_id: str, now: float | None = None) -> tuple[str, int]:
        """(token, expires unix seconds)."""
        expires = int((time.time() if now is None else now) + self.ttl_seconds)
        return f"{upload_id}.{expires}.{self._sign(team_id, upload_id, expires)}", expires

    def verify(self, team_id: str, token: str, now: float | None = None) -> str:
        """The upload id of a valid token of this team; ValueError saying what is wrong."""
        upload_id, _, rest = token.partition(".")
        expires_text, _, signature = rest.partition(".")
        if not (ID_PATTERN.fullmatch(upload_id) and expires_text.isdigit() and signature):
            raise ValueError("is not a media token from POST /secure_uploads")
        expires = int(expires_text)
        if not same_signature(self._sign(team_id, upload_id, expires), signature):
            raise ValueError("is not valid for this team (or was altered)")
        if expires < (time.time() if now is None else now):
            raise ValueError("has expired; upload the file again")
        return upload_id

    def _sign(self, team_id: str, upload_id: str, expires: int) -> str:
        return sign(self.signing_key, f"media:{team_id}:{upload_id}:{expires}")
