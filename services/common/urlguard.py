"""Where may Verity send an HTTP request on a client's behalf? (SSRF protection)

A callback URL is refused unless every address its host resolves to is a public (global)
unicast address, or lies in the operator's allowlist. The check returns the addresses it
approved so the caller connects to exactly those (no second DNS lookup an attacker could
re-point between check and connect). Intake checks at request time, the notifier again
before every attempt. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = ("http", "https")


class RefusedUrlError(ValueError):
    """The URL may not be called; the message says why, for the client's 400."""


@dataclass(frozen=True)
class Target:
    url: SplitResult
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_allowlist(spec: str) -> tuple[Network, ...]:
    """`127.0.0.1/32,::1` -> networks. Empty: nothing beyond the public internet."""
    return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())


def _allowed(address: IPAddress, allowlist: Sequence[Network]) -> bool:
    if any(address in network for network in allowlist):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    # is_global excludes private, loopback, link-local (incl. 169.254.169.254 metadata),
    # shared (100.64/10), reserved, unspecified and documentation ranges
    return address.is_global and not address.is_multicast


def parse(url: str, what: str = "callback_url") -> tuple[SplitResult, str, int]:
    """Shape checks that need no network; `what` names the URL in messages."""
    if len(url) > 2048:
        raise RefusedUrlError(f"{what} is longer than 2048 characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise RefusedUrlError(f"{what} is not a valid URL") from exc
    if parts.scheme not in ALLOWED_SCHEMES:
        raise RefusedUrlError(f"{what} must be an http or https URL")
    if parts.username or parts.password:
        raise RefusedUrlError(f"{what} must not carry credentials")
    host = parts.hostname
    if not host:
        raise RefusedUrlError(f"{what} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RefusedUrlError(f"{what} has an invalid port") from exc
    return parts, host, port


async def check(
    url: str,
    allowlist: Sequence[Network] = (),
    resolve: Resolver = system_resolver,
    *,
    what: str = "callback_url",
) -> Target:
    """Approve `url` and the addresses to connect to, or raise RefusedUrlError."""
    parts, host, port = parse(url, what)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        resolved = [literal]
    else:
        try:
            resolved = [ipaddress.ip_address(a.split("%")[0]) for a in await resolve(host, port)]
        except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
            raise RefusedUrlError(f"{what} host {host!r} does not resolve") from exc
        if not resolved:
            raise RefusedUrlError(f"{what} host {host!r} does not resolve")
    refused = [a for a in resolved if not _allowed(a, allowlist)]
    if refused:
        raise RefusedUrlError(
            f"{what} host {host!r} resolves to a non-public address ({refused[0]});"
            " ask the operator to allowlist it"
        )
    return Target(parts, host, port, tuple(dict.fromkeys(resolved)))


def pinned(target: Target) -> tuple[str, str]:
    """The URL to connect to (the approved address, no second DNS lookup) and its Host header.

    Send the request with `extensions={"sni_hostname": target.host}` so TLS still checks the
    real name.
    """
    address = target.addresses[0]
    ip = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    url = target.url._replace(netloc=f"{ip}:{target.port}").geturl()
    default_port = 443 if target.url.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    return url, host
