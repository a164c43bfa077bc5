"""The OpenAPI document: every route shows an example, and every example is valid."""

from __future__ import annotations

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
