"""Real media through the whole system: intake, wallet and the real detector with its models.

Real Kafka and PostgreSQL (started by the project's scripts); intake and the detector run as
real processes. The batch holds a real recording (an Asterisk prompt), synthetic speech made
here by espeak-ng, a real photograph with a face, and a short video of that photograph with the
recording under it. The results come from the models (the audio head, the CLIP probe), so the
assertions are about shape, consistency and the two audio verdicts the audio model card
measures (espeak-ng: 2.4 % EER), not about invented numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from contracts import events as ev
from contracts import public
from contracts.ids import new_id
from services.common.blobstore import FilesystemBlobStore
from services.common.db import create_pool
from services.common.projections import rebuild
from services.common.runtime import Runtime
from services.intake.api.links import Links
from services.intake.api.views import callback_renderer
from services.intake.saga import consumers
from services.intake.saga.commands import Batches
from services.intake.store import tokens
from services.intake.store.batches import ALL_PROJECTIONS, LOG
from services.wallet.commands import execute
from services.wallet.domain import Credit
from tests.support import media
from tests.support.chat_server import chat_server
from tests.support.infra import Infra
from tests.support.kafka import collect, wait_until
from tests.support.resemble_spec import checked
from tests.support.services import service_process

pytestmark = pytest.mark.infra
OTHER_TEAM: dict[str, str] = {}  # a second team's credentials, set by the `system` fixture
TEAM: list[str] = []  # the module's team id, set by the `system` fixture
BLOB_ROOT: list[Path] = []  # the blob store's directory, set by the `system` fixture
LLM_REQUESTS: list[list[dict[str, Any]]] = []  # what the stand-in LLM was sent
LLM_REPLY = "The audio score is far above the threshold; check the caller's number."
SENTENCE = "Please hold while I transfer your call to the next available agent."


def espeak(path: Path) -> bytes:
    """Synthetic speech: espeak-ng (formant synthesis), installed from Debian by .ci/run."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `apt-get install espeak-ng` (.ci/run installs it)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), SENTENCE], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
async def system(
    infra: Infra, wallet: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """Intake and the detector as processes sharing a blob store; a team with $10."""
    blob_root = tmp_path_factory.mktemp("blobs")
    logs = tmp_path_factory.mktemp("logs")
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(blob_root),
        "VERITY_PUBLIC_URL": "http://verity.test",
    }
    with chat_server(LLM_REPLY) as (llm_url, asked):
        detector_env = {**env, "VERITY_LLM_URL": llm_url, "VERITY_LLM_MODEL": "stand-in"}
        async with (
            service_process("detector", detector_env, logs / "detector.log"),
            service_process("intake", env, logs / "intake.log") as intake,
            httpx.AsyncClient(base_url=intake.url, timeout=120) as client,
        ):
            # after intake started: its migrations made the tables (this file may run alone)
            pool = await create_pool(infra.database_url, "intake", max_size=1)
            async with pool.acquire() as conn:
                team_id = await tokens.create_team(conn, "detection-test")
                issued = await tokens.issue_token(conn, team_id)
                stranger = await tokens.create_team(conn, "another-team")
                other = await tokens.issue_token(conn, stranger)
            await pool.close()
            pool = await create_pool(infra.database_url, "wallet", max_size=1)
            async with pool.acquire() as conn, conn.transaction():
                await execute(conn, team_id, Credit(amount_micros=10_000_000, reason="test"))
            await pool.close()
            OTHER_TEAM.update({"Authorization": f"Bearer {other.token}"})
            TEAM.append(team_id)
            BLOB_ROOT.append(blob_root)
            LLM_REQUESTS.append(asked)
            yield checked(client), {"Authorization": f"Bearer {issued.token}"}


async def finished(client: httpx.AsyncClient, auth: dict[str, str], path: str) -> Any:
    async with asyncio.timeout(240):  # the detector may first answer older tests' requests
        while True:
            response = await client.get(path, headers=auth)
            assert response.status_code == 200, response.text
            item = response.json()["item"]
            if item["status"] != "processing":
                return item
            await asyncio.sleep(0.25)


async def detect_now(
    client: httpx.AsyncClient, auth: dict[str, str], name: str, data: bytes,
    **fields: str,
) -> Any:  # fmt: skip
    """POST /detect with `Prefer: wait`: the completed detect item."""
    response = await client.post(
        "/api/v2/detect", headers={**auth, "Prefer": "wait"}, data=fields,
        files={"file": (name, data)},
    )  # fmt: skip
    detect = response.json()["item"]
    assert detect["status"] == "completed", detect
    return detect


async def test_a_mixed_batch_gets_model_results(
    system: tuple[httpx.AsyncClient, dict[str, str]], tmp_path: Path
) -> None:
    client, auth = system
    files = [
        ("files[]", ("recording.wav", media.SPEECH.read_bytes(), "audio/wav")),
        ("files[]", ("espeak.wav", espeak(tmp_path / "espeak.wav"), "audio/wav")),
        ("files[]", ("astronaut.jpg", media.PHOTO.read_bytes(), "image/jpeg")),
        ("files[]", ("talk.mp4", media.photo_video(4.0), "video/mp4")),
    ]
    response = await client.post(
        "/api/v2/detect/batch", headers=auth, files=files,
        data={"audio_source_tracing_enabled": "true", "frame_length": "2", "intelligence": "true"},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    batch = await finished(client, auth, response.headers["location"])
    assert (batch["status"], batch["completed_count"]) == ("completed", 4), batch
    items = {}
    for uuid in batch["detect_uuids"]:
        got = await client.get(f"/api/v2/detect/{uuid}", headers=auth)
        items[got.json()["item"]["filename"]] = got.json()["item"]

    real, fake = items["recording.wav"], items["espeak.wav"]
    assert real["metrics"]["label"] == "real"
    assert fake["metrics"]["label"] == "fake"
    assert float(fake["metrics"]["aggregated_score"]) > float(real["metrics"]["aggregated_score"])
    assert len(fake["metrics"]["score"]) == len(fake["segments"])
    assert (
        fake["audio_source_tracing"]["label"] in fake["audio_source_tracing"]["model"]["families"]
    )
    assert real["audio_source_tracing"] is None  # traced only when judged fake
    assert real["model"]["name"] == "verity-audio-lr"
    # Resemble's GET /audio_source_tracings: one report per traced audio, named by its detect
    reports = (await client.get("/api/v2/audio_source_tracings?page=1", headers=auth)).json()
    by_detect = {r["detect_uuid"]: r["results"] for r in reports["items"]}
    assert by_detect[fake["uuid"]]["label"] == fake["audio_source_tracing"]["label"]
    assert by_detect[real["uuid"]] == {"label": "real", "error_message": None}
    assert items["astronaut.jpg"]["uuid"] not in by_detect  # no audio, nothing to trace
    one = await client.get(f"/api/v2/audio_source_tracings/{fake['uuid']}", headers=auth)
    assert one.json()["item"]["results"]["label"] == fake["audio_source_tracing"]["label"]
    hidden = await client.get(f"/api/v2/audio_source_tracings/{fake['uuid']}", headers=OTHER_TEAM)
    assert hidden.status_code == 404

    photo = items["astronaut.jpg"]["image_metrics"]
    assert photo["type"] == "ImageAnalysis"
    assert 0.0 <= photo["score"] <= 1.0
    assert photo["label"] in ("Real", "Fake", "Inconclusive")
    assert len(photo["children"]) == 1  # her face
    assert items["astronaut.jpg"]["model"]["name"] == "verity-image-lr"

    video = items["talk.mp4"]
    assert video["video_metrics"]["frames_analysed"] == 4
    frames = video["video_metrics"]["children"][0]["children"]
    assert [f["timestamp"] for f in frames] == [0.0, 1.0, 2.0, 3.0]
    assert video["metrics"]["label"] == "real"  # the same real recording under the pictures
    assert {s["track"] for s in video["segments"]} == {"audio", "video"}

    # intelligence: measured from the signal, with what cannot be told said so
    report = real["intelligence"]
    assert 0.3 < report["speech_ratio"] <= 1.0
    assert report["speakers"]["estimated_count"] in (1, None)
    assert "conference pin" in report["transcript"]["text"].lower()  # "...the conference PIN..."
    assert "language" in report["unavailable"]
    assert items["astronaut.jpg"]["intelligence"]["faces"] == 1

    # one PNG per file, behind a signed link that needs no token
    links = [real["metrics"]["image"], photo["image"], video["video_metrics"]["image"]]
    for link in links:
        assert link.startswith("http://verity.test/api/v2/visualizations/")
        response = await client.get(link.removeprefix("http://verity.test"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")
    tampered = links[0].removeprefix("http://verity.test")[:-4] + "0000"
    assert (await client.get(tampered)).status_code == 403


async def test_detect_watermark_reads_perth_and_fails_only_its_child_on_an_image(
    system: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """Resemble's `detect_watermark`: Perth's audio watermark through the real detector."""
    client, auth = system
    marked = (media.DETECTOR_DATA / "speech_perth_16k.wav").read_bytes()
    found: dict[str, Any] = {}
    for name, data in (("marked.wav", marked), ("astronaut.jpg", media.PHOTO.read_bytes())):
        found[name] = await detect_now(client, auth, name, data, detect_watermark="true")
    audio = found["marked.wav"]["watermark"]
    assert (audio["status"], audio["metrics"]["overall_status"]) == ("completed", "present")
    assert audio["metrics"]["detected_model_versions"] == ["perth_v1"]
    image = found["astronaut.jpg"]["watermark"]
    assert image["status"] == "failed"
    assert "no image watermark detector" in image["error_message"]
    assert found["astronaut.jpg"]["image_metrics"]["label"]  # the detect itself is whole


async def test_a_question_about_a_detect_is_answered_from_its_result(
    system: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """Resemble's /detects/{uuid}/intelligence, answered by the operator's LLM (a stand-in)."""
    client, auth = system
    detect = await detect_now(client, auth, "take.wav", media.SPEECH.read_bytes())
    path = f"/api/v2/detects/{detect['uuid']}/intelligence"
    asked = await client.post(path, json={"query": "Is this voice cloned?"}, headers=auth)
    assert asked.status_code == 202, asked.text
    question = asked.json()["item"]
    assert (question["status"], question["answer"]) == ("processing", None)
    answered = await finished(client, auth, f"{path}/{question['uuid']}")
    assert (answered["status"], answered["answer"]) == ("completed", LLM_REPLY)
    sent = json.loads(LLM_REQUESTS[0][-1]["messages"][1]["content"])
    assert sent["question"] == "Is this voice cloned?"
    assert sent["result"]["metrics"]["label"] == detect["metrics"]["label"]  # the numbers only
    assert "voiceprint" not in sent["result"]

    assert "query" in (await client.post(path, json={"query": " "}, headers=auth)).json()["errors"]
    unknown = f"/api/v2/detects/{'0' * 32}/intelligence"
    assert (await client.post(unknown, json={"query": "?"}, headers=auth)).status_code == 404
    hidden = await client.get(f"{path}/{question['uuid']}", headers=OTHER_TEAM)
    assert hidden.status_code == 404


async def test_feedback_is_given_revised_listed_exported_and_retracted(
    infra: Infra, system: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    """Resemble's /detect/{uuid}/feedback: per token, with a snapshot of the verdict."""
    client, auth = system
    detect = await detect_now(client, auth, "take.wav", media.SPEECH.read_bytes())
    path = f"/api/v2/detect/{detect['uuid']}/feedback"
    assert (await client.get(path, headers=auth)).status_code == 404  # none given yet
    given = await client.post(path, headers=auth, json={
        "type": "should_be_ai_generated", "comment": "  a cloned voice  ", "source": "q" * 80,
    })  # fmt: skip
    assert given.status_code == 200, given.text
    answer = given.json()["item"]
    assert (answer["type"], answer["vote"], answer["comment"]) == (
        "should_be_ai_generated", "down", "a cloned voice"
    )  # fmt: skip
    assert answer["verdict"] == "authentic"  # what the model said: real
    assert answer["score"] == float(detect["metrics"]["aggregated_score"])
    assert (answer["media_type"], answer["credit"], len(answer["source"])) == ("audio", 0, 64)
    revised = (await client.post(path, headers=auth, json={"type": "correct"})).json()["item"]
    assert (revised["vote"], revised["created_at"]) == ("up", answer["created_at"])
    assert (await client.get(path, headers=auth)).json()["item"]["type"] == "correct"

    # a teammate's token answers for itself; the team's list shows both
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    async with pool.acquire() as conn:
        team_id = await conn.fetchval("SELECT team_id FROM detects WHERE detect_id = $1",
                                      detect["uuid"])  # fmt: skip
        mate = {"Authorization": f"Bearer {(await tokens.issue_token(conn, team_id)).token}"}
    await pool.close()
    assert (await client.get(path, headers=mate)).status_code == 404
    await client.post(path, headers=mate, json={"type": "skipped"})
    listed = (await client.get("/api/v2/detect/feedback", headers=auth)).json()
    assert sorted(i["type"] for i in listed["items"]) == ["correct", "skipped"]
    exporting = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.intake.admin", "feedback", "export", "--team", team_id,
        env={**os.environ, "VERITY_DATABASE_URL": infra.database_url},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    exported, _ = await exporting.communicate()
    assert exporting.returncode == 0
    rows = [json.loads(line) for line in exported.decode().splitlines()]
    assert {r["type"] for r in rows} == {"correct", "skipped"}
    assert all(r["metrics"]["metrics"]["label"] == "real" for r in rows)  # the snapshot
    assert rows[0]["model"]["name"] == "verity-audio-lr"

    bad = await client.post(path, headers=auth, json={"type": "maybe", "comment": "x" * 1001})
    assert "type" in bad.json()["errors"]
    assert (await client.delete(path, headers=auth)).json() == {"success": True}
    assert (await client.get(path, headers=auth)).status_code == 404
    assert (await client.delete(path, headers=auth)).status_code == 200  # idempotent
    assert (
        await client.post(path, headers=OTHER_TEAM, json={"type": "correct"})
    ).status_code == 404


async def test_a_corrupt_file_is_refused_by_name(
    system: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = system
    broken = media.PHOTO.read_bytes()[:2000]
    response = await client.post(
        "/api/v2/detect/batch", headers=auth,
        files=[("files[]", ("broken.jpg", broken, "image/jpeg")),
               ("files[]", ("ok.wav", media.SPEECH.read_bytes(), "audio/wav"))],
    )  # fmt: skip
    assert response.status_code == 400, response.text
    assert "broken.jpg" in response.json()["errors"]


async def test_visualizations_follow_the_media(
    system: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """No picture is kept of zero-retention media; deleting a detect takes its picture along."""
    client, auth = system
    take = media.SPEECH.read_bytes()
    private = await detect_now(client, auth, "take.wav", take, zero_retention_mode="true")
    assert "image" not in private["metrics"]  # zero retention: no picture
    kept = await detect_now(client, auth, "take.wav", take)
    link = kept["metrics"]["image"].removeprefix("http://verity.test")
    assert (await client.get(link)).status_code == 200
    (picture,) = BLOB_ROOT[0].glob(f"visualizations/*/{kept['uuid']}.png")
    deleted = await client.delete(f"/api/v2/detect/{kept['uuid']}", headers=auth)
    assert deleted.status_code == 200, deleted.text
    assert (await client.get(link)).status_code == 404
    assert not picture.exists()
    assert not list(BLOB_ROOT[0].glob(f"visualizations/*/{private['uuid']}.png"))


# --- identities: saved voices, search, and identity_matches on detects -----------------------


async def save(client: httpx.AsyncClient, auth: dict[str, str], name: str, wav: bytes) -> Any:
    response = await client.post(
        "/api/v2/identity", headers=auth, data={"name": name},
        files={"file": (f"{name}.wav", wav, "audio/wav")},
    )  # fmt: skip
    assert response.status_code == 200, response.text  # Resemble answers 200, not 201
    return response.json()["item"]


async def test_identities_are_saved_searched_matched_and_deleted(
    system: tuple[httpx.AsyncClient, dict[str, str]], tmp_path: Path
) -> None:
    client, auth = system
    allison = await save(client, auth, "Allison", media.looped_speech(8.0))
    robot = await save(client, auth, "espeak voice", espeak(tmp_path / "enrol.wav"))
    assert allison["status"] == "ready"
    assert allison["speech_seconds"] > 1.0

    # a sample without speech saves nothing and says why; an image is not a voice sample
    tone = await client.post(
        "/api/v2/identity", headers=auth, data={"name": "tone"},
        files={"file": ("tone.wav", media.wav_bytes(3.0), "audio/wav")},
    )  # fmt: skip
    assert tone.status_code == 422, tone.text
    assert "speech" in tone.json()["detail"]
    nul = await client.post(
        "/api/v2/identity", headers=auth, data={"name": "a\x00b"},
        files={"file": ("a.wav", media.SPEECH.read_bytes(), "audio/wav")},
    )  # fmt: skip
    assert nul.status_code == 400, nul.text
    photo = await client.post(
        "/api/v2/identity", headers=auth, data={"name": "photo"},
        files={"file": ("a.jpg", media.PHOTO.read_bytes(), "image/jpeg")},
    )  # fmt: skip
    assert photo.status_code == 400, photo.text
    listed = (await client.get("/api/v2/identity", headers=auth)).json()
    assert [i["name"] for i in listed["items"]] == ["espeak voice", "Allison"]
    found = (await client.get("/api/v2/identity?search=alli", headers=auth)).json()
    assert [i["uuid"] for i in found["items"]] == [allison["uuid"]]

    # another recording of the same speaker: she is the nearest voice
    other_take = media.SPEECH2.read_bytes()
    search = await client.post(
        "/api/v2/identity/search", headers=auth, data={"top_k": "5"},
        files={"file": ("take2.wav", other_take, "audio/wav")},
    )  # fmt: skip
    assert search.status_code == 200, search.text
    body = search.json()
    ranked = body["matches"]
    assert [m["name"] for m in ranked] == ["Allison", "espeak voice"]
    assert list(body["item"]) == [m["uuid"] for m in ranked]  # Resemble's: keyed by uuid
    assert body["item"][allison["uuid"]]["name"] == "Allison"
    assert ranked[0]["distance"] > ranked[1]["distance"]  # a 0-100 score, higher is closer
    assert ranked[0]["cosine_distance"] < ranked[1]["cosine_distance"]
    assert ranked[0]["confidence"] > ranked[1]["confidence"]
    assert [m["match"] for m in ranked] == [True, False]  # at the model's threshold
    bad_k = await client.post(
        "/api/v2/identity/search", headers=auth, data={"top_k": "21"},
        files={"file": ("take2.wav", other_take, "audio/wav")},
    )  # fmt: skip
    assert bad_k.status_code == 400
    assert "top_k" in bad_k.json()["errors"]

    # a detect with search_identity carries the same ranking
    detect = await detect_now(client, auth, "take2.wav", other_take, search_identity="true")
    assert [m["name"] for m in detect["identity_matches"]] == ["Allison", "espeak voice"]
    assert "voiceprint" not in detect

    # another team sees none of it; deleting removes the identity from searches
    assert (
        await client.delete(f"/api/v2/identity/{robot['uuid']}", headers=OTHER_TEAM)
    ).status_code == 404
    assert (await client.get("/api/v2/identity", headers=OTHER_TEAM)).json()["items"] == []
    deleted = await client.delete(f"/api/v2/identity/{robot['uuid']}", headers=auth)
    assert deleted.status_code == 200, deleted.text
    assert (await client.get(f"/api/v2/identity/{robot['uuid']}", headers=auth)).status_code == 404
    again = await client.post(
        "/api/v2/identity/search", headers=auth,
        files={"file": ("take2.wav", other_take, "audio/wav")},
    )  # fmt: skip
    assert [m["name"] for m in again.json()["matches"]] == ["Allison"]


async def test_rebuilt_read_models_equal_the_live_ones(
    infra: Infra, system: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    """Runs last: identities and detects (with their identity_matches) come back from the log."""
    query = {
        "identities": "SELECT * FROM identities ORDER BY identity_id",
        "detect_questions": "SELECT * FROM detect_questions ORDER BY question_id",
        "detect_feedback": "SELECT * FROM detect_feedback ORDER BY detect_id, token_id",
        "detects": "SELECT * FROM detects ORDER BY detect_id",
    }
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    try:
        async with pool.acquire() as conn:
            live = {t: [dict(r) for r in await conn.fetch(q)] for t, q in query.items()}
        await rebuild(pool, LOG, ALL_PROJECTIONS)
        async with pool.acquire() as conn:
            rebuilt = {t: [dict(r) for r in await conn.fetch(q)] for t, q in query.items()}
    finally:
        await pool.close()
    assert live["identities"]
    assert live["detect_questions"]
    assert live["detect_feedback"]
    assert rebuilt == live


async def test_a_result_too_late_to_count_leaves_no_picture(
    infra: Infra, system: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    """A result for a detect that no longer takes one (its batch was cancelled or is unknown):
    intake records nothing and deletes the PNG the detector wrote for it."""
    batch_id, detect_id = new_id(), new_id()
    key = f"visualizations/{batch_id}/{detect_id}.png"
    (BLOB_ROOT[0] / key).parent.mkdir(parents=True)
    (BLOB_ROOT[0] / key).write_bytes(b"\x89PNG late")
    late = ev.DetectCompleted(
        team_id=new_id(), correlation_id=batch_id, batch_id=batch_id, detect_id=detect_id,
        media_type="audio", result={"metrics": None, "visualization": {"blob_key": key}},
    )  # fmt: skip
    blobs = FilesystemBlobStore(BLOB_ROOT[0])
    effect = consumers.on_result(Batches(blobs, callback_renderer(Links("http://x", b"k", 60))))
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await effect(conn, late)
    finally:
        await pool.close()
    assert not (BLOB_ROOT[0] / key).exists()


# --- public events (contracts/public.py, docs/events.md) -----------------------------------


async def _all_items(client: httpx.AsyncClient, auth: dict[str, str], path: str) -> list[Any]:
    items: list[Any] = []
    page, pages = 1, 1
    while page <= pages:
        response = await client.get(path, headers=auth, params={"page": page, "page_size": 1000})
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        pages, page = response.json()["num_pages"], page + 1
    return items


def _without_links(item: dict[str, Any]) -> dict[str, Any]:
    """A visualization link is signed afresh (with a new expiry) on every rendering."""
    unlinked = dict(item)
    for key in ("metrics", "image_metrics", "video_metrics"):
        if isinstance(unlinked.get(key), dict):
            unlinked[key] = {k: v for k, v in unlinked[key].items() if k != "image"}
    return unlinked


def _schema_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


async def test_every_terminal_detect_and_batch_is_a_public_cloudevent(
    infra: Infra, system: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    """What another team's consumer sees: each of this module's terminal detects once on the
    public topic, as a CloudEvent the `cloudevents` SDK decodes, whose data is the item GET
    shows, valid under the schema its ce_dataschema names (served by intake); the batches
    likewise; and the example consumer in examples/ prints them all."""
    client, auth = system
    own = await detect_now(client, auth, "public.wav", media.SPEECH.read_bytes())
    detects = {d["uuid"]: d for d in await _all_items(client, auth, "/api/v2/detect")}
    batches = {b["uuid"]: b for b in await _all_items(client, auth, "/api/v2/detect/batch")}
    assert own["uuid"] in detects  # and the module's other tests made more, and batches
    assert all(d["status"] != "processing" for d in detects.values())
    mine: dict[str, list[Any]] = {}  # subject -> its CloudEvents

    def collected() -> bool:
        mine.clear()
        for record in seen.records:
            event = from_binary_event(KafkaMessage(dict(record.headers), record.key, record.value))
            if event.get_extension(public.TEAM_EXTENSION) == TEAM[0]:
                mine.setdefault(str(event.get_subject()), []).append((record, event))
        return set(detects) | set(batches) <= set(mine)

    async with collect(infra.kafka_bootstrap, public.DETECTIONS, public.BATCHES) as seen:
        await wait_until(collected, timeout=60, what="every terminal detect and batch published")

    schemas: dict[str, Any] = {}
    for subject, events in mine.items():
        assert len({e.get_id() for _, e in events}) == 1, f"{subject} was published once"
        record, event = events[0]
        data = event.get_data()
        assert isinstance(data, dict)
        assert data["uuid"] == subject == record.key.decode()
        assert event.get_specversion() == "1.0"
        assert event.get_datacontenttype() == public.JSON
        schema_url = event.get_dataschema()
        assert schema_url is not None
        assert schema_url.startswith("http://verity.test/events/")
        if schema_url not in schemas:
            response = await client.get(schema_url.removeprefix("http://verity.test"))
            assert response.status_code == 200, response.text
            schemas[schema_url] = response.json()
        errors = [e.message for e in _schema_validator(schemas[schema_url]).iter_errors(data)]
        assert errors == [], (subject, errors)
        if subject in batches:
            assert record.topic == public.BATCHES
            assert event.get_type() == public.BATCH_FINISHED.type
            assert event.get_source() == "http://verity.test/api/v2/detect/batch"
            public.Batch.checked(data)
            assert data["detect_uuids"] == batches[subject]["detect_uuids"]
            assert data["status"] == batches[subject]["status"]
            continue
        assert record.topic == public.DETECTIONS
        assert event.get_source() == "http://verity.test/api/v2/detect"
        assert event.get_type() == f"dev.verity.detect.{data['status']}"
        public.Detection.checked(data)  # strictly: every key of the item is in the contract
        assert event.get_time() is not None
        assert event.get_time() >= datetime.fromisoformat(data["created_at"])
        shown = detects.get(subject)
        if shown is not None and shown["updated_at"] == data["updated_at"]:
            assert _without_links(data) == _without_links(shown)  # the item GET shows

    metrics_page = (await client.get("/metrics")).text
    assert 'verity_public_events_total{conforms="true"' in metrics_page
    assert 'conforms="false"' not in metrics_page, "an item broke its public model"

    example = Path(__file__).parents[2] / "examples" / "public_consumer.py"
    wanted = [s for s, events in mine.items() if events[0][0].topic == public.DETECTIONS]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(example), "--bootstrap", infra.kafka_bootstrap,
        "--group", f"example-{new_id()[:8]}", "--team", TEAM[0], "--limit", str(len(wanted)),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert sorted(line["detect"] for line in lines) == sorted(wanted)
    by_detect = {line["detect"]: line for line in lines}
    assert by_detect[own["uuid"]]["label"] == own["metrics"]["label"]
    assert by_detect[own["uuid"]]["filename"] == "public.wav"
