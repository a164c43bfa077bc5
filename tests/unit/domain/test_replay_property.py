"""Property: any sequence of commands, replayed from its events, rebuilds the same state.

A hypothesis state machine drives the aggregate with valid and invalid commands alike; refusals
must emit nothing and change nothing, and after every step the log replays to the live state.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.agent import Agent
from domain.enums import AgentType, AssignmentRole, SessionStatus
from domain.errors import DomainError
from domain.events import AGENT_EVENTS, DomainEvent, SessionCompleted, SessionStarted
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.session import ClientAction, ClientResponse

from .builders import at

PENDING = "<pending>"  # stands for "the call the session waits on", resolved at run time
CALL_IDS = st.sampled_from(["call-1", "call-2", PENDING, PENDING, PENDING])
JSON_VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.booleans())


def _action(call_id: str) -> ClientAction:
    return ClientAction(
        tool_call_id=call_id, tool_name="request_free_text", widget_type="free_text"
    )


class AgentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.agent = Agent.create(
            agent_id="a-1",
            owner_user_id="user-1",
            agent_type=AgentType.TUTOR,
            now=at(0),
            max_history_size=3,  # small, so the bound is exercised
        )
        self.log: list[DomainEvent] = list(self.agent.pending_events)
        self.agent.mark_committed()

    def _do(self, command: Callable[[Agent], object]) -> None:
        self.step += 1
        before, version = self.agent.state, self.agent.version
        try:
            command(self.agent)
        except DomainError:
            assert self.agent.pending_events == ()
            assert self.agent.state == before
            return
        emitted = self.agent.pending_events
        self.log.extend(emitted)
        self.agent.mark_committed()
        assert self.agent.version == version + len(emitted)

    def _call(self, call_id: str) -> str:
        session = self.agent.state.active_session
        if call_id == PENDING:
            pending = session.pending_action if session is not None else None
            return pending.tool_call_id if pending is not None else f"call-{self.step}"
        return call_id

    @rule()
    def start(self) -> None:
        self._do(
            lambda a: a.start_session(
                session_id=f"s-{self.step}", conversation_id=f"c-{self.step}", now=at(self.step)
            )
        )

    @rule(text=st.text(max_size=8))
    def record(self, text: str) -> None:
        message = LlmMessage(role="assistant", content=text)
        self._do(lambda a: a.record_messages([message], now=at(self.step)))

    @rule()
    def request(self) -> None:
        call = f"call-{self.step}"
        self._do(lambda a: a.request_client_action(_action(call), now=at(self.step)))

    @rule(matching=st.booleans())
    def suspend(self, matching: bool) -> None:
        session = self.agent.state.active_session
        pending = session.pending_action if session is not None else None
        action_call = pending.tool_call_id if pending is not None else f"call-{self.step}"
        state_call = action_call if matching else "call-x"
        execution = ExecutionState(
            iteration=self.step,
            pending_tool_call=PendingToolCall(call_id=state_call, tool_name="request_free_text"),
        )
        self._do(lambda a: a.suspend_execution(execution, _action(action_call), now=at(self.step)))

    @rule(call=CALL_IDS, value=JSON_VALUES, resume=st.booleans())
    def answer(self, call: str, value: object, resume: bool) -> None:
        response = ClientResponse(tool_call_id=self._call(call), response=value)  # type: ignore[arg-type]
        if resume:
            self._do(lambda a: a.resume_execution(response, now=at(self.step)))
        else:
            self._do(lambda a: a.receive_client_response(response, now=at(self.step)))

    @rule(score=st.none() | st.floats(min_value=0, max_value=1) | st.integers(-1, 3))
    def complete(self, score: float | None) -> None:
        self._do(
            lambda a: a.complete_session(
                now=at(self.step),
                summary={"step": self.step, "score": score} if score is not None else None,
            )
        )

    @rule(expired=st.booleans())
    def terminate(self, expired: bool) -> None:
        end = Agent.expire_session if expired else Agent.terminate_session
        self._do(lambda a: end(a, "reason", now=at(self.step)))

    @rule(key=st.sampled_from(["a", "b"]), value=JSON_VALUES)
    def preferences(self, key: str, value: object) -> None:
        self._do(lambda a: a.update_preferences({key: value}, now=at(self.step)))

    @rule(
        user=st.sampled_from(["user-1", "user-2", "user-3"]),
        role=st.sampled_from(["shared", "mentee", "observer", "primary", "bogus"]),
    )
    def assign(self, user: str, role: str) -> None:
        self._do(lambda a: a.assign_user(user, role, assigned_by="user-1", now=at(self.step)))

    @rule(
        user=st.sampled_from(["user-1", "user-2", "user-3"]),
        by=st.sampled_from(["user-1", "user-2", " "]),
    )
    def unassign(self, user: str, by: str) -> None:
        self._do(lambda a: a.unassign_user(user, unassigned_by=by, now=at(self.step)))

    @precondition(lambda self: self.step > 25)
    @rule(reason=st.sampled_from(["", "reset"]))
    def archive(self, reason: str) -> None:
        self._do(lambda a: a.archive(reason, now=at(self.step)))

    @invariant()
    def replay_equals_state(self) -> None:
        replayed = Agent.replay(self.log)
        assert replayed.state == self.agent.state
        assert replayed.version == len(self.log) == self.agent.version
        decoded = [AGENT_EVENTS.decode(*AGENT_EVENTS.encode(e)) for e in self.log]
        assert Agent.replay(decoded).state == self.agent.state

    @invariant()
    def domain_invariants_hold(self) -> None:
        state = self.agent.state
        log = self.log
        assert len(state.session_history) <= state.max_history_size
        assert state.total_sessions == sum(isinstance(e, SessionStarted) for e in log)
        assert state.successful_completions == sum(isinstance(e, SessionCompleted) for e in log)
        assert all(s.status.is_final for s in state.session_history)
        session = state.active_session
        if session is None:
            assert state.execution_state is None
        else:
            assert (session.pending_action is None) == (session.status is SessionStatus.ACTIVE)
        execution = state.execution_state
        if execution is not None and execution.pending_tool_call is not None:
            assert session is not None
            assert session.pending_action is not None
            assert execution.pending_tool_call.call_id == session.pending_action.tool_call_id
        users = [a.user_id for a in state.assignments]
        assert len(users) == len(set(users))
        assert state.role_of(state.owner_user_id) is AssignmentRole.PRIMARY


AgentMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
test_replay_equals_state = AgentMachine.TestCase
