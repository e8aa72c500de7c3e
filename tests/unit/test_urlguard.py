"""The SSRF guard decides on addresses only: every test uses a fake resolver and opens nothing."""

from __future__ import annotations

import pytest

from services.common.urlguard import RefusedUrlError, check, parse_allowlist

RESOLVED: dict[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34"],
    "intranet.example.com": ["10.1.2.3"],
    "sneaky.example.com": ["93.184.216.34", "192.168.1.10"],  # one bad address is enough
    "metadata.example.com": ["169.254.169.254"],
    "v6-private.example.com": ["fd00:ec2::254"],
    "v6-mapped.example.com": ["::ffff:10.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "cgnat.example.com": ["100.64.0.7"],
    "v6-public.example.com": ["2606:4700:4700::1111"],
}
lookups: list[str] = []


async def fake_resolve(host: str, port: int) -> list[str]:
    lookups.append(host)
    if host not in RESOLVED:
        raise OSError("no such host")
    return RESOLVED[host]


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/verity",
        "http://hooks.example.com:8080/x?y=1",
        "https://v6-public.example.com/",
        "https://93.184.216.34/hook",
    ],
)
async def test_public_targets_are_allowed(url: str) -> None:
    target = await check(url, resolve=fake_resolve)
    assert target.addresses


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "non-public"),
        ("http://metadata.example.com/", "non-public"),
        ("http://[fd00:ec2::254]/", "non-public"),
        ("http://v6-private.example.com/", "non-public"),
        ("http://intranet.example.com/hook", "non-public"),
        ("http://10.0.0.1/hook", "non-public"),
        ("http://172.16.5.4/hook", "non-public"),
        ("http://192.168.0.1/hook", "non-public"),
        ("http://169.254.10.10/hook", "non-public"),
        ("http://[fe80::1]/hook", "non-public"),
        ("http://127.0.0.1:8080/hook", "non-public"),
        ("http://[::1]/hook", "non-public"),
        ("http://localhost/hook", "non-public"),
        ("http://0.0.0.0/hook", "non-public"),
        ("http://sneaky.example.com/hook", "non-public"),
        ("http://v6-mapped.example.com/hook", "non-public"),
        ("http://cgnat.example.com/hook", "non-public"),
        ("http://224.0.0.1/hook", "non-public"),
        ("ftp://hooks.example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com:99999/", "invalid port"),
        ("https://nowhere.example.com/", "does not resolve"),
    ],
)
async def test_refused_targets(url: str, why: str) -> None:
    with pytest.raises(RefusedUrlError, match=why):
        await check(url, resolve=fake_resolve)


async def test_the_operator_allowlist_opens_exactly_its_networks() -> None:
    allow = parse_allowlist("127.0.0.0/8, ::1")
    assert (await check("http://127.0.0.1:9000/cb", allow, fake_resolve)).port == 9000
    assert (await check("http://localhost/cb", allow, fake_resolve)).addresses
    with pytest.raises(RefusedUrlError):
        await check("http://10.0.0.1/cb", allow, fake_resolve)


async def test_literal_addresses_need_no_lookup() -> None:
    lookups.clear()
    with pytest.raises(RefusedUrlError):
        await check("http://10.9.9.9/", resolve=fake_resolve)
    assert lookups == []
