"""Intake's OpenAPI document (services/intake/api/openapi.py), built from the app: no servers.

It must say what the handlers really accept and answer: the option fields of the two POSTs are
exactly options.py's, the error body is contracts' Problem, Resemble's endpoints carry
Resemble's operationIds, and each operation is listed once. Also the small input rules the
fuzzing found (tests/e2e/test_openapi.py): each was a 500.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from litestar import Request

from contracts import problems as p
from services.common.urlguard import RefusedUrlError, check
from services.intake.api.options import BATCH_FIELDS, SINGLE_FIELDS, parse_options
from services.intake.api.posting import prefer_wait, read_json_body
from services.intake.api.problems import PAGES, page
from services.intake.app import build_app
from services.intake.errors import ApiError
from services.intake.settings import IntakeSettings
from tests.support.resemble_spec import SPEC

METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC = {"getVisualization", "getProblemType", "getEventSchema"}


@functools.cache
def document() -> dict[str, Any]:
    schema: dict[str, Any] = build_app(IntakeSettings()).openapi_schema.to_schema()
    served: dict[str, Any] = json.loads(json.dumps(schema))  # as served: JSON types only
    return served


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def operation(operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in operations() if op["operationId"] == operation_id)


def multipart(operation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = operation(operation_id)["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]
    return found


def test_each_operation_is_listed_once_below_api_v2() -> None:
    paths = list(document()["paths"])
    assert all(path.startswith(("/api/v2/", "/problems/", "/events/")) for path in paths), paths
    assert not any(path.startswith(("/v2/", "/detect")) for path in paths)
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids)) == 30


def test_resemble_endpoints_carry_resemble_operation_ids() -> None:
    resemble = json.loads(SPEC.read_text())

    def shape(path: str) -> str:  # /detect/{uuid} and /detect/{detect_uuid} are one path
        return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))

    theirs = {
        (method, shape(path)): op["operationId"]
        for path, item in resemble["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }
    shared = {
        (method, path): op["operationId"]
        for method, path, op in operations()
        if (method, shape(path.removeprefix("/api/v2"))) in theirs
    }
    assert len(shared) == 19
    for (method, path), ours in shared.items():
        assert ours == theirs[method, shape(path.removeprefix("/api/v2"))], path
    assert operation("account_getBillingUsage")  # Resemble's name (its schemas say so)


def test_option_fields_are_exactly_what_parse_options_accepts() -> None:
    batch = multipart("deepfakeDetection_createDetectBatch")
    assert set(batch["properties"]) == {"files[]", "file", *BATCH_FIELDS}
    assert batch["additionalProperties"] is False
    assert batch["properties"]["files[]"]["items"]["format"] == "binary"
    single = multipart("deepfakeDetection_createDetection")
    assert set(single["properties"]) == {"file", *SINGLE_FIELDS}
    json_body = operation("deepfakeDetection_createDetection")["requestBody"]["content"][
        "application/json"
    ]["schema"]
    by_url, by_token = json_body["oneOf"]
    assert set(by_url["properties"]) == {"url", *SINGLE_FIELDS}
    assert set(by_token["properties"]) == {"media_token", *SINGLE_FIELDS}
    assert (by_url["required"], by_token["required"]) == (["url"], ["media_token"])


def test_option_defaults_and_ranges_are_the_contracts() -> None:
    fields = multipart("deepfakeDetection_createDetection")["properties"]
    defaults = parse_options([], SINGLE_FIELDS)
    assert fields["frame_length"] == {
        "type": "integer", "minimum": 1, "maximum": 4, "default": defaults.frame_length,
        "description": fields["frame_length"]["description"],
    }  # fmt: skip
    assert fields["visualize"]["default"] is True
    assert fields["start_region"]["minimum"] == 0
    assert fields["max_video_secs"]["exclusiveMinimum"] == 0
    assert fields["modality"]["enum"] == ["audio", "video", "all"]
    assert fields["modality"]["default"] == "all"
    assert fields["signal"] == {**fields["signal"], "type": "boolean", "default": False}


def test_the_problem_schema_is_the_contracts_problem() -> None:
    schemas = document()["components"]["schemas"]
    assert set(schemas["Problem"]["properties"]) == set(p.Problem.model_fields)
    assert set(schemas["Problem"]["required"]) == {
        name for name, f in p.Problem.model_fields.items() if f.is_required()
    }
    assert schemas["InsufficientFunds"]["properties"]["details"] == {
        "$ref": "#/components/schemas/FundsShortfall"
    }


def test_every_error_is_a_problem_with_its_headers() -> None:
    for _, path, op in operations():
        for status, response in op["responses"].items():
            assert "X-Request-Id" in response["headers"], (path, status)
            if int(status) < 400:
                continue
            (media_type,) = response["content"]
            assert media_type == p.PROBLEM_CONTENT_TYPE, (path, status)
            ref = response["content"][media_type]["schema"]["$ref"]
            assert ref.endswith("/InsufficientFunds" if status == "402" else "/Problem")
            if status in ("429", "503"):
                assert response["headers"]["Retry-After"]["required"] is True
    created = operation("deepfakeDetection_createDetectBatch")["responses"]["202"]["headers"]
    assert {"Location", "RateLimit", "RateLimit-Policy"} <= set(created)


def test_bearer_everywhere_but_the_signed_link_the_problem_pages_and_schemas() -> None:
    scheme = document()["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "Token token=" in scheme["description"]
    for _, path, op in operations():
        if op["operationId"] in PUBLIC:
            assert op["security"] == [], path
            assert "401" not in op["responses"]
        else:
            assert op["security"] == [{"bearer": []}], path
            assert {"401", "403", "429"} <= set(op["responses"]), path


def test_every_post_has_a_request_body_and_the_main_bodies_have_examples() -> None:
    for method, path, op in operations():
        if method == "post" and not path.endswith("/cancel"):
            assert op["requestBody"]["required"] is True, path
    ok = operation("deepfakeDetection_createDetectBatch")["responses"]["202"]
    (example,) = ok["content"]["application/json"]["examples"].values()
    assert example["value"]["item"]["finished_at"] is None  # nulls survive rendering


def test_every_problem_type_has_a_page() -> None:
    assert set(PAGES) == {kind.slug for kind in p.ALL_PROBLEMS}
    html = page(p.INSUFFICIENT_FUNDS)
    assert "<code>details</code>" in html
    assert "insufficient_funds" in html


# --- input rules the fuzzing found -------------------------------------------------------------


def request(headers: dict[str, str], body: bytes = b"") -> Request[Any, Any, Any]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http", "method": "POST", "path": "/", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
    }  # fmt: skip
    return Request(cast(Any, scope), receive=cast(Any, receive))


def test_prefer_wait_with_non_ascii_digits_waits_the_most() -> None:
    assert prefer_wait(request({"Prefer": "wait=12.5"})) == 12.5
    assert prefer_wait(request({"Prefer": "wait=\xb2"})) == math.inf  # "²" is a digit to Python


class Body:
    """What read_json_body reads of a request: its stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.data


async def test_json_with_lone_surrogates_is_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        await read_json_body(cast(Any, Body(b'{"comment": "\\ud800"}')))
    assert caught.value.problem.status == 400
    assert await read_json_body(cast(Any, Body(b'{"comment": "\\u00e9"}'))) == {"comment": "\xe9"}


def test_text_options_with_nul_are_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        parse_options([("pipeline", "a\x00b")], SINGLE_FIELDS)
    assert caught.value.problem.errors == {"pipeline": ["must not contain NUL"]}


@pytest.mark.parametrize("url", ["http://[::1/x.wav", "http://x\ud800.example/x.wav"])
async def test_urls_that_cannot_be_parsed_or_encoded_are_refused(url: str) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        host.encode("idna")  # what the event loop's getaddrinfo does first
        return ["93.184.216.34"]

    with pytest.raises(RefusedUrlError):
        await check(url, resolve=resolve, what="url")
