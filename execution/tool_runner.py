"""A small pool of worker processes for CPU-bound server tools, with a per-call limit that
really stops the work.

``asyncio.timeout`` cannot stop a computation that never awaits: while it runs, the host's
event loop, and so every agent on the host, is frozen. A tool that computes therefore runs in
a worker process instead; the host only awaits a pipe, and when a call outlives its timeout
(or its caller is cancelled) the worker is killed, so whatever it was doing stops, and the
next call starts a fresh one.

Workers are started with ``spawn`` (never ``fork``: the host runs threads, Ray's among them,
and a forked copy of a threaded process may deadlock). Each one imports the tools' modules
once, when it starts, so a call's timeout measures the call and not Python's imports. A
worker ends by itself when its host dies (a killed actor closes nothing), even mid-call.

Spawn starts the worker by importing the host's main module again, as ``__mp_main__``: a
host started from a script needs the usual ``if __name__ == "__main__":`` guard (Ray's
workers, ``scripts/serve.py`` and pytest have it).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pydantic import JsonValue

log = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 16_000
"""The longest tool message an LLM gets back; a longer result is an error, not a flood."""
DEFAULT_WORKERS = 2
START_TIMEOUT_S = 30.0
"""How long a new worker may take to start and import the tools' modules."""
HOST_CHECK_S = 0.5
"""How often a worker checks that its host is alive."""

ComputeFunction = Callable[[Any], JsonValue]


class ToolTimedOut(Exception):
    """The call outlived its timeout; its worker was killed."""


class ToolFailed(Exception):
    """The tool raised, or its worker could not start or died; the message says which."""


def tool_content(value: JsonValue) -> str:
    """What goes back to the LLM: a string as it is, anything else as JSON, bounded."""
    content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(content) > MAX_CONTENT_CHARS:
        raise ValueError(f"the result is longer than {MAX_CONTENT_CHARS} characters")
    return content


def serve(connection: Connection, preload: tuple[str, ...]) -> None:
    """A worker's life: import the tools' modules, then answer one call at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the host, which ends us
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    for module in preload:
        importlib.import_module(module)
    connection.send(("ready", None))
    while True:
        try:
            call = connection.recv_bytes()
        except EOFError:  # the host closed the pipe or went away
            return
        try:
            function, argument = pickle.loads(call)
            reply = ("ok", tool_content(function(argument)))
        except TOLD_TO_THE_MODEL as error:  # the tool's own words: its input was refused
            reply = ("error", str(error))
        except Exception as error:  # noqa: BLE001 - anything else is the operator's to read
            reply = ("error", logged_failure(error))
        try:
            connection.send(reply)
        except OSError:  # the host went away meanwhile
            return


TOLD_TO_THE_MODEL = (ValueError, ArithmeticError)
"""Failures whose message a tool writes for the model ("not allowed in arithmetic: ..."); any
other exception's text (paths, URLs, internals) stays in the log."""


def logged_failure(error: Exception) -> str:
    """What the model is told of an unexpected failure: that it failed, and an id to find the
    traceback in the log by."""
    error_id = uuid.uuid4().hex[:12]
    log.warning("server tool failed error_id=%s", error_id, exc_info=error)
    return f"the tool failed unexpectedly (error id {error_id})"


def _exit_with(host: int) -> None:
    """End the worker once its host is gone (it is then adopted by another parent): a call
    the host can no longer kill must not compute forever."""
    while os.getppid() == host:
        time.sleep(HOST_CHECK_S)
    os._exit(1)


class _Worker:
    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection

    async def receive(self) -> tuple[str, Any]:
        """The worker's next message, awaited without blocking the loop; EOFError if the
        worker died."""
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        descriptor = self.connection.fileno()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(descriptor, wake)
        try:
            await readable
        finally:
            loop.remove_reader(descriptor)
        message: tuple[str, Any] = self.connection.recv()
        return message

    def kill(self) -> None:
        """Stop it now, whatever it is doing (SIGKILL cannot be refused, so the join that
        reaps it is short)."""
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()
        if self.process.exitcode is not None:
            self.process.close()


class WorkerPool:
    """At most ``size`` workers, started when first needed, each running one call at a time;
    more calls wait for a free worker."""

    def __init__(
        self,
        size: int = DEFAULT_WORKERS,
        *,
        preload: Iterable[str] = (),
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._context = multiprocessing.get_context("spawn")
        self._preload = tuple(dict.fromkeys(preload))
        self._start_timeout_s = start_timeout_s
        self._free = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    async def run(self, function: ComputeFunction, argument: Any, timeout_s: float) -> str:
        """``function(argument)`` in a worker, as tool content; raises ToolTimedOut after
        ``timeout_s`` (the worker killed) or ToolFailed."""
        async with self._free:
            worker = self._idle.pop() if self._idle else await self._start()
            self._busy.add(worker)
            try:
                worker.connection.send((function, argument))
                async with asyncio.timeout(timeout_s):
                    status, value = await worker.receive()
            except TimeoutError:
                worker.kill()
                raise ToolTimedOut(f"timed out after {timeout_s:g} s") from None
            except (EOFError, OSError):
                worker.kill()
                raise ToolFailed("its worker process exited") from None
            except BaseException:  # cancelled mid-call: the worker's answer has no taker
                worker.kill()
                raise
            finally:
                self._busy.discard(worker)
            self._release(worker)
        if status == "error":
            raise ToolFailed(value)
        content: str = value
        return content

    async def close(self) -> None:
        """Kill every worker; calls still running fail, later ones are refused."""
        self._closed = True
        for worker in self._idle:
            worker.kill()
        self._idle.clear()
        for worker in self._busy:
            worker.process.kill()  # its caller sees the pipe close and cleans up

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            worker.kill()
        else:
            self._idle.append(worker)

    async def _start(self) -> _Worker:
        if self._closed:
            raise ToolFailed("the tool workers are closed")
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(theirs, self._preload), name="agenthost-tool-worker", daemon=True
        )
        process.start()
        theirs.close()  # only the worker holds its end, so its death closes the pipe
        worker = _Worker(process, ours)
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await worker.receive()
        except (TimeoutError, EOFError, OSError):
            worker.kill()
            raise ToolFailed("no worker process could start") from None
        except BaseException:
            worker.kill()
            raise
        return worker
