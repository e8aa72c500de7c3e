"""One signed callback attempt: SSRF check, Standard Webhooks signature, bounded POST."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook

from services.common import urlguard
from services.notifier.domain import Delivery, Outcome

USER_AGENT = "Verity-Webhooks/1"


def signature_headers(
    webhook_id: str, body: str, secrets: Sequence[str], at: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,` signature per live secret (rotation overlap)."""
    signatures = " ".join(
        Webhook(s).sign(msg_id=webhook_id, timestamp=at, data=body) for s in secrets
    )
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


@dataclass
class Sender:
    allowlist: Sequence[urlguard.Network] = ()
    timeout_seconds: float = 10.0
    max_response_bytes: int = 4096
    resolve: urlguard.Resolver = urlguard.system_resolver
    _client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,  # a redirect could point anywhere: it counts as a failure
            timeout=httpx.Timeout(self.timeout_seconds),
            trust_env=False,  # no proxy from the environment may route around the guard
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, delivery: Delivery, secrets: Sequence[str], at: datetime) -> Outcome:
        try:
            target = await urlguard.check(delivery.url, self.allowlist, self.resolve)
        except urlguard.RefusedUrlError as exc:
            return Outcome(refused=True, error=str(exc))
        # connect to the address the guard approved; Host and TLS SNI keep the real name
        url, host = urlguard.pinned(target)
        headers = {
            **signature_headers(delivery.webhook_id, delivery.payload, secrets, at),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": host,
        }
        try:
            async with self._client.stream(
                "POST",
                url,
                content=delivery.payload.encode(),
                headers=headers,
                extensions={"sni_hostname": target.host},
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():  # never read more than a small cap
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break
                return Outcome(status_code=response.status_code)
        except httpx.TimeoutException:
            return Outcome(error=f"timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])
