"""The OpenAPI document: every route shows an example, and every example is valid."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from projections.documents import AgentDocument, SessionDocument
from serve_app.app import create_app
from serve_app.problems import Problem
from serve_app.schemas import (
    ArchiveRequest,
    AssignUserRequest,
    CreateAgentRequest,
    Health,
    PreferencesRequest,
    RespondRequest,
    SessionState,
    StartSessionRequest,
)


async def _no_services() -> Any:
    raise AssertionError("the OpenAPI document needs no services")


SPEC = create_app(_no_services, 65536).openapi()
SCHEMAS = SPEC["components"]["schemas"]


def _examples(schema: dict[str, Any]) -> list[Any]:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    target = SCHEMAS[ref.rsplit("/", 1)[-1]] if ref else schema
    return list(target.get("examples", []))


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in SPEC["paths"].items() for m, op in ops.items()]


@pytest.mark.parametrize(("method", "path", "operation"), _operations())
def test_every_route_shows_an_example_answer(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    answers = [r for code, r in operation["responses"].items() if code.startswith("2")]
    shown = [
        example
        for answer in answers
        for media, content in answer.get("content", {}).items()
        for example in (
            [content["example"]] if "example" in content else _examples(content["schema"])
        )
    ]
    assert shown, f"{method} {path} shows no example answer"


@pytest.mark.parametrize(
    "model",
    [
        AgentDocument,
        SessionDocument,
        SessionState,
        Health,
        Problem,
        CreateAgentRequest,
        StartSessionRequest,
        RespondRequest,
        AssignUserRequest,
        PreferencesRequest,
        ArchiveRequest,
    ],
)
def test_every_example_is_valid_for_its_model(model: type[BaseModel]) -> None:
    examples = model.model_json_schema().get("examples", [])
    assert examples
    for example in examples:
        model.model_validate(example)


def test_problem_answers_are_documented_on_agent_routes() -> None:
    start = SPEC["paths"]["/api/agents/{agent_id}/sessions"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(start)


def test_the_idempotency_key_is_documented_as_an_optional_uuid_never_null() -> None:
    # Given every operation that takes the header
    documented = [
        (method, path, parameter)
        for method, path, op in _operations()
        for parameter in op.get("parameters", [])
        if parameter["name"].lower() == "idempotency-key"
    ]
    assert len(documented) >= 10
    for method, path, parameter in documented:
        # Then a client may leave it out, and what it sends must be a UUID (a literal null
        # is not "schema-valid" only to be refused with 422)
        assert parameter["required"] is False, (method, path)
        assert parameter["schema"]["type"] == "string", (method, path)
        assert parameter["schema"]["format"] == "uuid", (method, path)
        assert "anyOf" not in parameter["schema"], (method, path)


def test_every_error_answer_is_documented_as_problem_json_with_the_problem_schema() -> None:
    for method, path, op in _operations():
        for status, response in op["responses"].items():
            if status[0] not in "45" or path == "/readyz":  # readyz's 503 is a Health
                continue
            # Then the media type the handlers send, and the one shared shape
            assert list(response["content"]) == ["application/problem+json"], (method, path)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_every_operation_with_a_body_documents_malformed_json_and_a_body_too_large() -> None:
    with_body = [(m, p, op) for m, p, op in _operations() if "requestBody" in op]
    assert len(with_body) >= 8
    for method, path, op in with_body:
        assert {"400", "413", "422"} <= set(op["responses"]), (method, path)


def test_every_reference_in_the_document_resolves() -> None:
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(SPEC)))
    assert refs <= set(SCHEMAS)
    assert "HTTPValidationError" not in SCHEMAS  # never sent: validation errors are problems


def test_no_parameter_is_documented_as_nullable() -> None:
    # A header or query value is sent or it is not: "null" would be schema-valid, then refused
    for method, path, op in _operations():
        for parameter in op.get("parameters", []):
            schema = json.dumps(parameter["schema"])
            assert '"null"' not in schema, (method, path, parameter["name"])
