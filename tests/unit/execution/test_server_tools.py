"""Server tools: validated, bounded in time, and failures become messages, not crashes."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import EntryPoint

import pytest
from pydantic import BaseModel

from execution.server_tools import (
    BUILTIN_TOOLS,
    ENTRY_POINT_GROUP,
    NoArguments,
    ServerTool,
    ServerToolRegistry,
    evaluate_arithmetic,
)


class Echo(BaseModel):
    text: str


async def _echo(arguments: Echo) -> str:
    return arguments.text


async def _slow(_: NoArguments) -> str:
    await asyncio.sleep(10)
    return "never"


async def _broken(_: NoArguments) -> str:
    raise RuntimeError("disk on fire")


def registry() -> ServerToolRegistry:
    return ServerToolRegistry(
        [
            *BUILTIN_TOOLS,
            ServerTool(name="echo", description="echo", arguments=Echo, run=_echo),
            ServerTool(
                name="slow", description="slow", arguments=NoArguments, run=_slow, timeout_s=0.05
            ),
            ServerTool(name="broken", description="broken", arguments=NoArguments, run=_broken),
        ]
    )


async def test_a_tool_runs_with_validated_arguments() -> None:
    outcome = await registry().call("echo", {"text": "hi"})
    assert (outcome.content, outcome.is_error) == ("hi", False)
    calculated = await registry().call("calculator", {"expression": "2 + 3 * 4"})
    assert json.loads(calculated.content)["result"] == 14


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("echo", {"text": 3}, "invalid arguments for echo"),
        ("nope", {}, "unknown tool 'nope'"),
        ("slow", {}, "slow timed out after 0.05 s"),
        ("broken", {}, "broken failed: disk on fire"),
        ("calculator", {"expression": "__import__('os')"}, "calculator failed"),
    ],
)
async def test_every_failure_is_an_error_message(
    name: str, arguments: dict[str, object], message: str
) -> None:
    outcome = await registry().call(name, arguments)
    assert outcome.is_error
    assert message in outcome.content


def test_specs_offer_the_json_schema_of_the_arguments() -> None:
    (spec,) = registry().specs(["echo", "not-registered"])
    assert spec.name == "echo"
    assert spec.parameters["properties"]["text"]["type"] == "string"
    assert spec.parameters["required"] == ["text"]
    assert {s.name for s in registry().specs()} >= {"calculator", "current_time"}


def test_names_are_unique() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ServerToolRegistry([*BUILTIN_TOOLS, BUILTIN_TOOLS[0]])


@pytest.mark.parametrize(
    ("expression", "value"),
    [("7 * 8", 56), ("144 / 12", 12.0), ("-(2 ** 10) % 7", 5), ("1/2 + 1/4", 0.75)],
)
def test_arithmetic_is_exact(expression: str, value: float) -> None:
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize("expression", ["x + 1", "abs(-1)", "9 ** 99999", "1e308 * 10", "'a'"])
def test_anything_but_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match=r"not allowed|exponent|finite"):
        evaluate_arithmetic(expression)


ECHO = ServerTool(name="echo", description="echo", arguments=Echo, run=_echo)


def test_installed_packages_extend_the_registry_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = EntryPoint(
        name="echo", value="tests.unit.execution.test_server_tools:ECHO", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        "execution.server_tools.entry_points",
        lambda group: [published] if group == ENTRY_POINT_GROUP else [],
    )
    registry = ServerToolRegistry.with_installed()
    assert {"calculator", "current_time", "echo"} <= {s.name for s in registry.specs()}


def test_an_entry_point_that_is_not_a_tool_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = EntryPoint(name="oops", value="json:dumps", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr("execution.server_tools.entry_points", lambda group: [wrong])
    with pytest.raises(TypeError, match="'oops' is not a ServerTool"):
        ServerToolRegistry.with_installed()
