"""A session config is checked before its session starts: the template it names, its
completion criteria (known ones, of the right type and range, that the template can meet), and
the domain's own refusal of NUL in what it would store."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import InvalidCommand
from domain.session import SessionConfig
from execution.executor import ProactiveAgentExecutor
from execution.templates import check_config, get_template
from tests.unit.domain.builders import new_agent

ARITHMETIC = get_template("arithmetic-basics")
REFLECTION = get_template("daily-reflection")


class _NoBus:
    async def execute(self, command: Any) -> Any:
        raise AssertionError("checking a config sends nothing")

    async def agent_state(self, agent_id: str) -> Any:
        raise AssertionError("checking a config reads nothing")


@pytest.mark.parametrize(
    ("criteria", "named"),
    [
        ({"pass_mark": 5}, "completion_criteria.pass_mark"),
        ({"pass_mark": "0.5"}, "completion_criteria.pass_mark"),
        ({"pass_mark": True}, "completion_criteria.pass_mark"),
        ({"min_items": 2}, "completion_criteria.min_items"),
        ({"max_items": 0}, "completion_criteria.max_items"),
        ({"max_items": 9}, "completion_criteria"),
        ({"time_limit_seconds": -1}, "completion_criteria.time_limit_seconds"),
        ({"stop_early_when_failed": "yes"}, "completion_criteria.stop_early_when_failed"),
    ],
)
def test_criteria_a_template_session_could_not_run_on_are_refused_by_name(
    criteria: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")) as caught:
        check_config(ARITHMETIC, SessionConfig(completion_criteria=criteria))
    assert "errors.pydantic.dev" not in str(caught.value)


def test_criteria_are_checked_against_the_template_they_run_on() -> None:
    fine = SessionConfig(completion_criteria={"stop_early_when_passed": True})
    check_config(ARITHMETIC, fine)  # it has a pass mark
    with pytest.raises(ValueError, match="pass_mark"):
        check_config(REFLECTION, fine)  # it has none, nor a graded item
    with pytest.raises(ValueError, match="graded"):
        check_config(REFLECTION, SessionConfig(completion_criteria={"pass_mark": 0.5}))


def test_criteria_of_a_session_without_a_template_are_still_criteria() -> None:
    check_config(None, SessionConfig(completion_criteria={"pass_mark": 0.5, "max_items": 3}))
    with pytest.raises(ValueError, match=r"completion_criteria\.min_items"):
        check_config(None, SessionConfig(completion_criteria={"min_items": 2}))


def test_valid_configs_pass() -> None:
    check_config(ARITHMETIC, SessionConfig())
    check_config(
        ARITHMETIC,
        SessionConfig(
            max_items=99,  # beyond the template means all of them
            time_limit_seconds=60,
            completion_criteria={"pass_mark": 1, "stop_early_when_failed": True, "max_items": 8},
        ),
    )


@pytest.mark.parametrize("has_llm", [False, True])
def test_the_executor_refuses_a_bad_config_at_the_start(has_llm: bool) -> None:
    executor = ProactiveAgentExecutor(_NoBus(), llm=object() if has_llm else None)  # type: ignore[arg-type]
    state = new_agent().state
    bad = SessionConfig(completion_criteria={"pass_mark": 5})
    with pytest.raises(InvalidCommand, match=r"completion_criteria\.pass_mark"):
        executor.session_config(state, bad)
    with pytest.raises(InvalidCommand, match=r"completion_criteria\.pass_mark"):
        executor.session_config(state, bad.model_copy(update={"template_id": "arithmetic-basics"}))
    with pytest.raises(InvalidCommand, match="no-such"):
        executor.session_config(state, SessionConfig(template_id="no-such"))


def test_the_executor_checks_the_default_template_it_picks() -> None:
    executor = ProactiveAgentExecutor(_NoBus())
    state = new_agent().state  # a tutor: arithmetic-basics by default
    picked = executor.session_config(state, SessionConfig(max_items=3))
    assert picked.template_id == "arithmetic-basics"
    with pytest.raises(InvalidCommand, match="completion_criteria"):
        executor.session_config(state, SessionConfig(completion_criteria={"max_items": 99}))


@pytest.mark.parametrize(
    "fields",
    [
        {"template_id": "a\x00"},
        {"model_id": "m\x00"},
        {"completion_criteria": {"pass\x00mark": 1}},
        {"extra": {"nested": [{"deep": "x\x00"}]}},
        {"extra": {"k": "\ud800"}},
    ],
)
def test_the_domain_never_holds_a_nul_or_a_lone_surrogate_in_a_config(
    fields: dict[str, Any],
) -> None:
    """The last line of defence for scripts and the migration, which build configs directly."""
    with pytest.raises(ValidationError):
        SessionConfig.model_validate(fields)
