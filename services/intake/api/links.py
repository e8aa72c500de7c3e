"""The URLs a detect item points to: its media, and its visualization behind a signed,
expiring link (API.md: "served by intake through expiring signed URLs").

A visualization link needs no API token, so it can be put in an <img> tag or handed on; it
works until `expires` (unix seconds) and only for the detect it names. The signature is
HMAC-SHA256 over "<detect id>.<expires>" with the operator's key (VERITY_URL_SIGNING_KEY);
every intake replica must share it. Each GET of a detect renders a fresh link.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

VISUALIZATION_PATH = "/api/v2/visualizations"


@dataclass(frozen=True)
class Links:
    public_url: str
    signing_key: bytes
    ttl_seconds: float

    def media(self, detect_id: str) -> str:
        return f"{self.public_url}/api/v2/detect/{detect_id}/media"

    def visualization(self, detect_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_seconds)
        signature = self._sign(detect_id, expires)
        return (
            f"{self.public_url}{VISUALIZATION_PATH}/{detect_id}.png"
            f"?expires={expires}&signature={signature}"
        )

    def valid(self, detect_id: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (time.time() if now is None else now):
            return False
        return same_signature(self._sign(detect_id, expires), signature)

    def _sign(self, detect_id: str, expires: int) -> str:
        return sign(self.signing_key, f"{detect_id}.{expires}")


def sign(key: bytes, message: str) -> str:
    """HMAC-SHA256 of `message` with the operator's key, as hex (links and media tokens)."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def same_signature(expected: str, given: str) -> bool:
    """Constant-time; a non-ASCII signature is just a wrong one (compare_digest refuses it)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
