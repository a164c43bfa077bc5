"""A use case: one request the application answers, typed by what it answers.

Each use case is a small frozen message that names its agent, carries its caller, and knows how
to run itself against the application (``run``). That is the whole bus: the host actor and the
caller-side runtime only carry ``UseCase[R]`` one way and ``R`` back, so a new use case is one
class in ``application/use_cases/`` plus its route, with no transport code to mirror.
Plain domain commands (``domain.commands``) are use cases of their own: the application runs
them through the agent's activation as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field

from domain.access import Caller
from domain.commands import Command, CommandResult

if TYPE_CHECKING:
    from application.service import AgentApplication

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class UseCase(BaseModel, Generic[R]):
    model_config = ConfigDict(frozen=True, extra="forbid")

    may_create: ClassVar[bool] = False
    """Whether it may bring its agent into being (as ``Command.may_create``): where one actor
    hosts one agent, only such a request may start the actor of an agent not yet stored."""

    agent_id: str = Field(min_length=1)
    caller: Caller | None = None
    """Who asks; None for the system itself (the sweeper, scripts, tests)."""
    request_fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,64}$")
    """The digest of the request it answers (``Command.request_fingerprint``), handed on to
    the command it sends under its command id."""

    async def run(self, app: AgentApplication) -> R:
        raise NotImplementedError


class UseCases(Protocol):
    """Anything that answers use cases: the application in-process, the Ray runtime remotely."""

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def close(self) -> None:
        """Release what answering needed (connections, worker processes)."""
