"""Server-side tools: functions the LLM may call that run here, not in the user's browser.

A registry the operator extends: built-ins below, plus any ``ServerTool`` published under the
``agenthost.tools`` entry-point group by an installed package. Every call is validated against
the tool's argument model and bounded by its timeout; whatever goes wrong becomes an error
*message* for the LLM (which can apologise or try again), never a crashed session.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import operator
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from execution.llm.port import ToolSpec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agenthost.tools"
DEFAULT_TIMEOUT_S = 10.0

ToolFunction = Callable[[Any], Awaitable[JsonValue]]


@dataclass(frozen=True)
class ServerTool:
    """A tool: its name and description for the LLM, its argument model, and the coroutine."""

    name: str
    description: str
    arguments: type[BaseModel]
    run: ToolFunction
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.arguments.model_json_schema(),
        )


class ToolOutcome(BaseModel):
    """What goes back to the LLM as the tool message."""

    model_config = ConfigDict(frozen=True)

    content: str
    is_error: bool = False


class ServerToolRegistry:
    def __init__(self, tools: Iterable[ServerTool] = ()) -> None:
        self._tools: dict[str, ServerTool] = {}
        for tool in tools:
            self.register(tool)

    @classmethod
    def with_installed(cls, group: str = ENTRY_POINT_GROUP) -> ServerToolRegistry:
        """The built-ins plus every tool installed packages publish under ``group``."""
        registry = cls(BUILTIN_TOOLS)
        for entry_point in entry_points(group=group):
            loaded = entry_point.load()
            for tool in loaded if isinstance(loaded, list | tuple) else [loaded]:
                if not isinstance(tool, ServerTool):
                    raise TypeError(f"entry point {entry_point.name!r} is not a ServerTool")
                registry.register(tool)
        return registry

    def register(self, tool: ServerTool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a server tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        """Specs of the named tools (unknown names skipped), or of all of them."""
        chosen = self._tools if names is None else {n: self._tools[n] for n in names if n in self}
        return [tool.spec for tool in chosen.values()]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutcome(content=f"unknown tool {name!r}", is_error=True)
        try:
            parsed = tool.arguments.model_validate(arguments)
        except ValidationError as error:
            return ToolOutcome(content=f"invalid arguments for {name}: {error}", is_error=True)
        try:
            async with asyncio.timeout(tool.timeout_s):
                result = await tool.run(parsed)
        except TimeoutError:
            return ToolOutcome(
                content=f"{name} timed out after {tool.timeout_s:g} s", is_error=True
            )
        except Exception as error:  # operator code: any failure becomes a tool error
            log.warning("server tool %s failed", name, exc_info=True)
            return ToolOutcome(content=f"{name} failed: {error}", is_error=True)
        return ToolOutcome(content=result if isinstance(result, str) else _json(result))


def _json(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------- built-ins


class CalculatorArguments(BaseModel):
    expression: str = Field(
        max_length=200, description="Arithmetic with + - * / // % ** and parentheses"
    )


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
MAX_EXPONENT = 1000


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate arithmetic without ``eval``: only numbers and the operators above."""

    def walk(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ValueError("not allowed in arithmetic: a boolean")
            return node.value
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))  # type: ignore[no-any-return]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise ValueError(f"exponent larger than {MAX_EXPONENT}")
            return _OPERATORS[type(node.op)](left, right)  # type: ignore[no-any-return]
        raise ValueError(f"not allowed in arithmetic: {ast.dump(node)[:60]}")

    result = walk(ast.parse(expression, mode="eval"))
    if isinstance(result, float) and not math.isfinite(result):
        raise ValueError("the result is not a finite number")
    return result


async def _calculate(arguments: CalculatorArguments) -> JsonValue:
    return {"expression": arguments.expression, "result": evaluate_arithmetic(arguments.expression)}


class NoArguments(BaseModel):
    pass


async def _current_time(_: NoArguments) -> JsonValue:
    return {"utc": datetime.now(UTC).isoformat()}


BUILTIN_TOOLS = (
    ServerTool(
        name="calculator",
        description="Evaluate an arithmetic expression exactly (no variables, no functions).",
        arguments=CalculatorArguments,
        run=_calculate,
        timeout_s=2.0,
    ),
    ServerTool(
        name="current_time",
        description="The current date and time in UTC, ISO 8601.",
        arguments=NoArguments,
        run=_current_time,
        timeout_s=1.0,
    ),
)
