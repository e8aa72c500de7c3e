"""Signed visualization links: valid until they expire, for their detect only, never a crash."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from services.intake.api.links import Links

LINKS = Links("http://v.test", b"k" * 32, ttl_seconds=60)


def parts(url: str) -> tuple[int, str]:
    query = parse_qs(urlparse(url).query)
    return int(query["expires"][0]), query["signature"][0]


def test_a_link_works_for_its_detect_until_it_expires() -> None:
    expires, signature = parts(LINKS.visualization("d1", now=1000.0))
    assert expires == 1060
    assert LINKS.valid("d1", expires, signature, now=1059.0)
    assert not LINKS.valid("d1", expires, signature, now=1061.0)  # expired
    assert not LINKS.valid("d2", expires, signature, now=1000.0)  # another detect
    assert not LINKS.valid("d1", expires + 1, signature, now=1000.0)  # a stretched expiry
    other_key = Links("http://v.test", b"x" * 32, 60)
    assert not other_key.valid("d1", expires, signature, now=1000.0)


def test_garbage_signatures_are_refused_not_raised() -> None:
    for signature in ("", "é" * 64, "\x00", "0" * 64):
        assert not LINKS.valid("d1", 2000, signature, now=1000.0)
