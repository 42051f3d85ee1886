"""schemas/openapi.yaml: the payload is referenced from power-event.schema.json, never
copied; the token carriers and answers are the receiver's."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridhook.auth import presented_tokens
from gridhook.schema import SCHEMA_PATH, load_schema

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "schemas" / "openapi.yaml"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def follow(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow in-document ``#/…`` references to what they name."""
    while "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def walk(node: Any, skip: tuple[str, ...] = ("example", "examples")) -> Iterator[dict[str, Any]]:
    """Every object in the document, outside examples."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in skip:
                yield from walk(value, skip)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, skip)


def payload_schemas(document: dict[str, Any]) -> list[dict[str, Any]]:
    post = document["paths"]["/nvgrid/webhook"]["post"]
    hook = document["webhooks"]["powerEvent"]["post"]
    return [
        follow(document, op["requestBody"])["content"]["application/json"]["schema"]
        for op in (post, hook)
    ]


def test_is_openapi_3_1_with_the_endpoint_and_the_webhook(document) -> None:
    assert document["openapi"].startswith("3.1.")
    assert set(document["paths"]["/nvgrid/webhook"]) == {"post"}
    assert set(document["webhooks"]["powerEvent"]) == {"post"}


def test_payload_is_referenced_from_the_schema_file_not_copied(document) -> None:
    for schema in payload_schemas(document):
        assert schema == {"$ref": "power-event.schema.json"}
        assert (OPENAPI.parent / schema["$ref"]).resolve() == SCHEMA_PATH.resolve()
    # No schema in the document restates the payload's fields.
    payload_fields = set(load_schema()["properties"])
    for node in walk(document):
        restated = payload_fields & set(node.get("properties") or {})
        assert not restated, f"the document copies payload fields {restated}"


def test_security_schemes_are_the_three_carriers_the_receiver_reads(document) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    assert schemes["basicToken"] == {**schemes["basicToken"], "type": "http", "scheme": "basic"}
    query = schemes["queryToken"]
    assert (query["type"], query["in"]) == ("apiKey", "query")
    assert presented_tokens(None, {query["name"]: "t0ken"}) == ["t0ken"]
    assert presented_tokens("Bearer t0ken", {}) == ["t0ken"]
    basic = base64.b64encode(b"any-user:t0ken").decode()
    assert presented_tokens(f"Basic {basic}", {}) == ["t0ken"]
    post = document["paths"]["/nvgrid/webhook"]["post"]
    assert post["security"] == [{name: []} for name in schemes]


def test_every_answer_has_its_headers_and_json_shape(document) -> None:
    responses = document["paths"]["/nvgrid/webhook"]["post"]["responses"]
    # ARCHITECTURE.md's contract table, row by row.
    assert set(responses) == {"200", "400", "401", "405", "413", "415", "422", "503"}
    assert document["webhooks"]["powerEvent"]["post"]["responses"] == responses
    required_headers = {"401": "WWW-Authenticate", "405": "Allow", "503": "Retry-After"}
    for status, ref in responses.items():
        answer = follow(document, ref)
        headers = answer["headers"]
        assert "Cache-Control" in headers, status
        if status in required_headers:
            assert required_headers[status] in headers, status
        shape = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        expected = {"200": "Acknowledgement", "422": "ValidationError"}.get(status, "Error")
        assert shape == expected, status
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"code", "message", "details"}


def test_a_sites_path_has_the_same_answers_and_a_404_for_an_unknown_site(document) -> None:
    from gridhook.sites import SITE_NAME

    path = document["paths"]["/nvgrid/webhook/{site}"]
    assert set(path) == {"parameters", "post"}
    [site] = path["parameters"]
    assert (site["name"], site["in"], site["required"]) == ("site", "path", True)
    assert site["schema"]["pattern"] == f"^{SITE_NAME.pattern}$"
    post = path["post"]
    default = document["paths"]["/nvgrid/webhook"]["post"]
    assert post["security"] == default["security"]
    assert post["requestBody"] == default["requestBody"]
    assert post["responses"] == {**default["responses"], "404": post["responses"]["404"]}
    unknown = follow(document, post["responses"]["404"])
    assert "Cache-Control" in unknown["headers"]
    shape = follow(document, unknown["content"]["application/json"]["schema"])
    assert shape["properties"]["error"]["properties"]["code"] == {"const": "unknown_site"}
