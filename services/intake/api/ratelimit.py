"""Per-token request rate limit (API.md: 40 requests/second by default, then 429).

A token bucket per API token, in this process's memory: `rate` tokens per second refill a
bucket of `burst`. With several intake replicas behind a balancer each enforces its own
bucket, so a client spread evenly gets up to replicas x rate (docs/api.md says so).

Every answer is an Allowance, which the response carries as the IETF RateLimit fields
(draft-ietf-httpapi-ratelimit-headers-10): `RateLimit-Policy: "per-token";q=<burst>;w=<s>`
and `RateLimit: "per-token";r=<requests left>;t=<s until the bucket is full>`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


POLICY = "per-token"


@dataclass(frozen=True)
class Allowance:
    """One request's answer from its bucket."""

    wait: float  # 0: go ahead; else the seconds until one request would be let through
    remaining: int  # whole requests the bucket holds after this one
    reset: int  # seconds until the bucket is full again

    def header(self) -> str:
        return f'"{POLICY}";r={self.remaining};t={self.reset}'


@dataclass
class RateLimiter:
    rate: float = 40.0
    burst: float = 40.0
    clock: Callable[[], float] = time.monotonic
    max_buckets: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def acquire(self, key: str) -> Allowance:
        """Take one request from `key`'s bucket, or say how long until one could be taken."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        wait = 0.0
        if bucket.tokens >= 1:
            bucket.tokens -= 1
        else:
            wait = (1 - bucket.tokens) / self.rate
        reset = math.ceil((self.burst - bucket.tokens) / self.rate)
        return Allowance(wait, math.floor(bucket.tokens), reset)

    def policy_header(self) -> str:
        return (
            f'"{POLICY}";q={math.floor(self.burst)};w={max(1, math.ceil(self.burst / self.rate))}'
        )

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nobody's allowance."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
