"""Resemble's official SDKs against the real services: every Detect call they offer.

PyPI `resemble` (pinned in pyproject.toml, called in this process) and npm `@resemble/node`
(pinned in tests/sdk/node/, run by node through tests/sdk/node/calls.mjs) talk to intake running
as a real process, with nothing but their base URL changed. The wallet runs in this process and
the test analyzer (tests/support/analyzer.py) plays the detector. Both SDKs make the same calls:
secure upload; detect by URL; detect with `Prefer: wait` with every optional field they send;
detect of a local file (secure upload, then `media_token`); the same with `Prefer: wait`; the
polling helper by URL and by file; get; and get with a wrong key. Checked: what each call
returned, that each detect analysed the bytes that were uploaded or served and ran with the
options the SDK sent, and every HTTP response the SDK got against Resemble's published schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests  # the Python SDK's HTTP client
from resemble import Resemble  # type: ignore[import-untyped]

from contracts import events as ev
from contracts.ids import normalize_id
from services.common.runtime import Runtime
from tests.e2e.conftest import TeamFactory, intake_client
from tests.support import analyzer, media
from tests.support.infra import REPO, Infra
from tests.support.media_server import media_server
from tests.support.resemble_spec import operation_for, violations
from tests.support.services import free_port

pytestmark = pytest.mark.infra

NODE_PACKAGE = REPO / "tests" / "sdk" / "node"
POLL_WAIT = 0.2  # seconds between the polling helpers' GETs (the SDKs' default is 3)
POLL_RETRIES = 50
# every optional field of the SDKs' detect calls, with the types they send
OPTIONS: dict[str, Any] = {
    "visualize": True,
    "frame_length": 3,
    "start_region": 0,
    "end_region": 1,
    "pipeline": "general->facial",
    "max_video_fps": 2,
    "max_video_secs": 30,
    "model_types": "talking_head",
    "intelligence": True,
    "audio_source_tracing": True,
    "use_ood_detector": True,
    "zero_retention_mode": False,
}
SYNC_URL_OPTIONS = {**OPTIONS, "zero_retention_mode": True}
CALLS = (
    "secure_upload",
    "detect_url",
    "detect_url_sync_all_options",
    "detect_file",
    "detect_file_sync",
    "detect_and_get_url",
    "detect_and_get_file",
    "get",
    "get_bad_key",
)


@pytest.fixture(scope="module")
async def client(
    infra: Infra,
    blob_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    wallet: Runtime,
    fake_detector: analyzer.TestAnalyzer,
) -> AsyncIterator[httpx.AsyncClient]:
    """Intake as a real process; its public URL is where it runs, so media links work."""
    port = free_port()
    env = {
        "VERITY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "VERITY_CALLBACK_ALLOWLIST": "127.0.0.0/8",  # the media server is on loopback
    }
    logs = tmp_path_factory.mktemp("logs")
    async with intake_client(infra, blob_root, logs, env, port=port, timeout=60) as c:
        yield c


@dataclass(frozen=True)
class Scenario:
    """What one SDK is given: its key, a local file to upload, a URL to media."""

    base: str  # the SDK's base URL, as Resemble's docs spell theirs: ".../api/"
    token: str
    upload: Path
    media_url: str
    media: bytes

    @property
    def upload_bytes(self) -> bytes:
        return self.upload.read_bytes()


@dataclass(frozen=True)
class Exchange:
    """One HTTP request an SDK made and the response it got."""

    method: str
    path: str
    status: int
    authorization: str | None
    prefer: str | None
    content_type: str | None
    body: Any


@contextlib.asynccontextmanager
async def scenario(
    sdk: str, client: httpx.AsyncClient, new_team: TeamFactory, tmp_path: Path, tone: float
) -> AsyncIterator[Scenario]:
    """A fresh credited team, a file to upload and media served by URL (different tones, so
    the detects cannot be mistaken for each other)."""
    _, auth = await new_team()
    upload = tmp_path / f"{sdk}_upload.wav"
    upload.write_bytes(media.wav_bytes(1.0, freq=tone))
    served = media.wav_bytes(1.0, freq=tone * 1.5)
    path = f"/media/{sdk}_url.wav"
    async with media_server(path, served) as root:
        yield Scenario(
            base=str(client.base_url).rstrip("/") + "/api/",
            token=auth["Authorization"].removeprefix("Bearer "),
            upload=upload,
            media_url=root + path,
            media=served,
        )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- the two SDKs ----------------------------------------------------------------------------


def python_calls(s: Scenario) -> dict[str, Any]:
    """Every Detect call of the Python SDK, as a user's program makes them (sync, blocking)."""
    Resemble.api_key(s.token)
    Resemble.base_url(s.base)
    dd = Resemble.v2.deepfake_detection
    calls: dict[str, Any] = {}
    with s.upload.open("rb") as f:
        calls["secure_upload"] = dd.secure_upload(f)
    calls["detect_url"] = dd.detect(url=s.media_url)
    calls["detect_url_sync_all_options"] = dd.detect(
        url=s.media_url, synchronous=True, **SYNC_URL_OPTIONS
    )
    with s.upload.open("rb") as f:
        calls["detect_file"] = dd.detect(file=f)
    with s.upload.open("rb") as f:
        calls["detect_file_sync"] = dd.detect(file=f, synchronous=True, **OPTIONS)
    calls["detect_and_get_url"] = dd.detect_and_get(
        url=s.media_url, retries=POLL_RETRIES, wait_time=POLL_WAIT
    )
    with s.upload.open("rb") as f:
        calls["detect_and_get_file"] = dd.detect_and_get(
            file=f, retries=POLL_RETRIES, wait_time=POLL_WAIT
        )
    uuid = (calls["detect_url"].get("item") or {}).get("uuid")
    for _ in range(POLL_RETRIES):  # get: the async URL detect, until it is done
        calls["get"] = dd.get(uuid)
        if (calls["get"].get("item") or {}).get("status") != "processing":
            break
        time.sleep(POLL_WAIT)
    Resemble.api_key(f"{s.token}-wrong")
    calls["get_bad_key"] = dd.get(uuid)
    return calls


@pytest.fixture
def python_exchanges(monkeypatch: pytest.MonkeyPatch) -> list[Exchange]:
    """Every exchange the Python SDK makes (recorded around requests' Session.send; nothing
    it sends or gets is changed), with the SDK's global settings restored afterwards."""
    recorded: list[Exchange] = []
    send: Callable[..., Any] = requests.Session.send

    def recording_send(session: Any, request: Any, **kwargs: Any) -> Any:
        response = send(session, request, **kwargs)
        recorded.append(
            Exchange(
                method=request.method,
                path=urlsplit(request.url).path,
                status=response.status_code,
                authorization=request.headers.get("Authorization"),
                prefer=request.headers.get("Prefer"),
                content_type=response.headers.get("content-type"),
                body=_json(response.text),
            )
        )
        return response

    monkeypatch.setattr(requests.Session, "send", recording_send)
    monkeypatch.setattr(Resemble, "_base_url", Resemble._base_url)
    for name in ("_headers", "_syn_server_headers", "_direct_syn_server_headers"):
        monkeypatch.setattr(Resemble, name, dict(getattr(Resemble, name)))
    return recorded


async def test_python_sdk_every_detect_call(
    client: httpx.AsyncClient,
    new_team: TeamFactory,
    fake_detector: analyzer.TestAnalyzer,
    python_exchanges: list[Exchange],
    tmp_path: Path,
) -> None:
    async with scenario("python", client, new_team, tmp_path, tone=440.0) as s:
        calls = await asyncio.to_thread(python_calls, s)
    await verify(s, calls, python_exchanges, client, fake_detector)


async def test_node_sdk_every_detect_call(
    client: httpx.AsyncClient,
    new_team: TeamFactory,
    fake_detector: analyzer.TestAnalyzer,
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    assert node, "Resemble's Node SDK needs node (Node.js 18 or newer) on PATH"
    assert (NODE_PACKAGE / "node_modules" / "@resemble" / "node").is_dir(), (
        "the Node SDK is not installed: `npm ci --prefix tests/sdk/node` (./dev test does it)"
    )
    async with scenario("node", client, new_team, tmp_path, tone=660.0) as s:
        config = {
            "base": s.base,
            "token": s.token,
            "mediaUrl": s.media_url,
            "upload": str(s.upload),
            "options": OPTIONS,
            "pollWait": POLL_WAIT,
            "pollRetries": POLL_RETRIES,
        }
        proc = await asyncio.create_subprocess_exec(
            node, str(NODE_PACKAGE / "calls.mjs"), json.dumps(config),
            cwd=tmp_path,  # the script imports the SDK from beside itself, not from here
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()
    run = json.loads(out)
    exchanges = [
        Exchange(
            method=x["method"],
            path=urlsplit(x["url"]).path,
            status=x["status"],
            authorization=x["authorization"],
            prefer=x["prefer"],
            content_type=x["content_type"],
            body=x["body"],
        )
        for x in run["exchanges"]
    ]
    await verify(s, run["calls"], exchanges, client, fake_detector)


# --- what both runs must show ----------------------------------------------------------------

URL_CALLS = ("detect_url", "detect_url_sync_all_options", "detect_and_get_url", "get")
ASYNC_CALLS = ("detect_url", "detect_file")  # answered before the analysis is done


async def requested(detector: analyzer.TestAnalyzer, uuid: str) -> ev.DetectRequested:
    """The DetectRequested the analyzer got for the detect `uuid` (it may still be on its way)."""
    async with asyncio.timeout(30):
        while True:
            for request in detector.seen:
                if request.detect_id == normalize_id(uuid):
                    return request
            await asyncio.sleep(0.05)


async def verify(
    s: Scenario,
    calls: dict[str, Any],
    exchanges: list[Exchange],
    client: httpx.AsyncClient,
    detector: analyzer.TestAnalyzer,
) -> None:
    assert set(calls) == set(CALLS), calls
    sdk_auth, bad_auth = f"Token token={s.token}", f"Token token={s.token}-wrong"

    # the wire: Resemble's paths and auth scheme, JSON bodies that Resemble's schema accepts
    routes: Counter[tuple[str, str, str | None]] = Counter()
    for x in exchanges:
        op = operation_for(x.method, x.path)
        assert x.path.startswith("/api/v2/"), x
        assert op is not None, x
        assert "json" in (x.content_type or ""), x
        assert violations(x.method, x.path, x.status, x.body) == [], x
        assert (x.authorization, x.status) in ((sdk_auth, 200), (bad_auth, 403)), x
        routes[(x.method, op.template, x.prefer)] += 1
    gets = routes.pop(("GET", "/detect/{uuid}", None), 0)
    assert gets >= 4, exchanges  # each polling helper, get, get with a wrong key
    assert routes == {
        ("POST", "/secure_uploads", None): 4,  # secure_upload and the three calls with a file
        ("POST", "/detect", None): 4,
        ("POST", "/detect", "wait"): 2,
    }, exchanges
    assert [x.authorization for x in exchanges].count(bad_auth) == 1

    # the secure upload's token is good for a detect of that file
    upload = calls["secure_upload"]
    assert upload["success"] is True, upload
    assert isinstance(upload["token"], str), upload
    assert upload["token"], upload
    redeemed = await client.post(
        "/api/v2/detect", json={"media_token": upload["token"]},
        headers={"Authorization": sdk_auth, "Prefer": "wait"},
    )  # fmt: skip
    assert redeemed.status_code == 200, redeemed.text
    items: dict[str, dict[str, Any]] = {"secure_upload": redeemed.json()["item"]}
    for name in CALLS[1:-1]:
        assert calls[name]["success"] is True, (name, calls[name])
        items[name] = calls[name]["item"]
    assert items["get"]["uuid"] == items["detect_url"]["uuid"]
    assert len({item["uuid"] for item in items.values()}) == len(items) - 1  # get: the same

    url_name = urlsplit(s.media_url).path.rsplit("/", 1)[-1]
    for name, item in items.items():
        assert item["media_type"] == "audio", (name, item)
        done = ("processing", "completed") if name in ASYNC_CALLS else ("completed",)
        assert item["status"] in done, (name, item)
        if name == "detect_url_sync_all_options":  # zero retention: the name is not kept
            assert item["filename"].startswith("redacted_"), item
        else:
            assert item["filename"] == (url_name if name in URL_CALLS else s.upload.name), item
        # what was analysed: exactly the bytes served or uploaded, with the options sent
        request = await requested(detector, item["uuid"])
        sent = s.media if name in URL_CALLS else s.upload_bytes
        assert request.file.sha256 == hashlib.sha256(sent).hexdigest(), name
        assert request.file.size_bytes == len(sent), name
        given = {
            "detect_url_sync_all_options": SYNC_URL_OPTIONS, "detect_file_sync": OPTIONS
        }.get(name, {})  # fmt: skip
        assert request.options == ev.DetectOptions.model_validate(given), name

    for name, given in (("detect_url_sync_all_options", SYNC_URL_OPTIONS),
                        ("detect_file_sync", OPTIONS)):  # fmt: skip
        item = items[name]
        echoed = {
            "visualize": item["visualize"],
            "audio_source_tracing": item["audio_source_tracing_enabled"],
            "intelligence": item["intelligence_enabled"],
            "zero_retention_mode": item["zero_retention_mode"],
            "use_ood_detector": item["use_ood_detector"],
            "pipeline": item["pipeline"],
            **item["extra_params"],
        }
        shown = ("visualize", "audio_source_tracing", "intelligence", "zero_retention_mode",
                 "use_ood_detector", "pipeline", "model_types", "max_video_fps")  # fmt: skip
        assert echoed == {key: given[key] for key in shown}, (name, item)
    assert items["detect_url_sync_all_options"]["url"] is None  # zero retention
    stored = await client.get(items["detect_file_sync"]["url"], headers={"Authorization": sdk_auth})
    assert stored.content == s.upload_bytes

    # a wrong key (403, docs/api.md): the SDK hands the error body back, `message` readable
    refused = calls["get_bad_key"]
    assert refused["success"] is False, refused
    assert "unknown or revoked" in refused["message"], refused
