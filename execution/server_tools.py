"""Server-side tools: functions the LLM may call that run here, not in the user's browser.

A registry the operator extends: built-ins below, plus any ``ServerTool`` published under the
``agenthost.tools`` entry-point group by an installed package. Every call is validated against
the tool's argument model and bounded by its timeout and by the size of its result; whatever
goes wrong becomes an error *message* for the LLM (which can apologise or try again), never a
crashed session.

Where a tool runs is its author's choice, made by what it gives:

- ``compute``: a plain function, module-level (the worker imports it by module and name).
  It runs in a worker process (``execution.tool_runner``) and is killed at its timeout, so
  it may use the CPU as it likes without stalling the host. The calculator is one.
- ``run``: a coroutine, on the host's event loop. For tools that only wait on I/O (an HTTP
  lookup, a database query): a worker would cost a process hop for nothing, and
  ``asyncio.timeout`` does stop a coroutine that awaits. It must never compute for long:
  while it does, every agent on the host waits. ``current_time`` is one.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import math
import operator
import pickle
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from execution.llm.port import ToolSpec
from execution.tool_runner import (
    DEFAULT_WORKERS,
    TOLD_TO_THE_MODEL,
    ComputeFunction,
    ToolFailed,
    ToolTimedOut,
    WorkerPool,
    logged_failure,
    tool_content,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agenthost.tools"
DEFAULT_TIMEOUT_S = 10.0

ToolFunction = Callable[[Any], Awaitable[JsonValue]]


@dataclass(frozen=True)
class ServerTool:
    """A tool: its name and description for the LLM, its argument model, and either ``run``
    (a coroutine, on the host's loop) or ``compute`` (a function, in a worker process)."""

    name: str
    description: str
    arguments: type[BaseModel]
    run: ToolFunction | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    compute: ComputeFunction | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.compute is None):
            raise TypeError(
                f"server tool {self.name!r} needs either run (a coroutine, on the event loop) "
                "or compute (a function, in a worker process)"
            )
        if self.compute is not None:
            try:  # refused here, at registration, rather than on the first call
                pickle.dumps((self.compute, self.arguments))
            except (pickle.PicklingError, AttributeError, TypeError) as error:
                raise TypeError(
                    f"server tool {self.name!r}: compute and its argument model must be a "
                    f"module-level function and class, for the worker to import ({error})"
                ) from None

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
    def __init__(self, tools: Iterable[ServerTool] = (), *, workers: int = DEFAULT_WORKERS) -> None:
        """``workers``: how many worker processes the ``compute`` tools share, at most."""
        self._tools: dict[str, ServerTool] = {}
        self._workers = workers
        self._pool: WorkerPool | None = None
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
            content = await self._run(tool, parsed)
        except (TimeoutError, ToolTimedOut):
            return ToolOutcome(
                content=f"{name} timed out after {tool.timeout_s:g} s", is_error=True
            )
        except (ToolFailed, *TOLD_TO_THE_MODEL) as error:
            return ToolOutcome(content=f"{name} failed: {error}", is_error=True)
        except Exception as error:  # noqa: BLE001 - operator code: logged, told as a failure
            return ToolOutcome(content=f"{name} failed: {logged_failure(error)}", is_error=True)
        return ToolOutcome(content=content)

    async def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _run(self, tool: ServerTool, arguments: BaseModel) -> str:
        if tool.compute is not None:
            return await self._workers_pool().run(tool.compute, arguments, tool.timeout_s)
        assert tool.run is not None
        async with asyncio.timeout(tool.timeout_s):
            result = await tool.run(arguments)
        return tool_content(result)

    def _workers_pool(self) -> WorkerPool:
        """Started at the first compute call; each worker imports every compute tool's
        module when it starts."""
        if self._pool is None:
            modules = [t.compute.__module__ for t in self._tools.values() if t.compute]
            self._pool = WorkerPool(self._workers, preload=modules)
        return self._pool


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
MAX_RESULT_BITS = 4096
"""No integer the calculator makes reaches 2**4096 (1234 digits): every operation on such
numbers takes microseconds, and every result prints (Python refuses ints over 4300 digits)."""
_TOO_LARGE = f"too large: a result would reach 2**{MAX_RESULT_BITS}"


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate arithmetic without ``eval``: only numbers and the operators above, every
    intermediate result bounded (``**`` and ``*`` checked before they compute)."""

    def walk(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ValueError("not allowed in arithmetic: a boolean")
            return _bounded(node.value)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _bounded(_OPERATORS[type(node.op)](walk(node.operand)))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            _refuse_growth(node.op, left, right)
            try:
                return _bounded(_OPERATORS[type(node.op)](left, right))
            except OverflowError:  # a float out of range, or an int too large to be one
                raise ValueError(_TOO_LARGE) from None
        raise ValueError(f"not allowed in arithmetic: {ast.dump(node)[:60]}")

    return walk(ast.parse(expression, mode="eval"))


def _refuse_growth(op: ast.operator, left: float | int, right: float | int) -> None:
    """Refuse a product or power of integers whose result would be over the bound before
    computing it: their cost grows with the result, which can be astronomically large
    (``((9**999)**999)**999`` would take hours). What passes here makes at most a couple of
    bits over the bound, which ``_bounded`` refuses once made. Float results need no
    estimate: they cannot exceed 2**1024 and cost the same whatever their size."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    at_least: float
    if isinstance(op, ast.Mult):
        at_least = left.bit_length() + right.bit_length() - 1
    elif isinstance(op, ast.Pow) and right > 0 and abs(left) > 1:
        at_least = right if right > MAX_RESULT_BITS else right * math.log2(abs(left)) - 1
    else:
        return
    if at_least > MAX_RESULT_BITS:
        raise ValueError(_TOO_LARGE)


def _bounded(value: Any) -> float | int:
    """``value`` if it is a real, finite number within the bound."""
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the result is not a finite number")
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ValueError(_TOO_LARGE)
    result: float | int = value
    return result


def _calculate(arguments: CalculatorArguments) -> JsonValue:
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
        compute=_calculate,
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
