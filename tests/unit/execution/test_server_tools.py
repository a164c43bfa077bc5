"""Server tools: validated, bounded before they compute, killed at their timeout, offered only
as the agent's profile says, and every failure a message for the LLM, never a crash.

Worker processes import this module for its compute functions, when they start: what it
imports at the top is kept light, so they start fast; the executor's test imports its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import BaseModel, JsonValue

from execution.server_tools import (
    BUILTIN_TOOLS,
    ENTRY_POINT_GROUP,
    MAX_RESULT_BITS,
    NoArguments,
    ServerTool,
    ServerToolRegistry,
    evaluate_arithmetic,
)
from execution.tool_runner import MAX_CONTENT_CHARS, ToolFailed, ToolTimedOut, WorkerPool

BOMB = "((9**999)**999)**999"


class Echo(BaseModel):
    text: str


async def _echo(arguments: Echo) -> str:
    return arguments.text


async def _slow(_: NoArguments) -> str:
    await asyncio.sleep(10)
    return "never"


async def _broken(_: NoArguments) -> str:
    raise RuntimeError("disk on fire")


async def _too_long(_: NoArguments) -> str:
    return "x" * (MAX_CONTENT_CHARS + 1)


# Compute functions run in a worker process, which imports them by module and name.


def spin(_: NoArguments) -> str:
    while True:
        pass


def worker_pid(_: NoArguments) -> JsonValue:
    return os.getpid()


def exit_hard(_: NoArguments) -> JsonValue:
    os._exit(3)


def refuse(_: NoArguments) -> JsonValue:
    raise ValueError("no such account")


def too_long(_: NoArguments) -> JsonValue:
    return ["x" * MAX_CONTENT_CHARS]


SPIN = ServerTool(
    name="spin", description="never ends", arguments=NoArguments, compute=spin, timeout_s=1.0
)


@pytest.fixture
async def tools() -> AsyncIterator[ServerToolRegistry]:
    registry = ServerToolRegistry(
        [
            *BUILTIN_TOOLS,
            SPIN,
            ServerTool(name="echo", description="echo", arguments=Echo, run=_echo),
            ServerTool(
                name="slow", description="slow", arguments=NoArguments, run=_slow, timeout_s=0.05
            ),
            ServerTool(name="broken", description="broken", arguments=NoArguments, run=_broken),
            ServerTool(name="long", description="long", arguments=NoArguments, run=_too_long),
            ServerTool(name="refuse", description="", arguments=NoArguments, compute=refuse),
            ServerTool(name="exit", description="", arguments=NoArguments, compute=exit_hard),
            ServerTool(name="long_c", description="", arguments=NoArguments, compute=too_long),
        ]
    )
    yield registry
    await registry.close()


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    opened = WorkerPool(size=1, preload=(__name__,))
    yield opened
    await opened.close()


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper that may never come)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_tool_runs_with_validated_arguments(tools: ServerToolRegistry) -> None:
    outcome = await tools.call("echo", {"text": "hi"})
    assert (outcome.content, outcome.is_error) == ("hi", False)
    calculated = await tools.call("calculator", {"expression": "2 + 3 * 4"})
    assert json.loads(calculated.content)["result"] == 14


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("echo", {"text": 3}, "invalid arguments for echo"),
        ("nope", {}, "unknown tool 'nope'"),
        ("slow", {}, "slow timed out after 0.05 s"),
        # Not a refusal the tool wrote for the model: its text stays in the log.
        ("broken", {}, "broken failed: the tool failed unexpectedly (error id "),
        ("calculator", {"expression": "__import__('os')"}, "calculator failed"),
        ("calculator", {"expression": BOMB}, "calculator failed: too large"),
        ("refuse", {}, "refuse failed: no such account"),
        ("exit", {}, "exit failed: its worker process exited"),
        ("long", {}, f"long failed: the result is longer than {MAX_CONTENT_CHARS} characters"),
        ("long_c", {}, f"long_c failed: the result is longer than {MAX_CONTENT_CHARS} char"),
    ],
)
async def test_every_failure_is_an_error_message(
    tools: ServerToolRegistry, name: str, arguments: dict[str, object], message: str
) -> None:
    outcome = await tools.call(name, arguments)
    assert outcome.is_error
    assert message in outcome.content


def test_specs_offer_the_json_schema_of_the_arguments() -> None:
    registry = ServerToolRegistry(
        [*BUILTIN_TOOLS, ServerTool(name="echo", description="echo", arguments=Echo, run=_echo)]
    )
    (spec,) = registry.specs(["echo", "not-registered"])
    assert spec.name == "echo"
    assert spec.parameters["properties"]["text"]["type"] == "string"
    assert spec.parameters["required"] == ["text"]
    assert {s.name for s in registry.specs()} >= {"calculator", "current_time"}


def test_names_are_unique() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ServerToolRegistry([*BUILTIN_TOOLS, BUILTIN_TOOLS[0]])


# ------------------------------------------------------------------- the calculator's bounds


EXACT = [
    ("7 * 8", 56),
    ("144 / 12", 12.0),
    ("-(2 ** 10) % 7", 5),
    ("1/2 + 1/4", 0.75),
    ("2 ** 4095", 2**4095),
    ("2 ** 4095 + (2 ** 4095 - 1)", 2**4096 - 1),
    ("9 ** 999 // 9 ** 998", 9),
    ("1 ** (10 ** 150)", 1),
    ("(-1) ** (10 ** 150 + 1)", -1),
    ("2 ** -5000", 0.0),
    ("1.5 ** 100", 1.5**100),
]


@pytest.mark.parametrize(("expression", "value"), EXACT, ids=[e for e, _ in EXACT])
def test_arithmetic_is_exact(expression: str, value: float) -> None:
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "(9**999)**999",
        pytest.param(BOMB, id="the-bomb"),
        "9 ** 99999",
        "2 ** 4097",
        "(2 ** 3000) * (2 ** 3000)",
        "(2 ** 4095) + (2 ** 4095)",
        "7 ** (10 ** 100)",
        "2.0 ** 5000",
        "10 ** 400 / 3",
        "1e308 * 10",
        "1e999",
    ],
)
def test_a_result_out_of_bounds_is_refused_at_once(expression: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"too large|not a finite number"):
        evaluate_arithmetic(expression)
    assert time.perf_counter() - started < 0.05


def test_the_largest_result_still_prints() -> None:
    assert MAX_RESULT_BITS == 4096
    assert len(str(evaluate_arithmetic("2 ** 4095"))) == 1233  # under int's 4300-digit limit


@pytest.mark.parametrize("expression", ["x + 1", "abs(-1)", "'a'", "True + 1", "(-8) ** 0.5"])
def test_anything_but_real_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match=r"not allowed|not a real number"):
        evaluate_arithmetic(expression)


def test_the_calculator_computes_in_a_worker_process() -> None:
    calculator = next(tool for tool in BUILTIN_TOOLS if tool.name == "calculator")
    assert calculator.run is None
    assert calculator.compute is not None


# ------------------------------------------------------------------------ the worker pool


async def test_a_cpu_bound_tool_is_killed_at_its_timeout_while_the_loop_stays_responsive(
    tools: ServerToolRegistry,
) -> None:
    await tools.call("calculator", {"expression": "1+1"})  # the worker is up
    gaps: list[float] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - before)

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    outcome = await tools.call("spin", {})
    elapsed = time.perf_counter() - started
    ticker.cancel()
    assert (outcome.content, outcome.is_error) == ("spin timed out after 1 s", True)
    assert 1.0 <= elapsed < 2.0
    assert len(gaps) > 50
    assert max(gaps) < 0.2
    calculated = await tools.call("calculator", {"expression": "6*7"})  # a new worker answers
    assert json.loads(calculated.content)["result"] == 42


async def test_a_timed_out_worker_is_terminated_and_replaced(pool: WorkerPool) -> None:
    first = json.loads(await pool.run(worker_pid, NoArguments(), timeout_s=5))
    with pytest.raises(ToolTimedOut):
        await pool.run(spin, NoArguments(), timeout_s=0.3)
    assert not is_running(first)
    second = json.loads(await pool.run(worker_pid, NoArguments(), timeout_s=5))
    assert second != first
    assert second != os.getpid()


async def test_a_cancelled_call_terminates_its_worker(pool: WorkerPool) -> None:
    first = json.loads(await pool.run(worker_pid, NoArguments(), timeout_s=5))
    call = asyncio.create_task(pool.run(spin, NoArguments(), timeout_s=30))
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not is_running(first)
    assert json.loads(await pool.run(worker_pid, NoArguments(), timeout_s=5)) != first


async def test_a_worker_that_dies_is_replaced(pool: WorkerPool) -> None:
    with pytest.raises(ToolFailed, match="its worker process exited"):
        await pool.run(exit_hard, NoArguments(), timeout_s=5)
    assert isinstance(json.loads(await pool.run(worker_pid, NoArguments(), timeout_s=5)), int)


async def test_other_calls_go_on_while_one_worker_computes() -> None:
    pool = WorkerPool(size=2, preload=(__name__,))
    try:
        pids = await asyncio.gather(*(pool.run(worker_pid, NoArguments(), 5) for _ in range(2)))
        assert len(set(pids)) == 2  # both workers up
        spinning = asyncio.create_task(pool.run(spin, NoArguments(), timeout_s=1.5))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await pool.run(worker_pid, NoArguments(), timeout_s=5)
        assert time.perf_counter() - started < 0.5
        with pytest.raises(ToolTimedOut):
            await spinning
    finally:
        await pool.close()


async def test_close_terminates_every_worker() -> None:
    pool = WorkerPool(size=2, preload=(__name__,))
    pids = await asyncio.gather(*(pool.run(worker_pid, NoArguments(), 5) for _ in range(2)))
    busy = asyncio.create_task(pool.run(spin, NoArguments(), timeout_s=30))
    await asyncio.sleep(0.2)
    await pool.close()
    with pytest.raises(ToolFailed):
        await busy
    assert not any(is_running(int(pid)) for pid in pids)
    with pytest.raises(ToolFailed, match="closed"):
        await pool.run(worker_pid, NoArguments(), timeout_s=5)


HOST_DIES_MID_CALL = f"""
import asyncio, os, sys
from pathlib import Path
from execution.tool_runner import WorkerPool
from {__name__} import NoArguments, spin, worker_pid

async def main():
    pool = WorkerPool(size=1, preload=["{__name__}"])
    Path(sys.argv[1]).write_text(await pool.run(worker_pid, NoArguments(), 30))
    asyncio.ensure_future(pool.run(spin, NoArguments(), 600))
    await asyncio.sleep(0.3)
    os._exit(0)  # the host dies, as a killed actor does: no close, no atexit

asyncio.run(main())
"""


async def test_a_worker_ends_when_its_host_dies_even_mid_computation(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOST_DIES_MID_CALL, str(pid_file)
    )
    assert await asyncio.wait_for(host.wait(), 60) == 0
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    try:
        while is_running(worker):
            assert time.monotonic() < deadline, "the orphaned worker is still computing"
            await asyncio.sleep(0.05)
    finally:
        if is_running(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_compute_function_must_be_importable_by_the_worker() -> None:
    with pytest.raises(TypeError, match=r"'local'.*module-level function"):
        ServerTool(name="local", description="", arguments=NoArguments, compute=lambda _: 1)


def test_a_tool_gives_either_a_coroutine_or_a_compute_function() -> None:
    with pytest.raises(TypeError, match=r"either run .* or compute"):
        ServerTool(name="none", description="", arguments=NoArguments)
    with pytest.raises(TypeError, match=r"either run .* or compute"):
        ServerTool(name="both", description="", arguments=NoArguments, run=_echo, compute=spin)


# ------------------------------------------------------------------------- entry points

ECHO = ServerTool(name="echo", description="echo", arguments=Echo, run=_echo)


def test_installed_packages_extend_the_registry_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = [
        EntryPoint(name="echo", value=f"{__name__}:ECHO", group=ENTRY_POINT_GROUP),
        EntryPoint(name="spin", value=f"{__name__}:SPIN", group=ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        "execution.server_tools.entry_points",
        lambda group: published if group == ENTRY_POINT_GROUP else [],
    )
    registry = ServerToolRegistry.with_installed()
    assert {"calculator", "current_time", "echo", "spin"} <= {s.name for s in registry.specs()}


def test_an_entry_point_that_is_not_a_tool_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = EntryPoint(name="oops", value="json:dumps", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr("execution.server_tools.entry_points", lambda group: [wrong])
    with pytest.raises(TypeError, match="'oops' is not a ServerTool"):
        ServerToolRegistry.with_installed()


# --------------------------------------------------------- only the tools the profile offers

SPY_CALLS: list[str] = []


async def _spy(_: NoArguments) -> str:
    SPY_CALLS.append("ran")
    return "secret"


SPY = ServerTool(name="spy", description="offered to nobody", arguments=NoArguments, run=_spy)


async def test_a_model_runs_only_the_tools_its_agents_profile_offers() -> None:
    from application.bootstrap import HostConfig, build_application
    from domain.commands import GetOrCreateAgent, StartSession
    from domain.enums import AgentType
    from execution.executor import Outcome, ProactiveAgentExecutor
    from execution.llm.openai_compatible import OpenAICompatibleProvider
    from tests.support.fake_llm_server import (
        ScriptedCall,
        TextReply,
        ToolCallReply,
        running_fake_llm,
    )

    SPY_CALLS.clear()
    host = build_application(HostConfig(event_store_url=f"memory://{uuid4().hex}"))
    registry = ServerToolRegistry([*BUILTIN_TOOLS, SPY])
    thought = GetOrCreateAgent.for_user("u1", AgentType.THOUGHT)  # offered: current_time
    agent_id = (await host.execute(thought)).agent_id
    await host.execute(StartSession(agent_id=agent_id))
    calls = [
        ScriptedCall.split("c1", "calculator", {"expression": "6*7"}),
        ScriptedCall.split("c2", "spy", {}),
        ScriptedCall.split("c3", "shell", {"command": "id"}),
        ScriptedCall.split("c4", "current_time", {}),
    ]
    async with running_fake_llm() as llm_server:
        provider = OpenAICompatibleProvider(llm_server.base_url, "scripted", max_attempts=1)
        run = ProactiveAgentExecutor(host, llm=provider, tools=registry)
        llm_server.script(ToolCallReply(calls), TextReply(["Done."]), TextReply(["Summary."]))
        try:
            assert await run.advance(agent_id) is Outcome.COMPLETED
        finally:
            await registry.close()
            await host.close()

    offered = {t["function"]["name"] for t in llm_server.requests[0].body["tools"]}
    assert "current_time" in offered
    assert not offered & {"calculator", "spy", "shell"}
    tool_messages = [m for m in llm_server.requests[1].body["messages"] if m["role"] == "tool"]
    contents = {m["tool_call_id"]: m["content"] for m in tool_messages}
    assert contents["c1"] == "tool 'calculator' is not available"
    assert contents["c2"] == "tool 'spy' is not available"
    assert contents["c3"] == "tool 'shell' is not available"
    assert "utc" in json.loads(contents["c4"])
    assert SPY_CALLS == []


async def test_an_unexpected_failure_shows_the_model_none_of_its_text(
    tools: ServerToolRegistry,
) -> None:
    outcome = await tools.call("broken", {})
    assert outcome.is_error
    assert "disk on fire" not in outcome.content
