"""The LLM's context, built from the aggregate: nothing about a conversation lives elsewhere.

Cross-session memory is the summaries stored with past sessions in the agent's history; the
preferences the user set ride along, so a new session starts where the last ones left off.
"""

from __future__ import annotations

import json

from domain.execution_state import LlmMessage
from domain.session import Session
from domain.state import AgentState
from execution.agent_profiles import AgentProfile

SUMMARY_REQUEST = (
    "The session is over. For your future self, summarise it in at most three sentences: "
    "what was covered, how the user did, and what to do next time. Plain text only."
)


def system_prompt(state: AgentState, profile: AgentProfile, session: Session) -> str:
    parts = [session.system_prompt or profile.system_prompt]
    if profile.language:
        parts.append(f"Use this language with the user: {profile.language}.")
    settings = {k: v for k, v in state.preferences.items() if k not in AgentProfile.model_fields}
    if settings:
        parts.append(f"The user's preferences: {json.dumps(settings, sort_keys=True)}")
    memories = memory_lines(state, profile.memory_sessions)
    if memories:
        parts.append("Earlier sessions with this user, newest first:\n" + "\n".join(memories))
    return "\n\n".join(parts)


def memory_lines(state: AgentState, limit: int) -> list[str]:
    """One line per recent summarised session: when, what kind, and its summary."""
    summarised = [s for s in reversed(state.session_history) if s.summary][:limit]
    return [
        f"- {s.started_at:%Y-%m-%d} {s.session_type.value} ({s.status.value}): "
        f"{json.dumps(s.summary, sort_keys=True, ensure_ascii=False)}"
        for s in summarised
    ]


def llm_context(state: AgentState, profile: AgentProfile, session: Session) -> list[LlmMessage]:
    return [
        LlmMessage(role="system", content=system_prompt(state, profile, session)),
        *session.transcript,
    ]


def summary_request(context: list[LlmMessage]) -> list[LlmMessage]:
    return [*context, LlmMessage(role="user", content=SUMMARY_REQUEST)]


def plain_summary(session: Session) -> dict[str, object]:
    """The deterministic summary of an LLM session (used when no LLM can write one)."""
    assistant = [m for m in session.transcript if m.role == "assistant"]
    answered = [i for i in session.items if i.completed_at is not None]
    return {
        "turns": len(assistant),
        "widgets_answered": len(answered),
        "answers": [i.user_response for i in answered][-5:],
        "last_message": assistant[-1].content[:300] if assistant else "",
    }
