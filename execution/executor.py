"""ProactiveAgentExecutor: drives a session one durable step at a time, keeping nothing.

Every step is a command on the agent's aggregate, with an id derived from the session and the
step (``step_command_id``). So the executor can be run by any process, restarted anywhere,
even run twice at once: a step that was already stored is recognised by its command id and
not applied again, and the next step is always read off the stored session
(``execution.llm_steps`` for LLM sessions, ``execution.templates`` for templated ones).

A provider failure (``LlmUnavailable``) stores nothing: calling ``advance`` again retries the
same step. A refused client-tool call (bad arguments from the model) becomes a tool error
message, so the model can correct itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import JsonValue

from domain.access import Caller
from domain.answer_check import CheckedAnswer
from domain.commands import (
    Command,
    CommandResult,
    CompleteSession,
    RecordMessages,
    SubmitResponse,
    SuspendExecution,
    TerminateSession,
)
from domain.errors import DomainError, InvalidCommand, InvalidResponse, SessionStuck
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall, ToolCall
from domain.session import ClientAction, ClientResponse, Session, SessionConfig
from domain.state import AgentState
from execution import widgets
from execution.agent_profiles import profile_of
from execution.llm.port import LlmError, LlmProvider
from execution.llm_context import llm_context, plain_summary, summary_request
from execution.llm_steps import (
    AskClient,
    CallLlm,
    RecordAnswer,
    RunServerTool,
    TurnEnded,
    WaitForClient,
    answer_message,
    assistant_turns,
    next_llm_step,
    tool_message,
    with_unique_call_ids,
)
from execution.server_tools import ServerToolRegistry, ToolOutcome
from execution.templates import runner
from execution.templates.loader import TemplateError, get_template
from execution.templates.model import SessionTemplate

log = logging.getLogger(__name__)

STEP_NAMESPACE = uuid.UUID("6f1d3c1e-3b7a-4a52-9a0e-5d2f0c7b9e41")
MAX_STEPS_PER_ADVANCE = 200


class CommandBus(Protocol):
    """Where the executor's commands go: the application of the host it runs in."""

    async def execute(self, command: Command) -> CommandResult: ...

    async def agent_state(self, agent_id: str) -> AgentState | None: ...


@dataclass(frozen=True)
class EphemeralEvent:
    """Not stored: token deltas and tool progress, for live viewers (the SSE layer)."""

    agent_id: str
    session_id: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


EphemeralSink = Callable[[EphemeralEvent], Awaitable[None]]


class Outcome(StrEnum):
    """Why ``advance`` stopped."""

    WAITING_FOR_USER = "waiting_for_user"
    COMPLETED = "completed"
    NO_ACTIVE_SESSION = "no_active_session"
    EXPIRED = "expired"
    """A time limit of the session's template ended it."""
    NO_DRIVER = "no_driver"
    """Neither a template nor an LLM can drive this session."""
    STUCK = "stuck"
    """Its next step is refused on a state that does not move (``SessionStuck``)."""


def step_command_id(session_id: str, step: str) -> uuid.UUID:
    """The same step of the same session always has the same command id."""
    return uuid.uuid5(STEP_NAMESPACE, f"{session_id}/{step}")


async def _discard(_: EphemeralEvent) -> None:
    return None


class ProactiveAgentExecutor:
    def __init__(
        self,
        bus: CommandBus,
        *,
        llm: LlmProvider | None = None,
        tools: ServerToolRegistry | None = None,
        publish: EphemeralSink = _discard,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._llm = llm
        self._tools = tools or ServerToolRegistry()
        self._publish = publish

    def session_config(self, state: AgentState, requested: SessionConfig) -> SessionConfig:
        """The config a new session starts with: with no LLM configured, a session that names
        no template runs its agent type's default template (decided once, at the start, so
        the session keeps its driver even if the LLM settings change while it runs).

        A config its session could not run on (an unknown template, criteria of the wrong
        kind, type or range) is refused here, naming the field, before anything is stored:
        found at a later step it would fail every drive of the session.
        """
        config = requested
        if requested.template_id is None and self._llm is None:
            profile = profile_of(state)
            if profile.default_template is None:
                raise InvalidCommand(
                    f"no LLM is configured and {state.agent_type.value} agents have no default "
                    "template: name a template_id"
                )
            config = requested.model_copy(update={"template_id": profile.default_template})
        template = None
        if config.template_id is not None:
            try:
                template = get_template(config.template_id)
            except TemplateError as error:
                raise InvalidCommand(f"config.template_id: {error}") from None
        try:
            runner.check_config(template, config)
        except ValueError as error:
            raise InvalidCommand(f"invalid session config: {error}") from None
        return config

    async def advance(self, agent_id: str) -> Outcome:
        """Take steps until the session waits on the user, ends, or cannot be driven.

        A refused step is tried again only if the agent moved meanwhile (another process or
        the user changed it, so the next step is decided afresh). Refused on a state that did
        not move, it would be refused forever: that fails at once with ``SessionStuck``,
        having stored nothing.
        """
        for _ in range(MAX_STEPS_PER_ADVANCE):
            state = await self._bus.agent_state(agent_id)
            session = state.active_session if state is not None else None
            if state is None or session is None:
                return Outcome.NO_ACTIVE_SESSION
            try:
                outcome = await self._step(state, session)
            except DomainError as error:
                if await self._bus.agent_state(agent_id) == state:
                    log.warning("agent %s: step refused on an unchanged state: %s", agent_id, error)
                    raise SessionStuck(
                        f"agent {agent_id}: the session's next step is refused ({error.code})"
                    ) from error
                log.info("step on agent %s refused (%s); re-reading", agent_id, error)
                continue
            if outcome is not None:
                return outcome
        raise SessionStuck(
            f"agent {agent_id}: no resting point after {MAX_STEPS_PER_ADVANCE} steps"
        )

    async def respond(
        self,
        agent_id: str,
        response: ClientResponse,
        *,
        command_id: uuid.UUID | None = None,
        caller: Caller | None = None,
        request_fingerprint: str | None = None,
        session_id: str | None = None,
    ) -> CommandResult:
        """Record the user's answer to the pending widget, checked and normalised inside the
        command against the widget it finds pending (``advance`` goes on).

        Refused with InvalidResponse (every reason, nothing recorded) or the domain's refusal
        (no session, not that session, no widget pending, another tool call id), decided
        after a retry is recognised: a retried answer that ended its session is answered as
        the first time. ``request_fingerprint`` goes with the command, so its id sent again
        for another answer is refused, not a retry. ``session_id``: the session the caller
        answers in (None: whichever is active).
        """
        command = SubmitResponse(
            agent_id=agent_id,
            caller=caller,
            session_id=session_id,
            response=response,
            check=self._check_answer,
            request_fingerprint=request_fingerprint,
            **({"command_id": command_id} if command_id is not None else {}),
        )
        return await self._bus.execute(command)

    def _check_answer(
        self, session: Session, action: ClientAction, answer: JsonValue
    ) -> CheckedAnswer:
        reasons = widgets.validate_response(action, answer)
        if reasons:
            raise InvalidResponse(reasons)
        evaluation = None
        if session.config.template_id is not None:  # an LLM session's model judges its own
            template = session_template(session)
            evaluation = runner.evaluate(template, action.tool_call_id, answer)
        return CheckedAnswer(widgets.normalise_response(action, answer), evaluation)

    # ------------------------------------------------------------------ steps

    async def _step(self, state: AgentState, session: Session) -> Outcome | None:
        if session.config.template_id is not None:
            return await self._template_step(state, session)
        if self._llm is None:
            return Outcome.NO_DRIVER
        return await self._llm_step(state, session, self._llm)

    async def _template_step(self, state: AgentState, session: Session) -> Outcome:
        template = session_template(session)
        sid = session.session_id
        done = runner.completion(template, session.items, self._clock(), session.started_at)
        if done is not None and done.expired:
            await self._bus.execute(
                TerminateSession(
                    command_id=step_command_id(sid, "expire"),
                    agent_id=state.id,
                    session_id=sid,
                    reason=done.reason,
                    expired=True,
                )
            )
            return Outcome.EXPIRED
        if session.pending_action is not None:
            return Outcome.WAITING_FOR_USER
        item = runner.next_item(template, session.items)
        if done is not None or item is None:
            await self._bus.execute(
                CompleteSession(
                    command_id=step_command_id(sid, "complete"),
                    agent_id=state.id,
                    session_id=sid,
                    reason=done.reason if done is not None else "max_items_reached",
                    summary=runner.summary(template, session.items),
                )
            )
            return Outcome.COMPLETED
        action = item.client_action(item.id)
        progress = ExecutionState(
            iteration=len(session.items),
            pending_tool_call=PendingToolCall(
                call_id=action.tool_call_id, tool_name=action.tool_name, arguments=action.props
            ),
        )
        await self._suspend(state, session, action, item.id, f"ask/{item.id}", progress)
        return Outcome.WAITING_FOR_USER

    async def _llm_step(
        self, state: AgentState, session: Session, llm: LlmProvider
    ) -> Outcome | None:
        step = next_llm_step(session, widgets.is_client_tool)
        sid = session.session_id
        position = len(session.transcript)
        match step:
            case WaitForClient():
                return Outcome.WAITING_FOR_USER
            case TurnEnded():
                await self._complete_llm_session(state, session, llm, "agent_finished")
                return Outcome.COMPLETED
            case CallLlm(iteration=iteration):
                profile = profile_of(state)
                if iteration >= profile.max_iterations:
                    await self._complete_llm_session(state, session, llm, "max_iterations")
                    return Outcome.COMPLETED
                turn = await llm.complete(
                    llm_context(state, profile, session),
                    [*widgets.client_tool_specs(), *self._tools.specs(profile.server_tools)],
                    on_delta=lambda text: self._publish(
                        EphemeralEvent(state.id, sid, "content_chunk", {"delta": text})
                    ),
                )
                await self._record(
                    state.id, sid, f"{position}/assistant", with_unique_call_ids(turn.message)
                )
            case RunServerTool(call=call):
                outcome = await self._run_server_tool(state, sid, call)
                await self._record(
                    state.id, sid, f"{position}/tool/{call.id}", tool_message(call, outcome.content)
                )
            case AskClient(call=call, item_id=item_id):
                if await self._ask(state, session, call, item_id):
                    return Outcome.WAITING_FOR_USER
            case RecordAnswer(call=call, item=item):
                await self._record(
                    state.id, sid, f"{position}/answer/{call.id}", answer_message(call, item)
                )
        return None

    async def _run_server_tool(self, state: AgentState, sid: str, call: ToolCall) -> ToolOutcome:
        """Run the call if the agent's profile offers that tool: the model may name any tool.
        One it is not offered and one not installed get the same tool error (so it learns
        nothing of what is installed), and nothing runs."""
        if call.name not in profile_of(state).server_tools or call.name not in self._tools:
            outcome = ToolOutcome(content=f"tool {call.name!r} is not available", is_error=True)
        else:
            await self._publish(
                EphemeralEvent(state.id, sid, "tool_executing", {"tool_name": call.name})
            )
            outcome = await self._tools.call(call.name, call.arguments)
        await self._publish(
            EphemeralEvent(
                state.id, sid, "tool_result", {"tool_name": call.name, **outcome.model_dump()}
            )
        )
        return outcome

    async def _ask(self, state: AgentState, session: Session, call: ToolCall, item_id: str) -> bool:
        """Show the widget and suspend (True), or hand bad arguments back as a tool error."""
        sid = session.session_id
        try:
            action = widgets.client_action(call.id, call.name, call.arguments)
        except widgets.WidgetError as error:
            message = tool_message(call, f"invalid widget arguments: {'; '.join(error.reasons)}")
            await self._record(
                state.id, sid, f"{len(session.transcript)}/refused/{call.id}", message
            )
            return False
        progress = ExecutionState(
            conversation_snapshot=session.transcript,
            iteration=assistant_turns(session.transcript),
            tool_calls_made=sum(len(m.tool_calls) for m in session.transcript),
            pending_tool_call=PendingToolCall(
                call_id=call.id, tool_name=call.name, arguments=call.arguments
            ),
        )
        step = f"{len(session.transcript)}/suspend/{call.id}"
        await self._suspend(state, session, action, item_id, step, progress)
        return True

    async def _suspend(
        self,
        state: AgentState,
        session: Session,
        action: ClientAction,
        item_id: str,
        step: str,
        progress: ExecutionState,
    ) -> None:
        """Show ``action`` and store, with it, all a resume needs: ``progress`` (the pending
        call, the loop's conversation and counters) stamped with the session's times."""
        execution = progress.model_copy(
            update={
                "started_at_ms": session.started_at.timestamp() * 1000,
                "suspended_at_ms": self._clock().timestamp() * 1000,
            }
        )
        await self._bus.execute(
            SuspendExecution(
                command_id=step_command_id(session.session_id, step),
                agent_id=state.id,
                session_id=session.session_id,
                execution_state=execution,
                action=action,
                item_id=item_id,
            )
        )

    async def _complete_llm_session(
        self, state: AgentState, session: Session, llm: LlmProvider, reason: str
    ) -> None:
        profile = profile_of(state)
        summary: dict[str, Any] = plain_summary(session)
        try:
            written = await llm.complete(summary_request(llm_context(state, profile, session)), [])
            summary["text"] = written.message.content.strip()
        except LlmError as error:
            log.warning("no LLM summary for session %s: %s", session.session_id, error)
        await self._bus.execute(
            CompleteSession(
                command_id=step_command_id(session.session_id, "complete"),
                agent_id=state.id,
                session_id=session.session_id,
                reason=reason,
                summary=summary,
            )
        )

    async def _record(self, agent_id: str, session_id: str, step: str, message: LlmMessage) -> None:
        await self._bus.execute(
            RecordMessages(
                command_id=step_command_id(session_id, step),
                agent_id=agent_id,
                session_id=session_id,
                messages=(message,),
            )
        )


def session_template(session: Session) -> SessionTemplate:
    """The session's template with the session's own limits laid over it."""
    if session.config.template_id is None:
        raise ValueError(f"session {session.session_id} runs no template")
    return runner.apply_config(get_template(session.config.template_id), session.config)
