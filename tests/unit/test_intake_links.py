"""Signed links and media tokens: valid until they expire, for their detect or team only."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

import pytest

from services.intake.api.links import Links
from services.intake.api.media_tokens import MediaTokens

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


def test_a_media_token_is_for_its_team_until_it_expires() -> None:
    tokens = MediaTokens(b"k" * 32, ttl_seconds=60)
    upload = "0" * 31 + "1"
    token, expires = tokens.issue("team-a", upload, now=1000.0)
    assert expires == 1060
    assert tokens.verify("team-a", token, now=1059.0) == upload
    refusals: dict[str, Callable[[], str]] = {
        "has expired": (lambda: tokens.verify("team-a", token, now=1061.0)),
        "not valid for this team": (lambda: tokens.verify("team-b", token, now=1000.0)),
        "or was altered": (lambda: MediaTokens(b"x" * 32, 60).verify("team-a", token, 1000.0)),
        "altered": (lambda: tokens.verify("team-a", token.replace(".1060.", ".9999."), 1000.0)),
    }
    for message, attempt in refusals.items():
        with pytest.raises(ValueError, match=message):
            attempt()
    for garbage in ("", "abc", f"{upload}.x.y", f"{upload}.1060.", "a.b.c"):
        with pytest.raises(ValueError, match="is not a media token"):
            tokens.verify("team-a", garbage, now=1000.0)
    with pytest.raises(ValueError, match="not valid"):  # a non-ASCII signature: refused, no crash
        tokens.verify("team-a", f"{upload}.1060.é", now=1000.0)
