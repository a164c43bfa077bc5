"""The next step of a templated session, decided from the template and the recorded items alone.

The session's items (each closed by the user's response and its stored evaluation) are the
only state: the executor keeps none, so after a crash or on another node these functions,
given the same inputs, give the same answer. Nothing here touches a clock, a store or Ray;
the caller passes ``now``.

The executor's loop: ``completion`` (end? then ``summary``), else ``next_item`` (ask it unless
it is already pending), and on an answer ``evaluate`` (after the widget accepted it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import JsonValue, ValidationError

from domain.session import SessionConfig, SessionItem
from domain.value_object import ValueObject
from execution import widgets
from execution.templates.model import (
    CompletionCriteria,
    Evaluation,
    SessionTemplate,
    TemplateItem,
    answer_text,
)

CompletionReason = Literal["criteria_met", "max_items_reached", "time_limit", "item_timeout"]
_EXPIRY_REASONS = frozenset({"time_limit", "item_timeout"})
MAX_SUMMARY_ANSWER_CHARS = 200
WEAKEST_TOPICS = 3


class Completion(ValueObject):
    """Why the session ends and how it went; ``passed`` is None without a pass mark."""

    reason: CompletionReason
    passed: bool | None
    points: float  # earned on the answered items
    max_points: float  # of every planned item

    @property
    def expired(self) -> bool:
        """Ended by a clock: the executor expires the session instead of completing it."""
        return self.reason in _EXPIRY_REASONS


def apply_config(template: SessionTemplate, config: SessionConfig) -> SessionTemplate:
    """The template with the session's own limits and criteria laid over its defaults.

    ``max_items`` beyond the template's length means "all of them"; unknown criteria keys or
    values out of range raise a ValidationError.
    """
    overrides: dict[str, Any] = dict(config.completion_criteria)
    if config.max_items is not None:
        overrides["max_items"] = min(config.max_items, len(template.items))
    if config.time_limit_seconds is not None:
        overrides["time_limit_seconds"] = config.time_limit_seconds
    if config.item_time_limit_seconds is not None:
        overrides["item_time_limit_seconds"] = config.item_time_limit_seconds
    if not overrides:
        return template
    criteria = CompletionCriteria.model_validate(template.completion.to_dict() | overrides)
    return SessionTemplate.model_validate(template.to_dict() | {"completion": criteria.to_dict()})


def check_config(template: SessionTemplate | None, config: SessionConfig) -> None:
    """Refuse, before the session starts, a config it could not run on: ValueError naming each
    field. ``completion_criteria`` may hold only the template's ``completion`` fields, with
    values of their exact JSON type and range (no "0.5" for a number, no "yes" for a
    boolean), and laid over ``template`` they must still make a coherent template (a pass mark
    needs a graded item, ``max_items`` at most the items there are). A session without a
    template (LLM-driven) ignores criteria, but they must still be criteria.
    """
    criteria = dict(config.completion_criteria)
    base = template.completion.to_dict() if template is not None else {}
    try:
        CompletionCriteria.model_validate(base | criteria, strict=True)
    except ValidationError as error:
        raise ValueError(_config_problems(error)) from None
    if template is not None:
        try:
            apply_config(template, config)
        except ValidationError as error:
            raise ValueError(_config_problems(error)) from None


def _config_problems(error: ValidationError) -> str:
    """``completion_criteria.<key>: <why>`` for each problem (the template's own fields
    are named as criteria too: they are what a criterion overrides)."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"] if part != "completion"]
        field = ".".join(["completion_criteria", *loc[:1]])
        why = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            known = ", ".join(CompletionCriteria.model_fields)
            why = f"not a completion criterion (known: {known})"
        problems.append(f"{field}: {why}")
    return "; ".join(problems)


def next_item(template: SessionTemplate, items: Sequence[SessionItem]) -> TemplateItem | None:
    """The item the session is on: the one still open, else the next unasked; None when done.

    An open item is returned so a restarted executor or reconnecting client re-shows it; the
    caller requests a widget only when the session has no pending action.
    """
    open_item = _open_item(template, items)
    if open_item is not None:
        return open_item
    if _decided(template, items) is not None:
        return None
    asked = {item.item_id for item in items}
    return next((item for item in template.planned_items if item.id not in asked), None)


def evaluate(template: SessionTemplate, item_id: str, response: JsonValue) -> dict[str, Any]:
    """The evaluation to store with the answer: correct, points, max_points, feedback.

    Raises KeyError for an item the template lacks and WidgetError for a response the widget
    rejects: such a response must be refused, not recorded with a score.
    """
    item = template.item(item_id)
    reasons = widgets.validate_response(item.client_action(item.id), response)
    if reasons:
        raise widgets.WidgetError(f"invalid answer to {item_id}", reasons)
    return item.evaluate(response).to_dict()


def completion(
    template: SessionTemplate,
    items: Sequence[SessionItem],
    now: datetime,
    started_at: datetime,
) -> Completion | None:
    """Whether the session ends now, and why; None while it should go on.

    The criteria are checked before the clocks: work that is finished stays finished even if
    the check comes late. While an item is open only a clock can end the session.
    """
    open_item = _open_session_item(template, items)
    if open_item is None:
        decided = _decided(template, items)
        if decided is not None:
            return decided
    limits = template.completion
    reason: CompletionReason | None = None
    if (
        limits.time_limit_seconds is not None
        and (now - started_at).total_seconds() >= limits.time_limit_seconds
    ):
        reason = "time_limit"
    elif (
        open_item is not None
        and limits.item_time_limit_seconds is not None
        and (now - open_item.started_at).total_seconds() >= limits.item_time_limit_seconds
    ):
        reason = "item_timeout"
    if reason is None:
        return None
    points = sum(answer.evaluation.points for answer in _answered(template, items))
    return _completion(template, reason, points)


def summary(template: SessionTemplate, items: Sequence[SessionItem]) -> dict[str, Any]:
    """What the session showed about the user, as plain JSON for ``session.completed``.

    Kept in the agent's session history, it is the cross-session memory of a templated run:
    the next session (templated or LLM-driven) can see the score and the weakest topics.
    ``score`` is the fraction of the points (what ``domain.session.session_score`` reads for
    the agent's metrics), None when nothing is graded.
    """
    answered = _answered(template, items)
    points = sum(answer.evaluation.points for answer in answered)
    max_points = template.max_points
    graded = [answer.evaluation for answer in answered if answer.evaluation.correct is not None]
    topics = _topics(answered)
    return {
        "template_id": template.id,
        "template_version": template.version,
        "title": template.title,
        "items_planned": len(template.planned_items),
        "items_answered": len(answered),
        "correct_count": sum(1 for evaluation in graded if evaluation.correct),
        "incorrect_count": sum(1 for evaluation in graded if not evaluation.correct),
        "ungraded_count": len(answered) - len(graded),
        "score": round(points / max_points, 4) if max_points else None,
        "points": points,
        "max_points": max_points,
        "pass_mark": template.completion.pass_mark,
        "passed": _passed(template, points),
        "items": [
            {
                "item_id": answer.item.id,
                "prompt": answer.item.prompt,
                "answer": _short(_answer_shown(answer)),
                "correct": answer.evaluation.correct,
                "points": answer.evaluation.points,
                "max_points": answer.evaluation.max_points,
            }
            for answer in answered
        ],
        "topics": topics,
        "weakest_topics": [
            name
            for name, stats in sorted(topics.items(), key=lambda kv: (kv[1]["score"], kv[0]))
            if stats["score"] < 1
        ][:WEAKEST_TOPICS],
    }


# --------------------------------------------------------------------------- internals


def _known(template: SessionTemplate, item: SessionItem) -> bool:
    return any(candidate.id == item.item_id for candidate in template.items)


def _open_session_item(
    template: SessionTemplate, items: Sequence[SessionItem]
) -> SessionItem | None:
    """The asked but unanswered item of this template (items of other origin are ignored)."""
    return next(
        (item for item in items if item.completed_at is None and _known(template, item)), None
    )


def _open_item(template: SessionTemplate, items: Sequence[SessionItem]) -> TemplateItem | None:
    item = _open_session_item(template, items)
    return template.item(item.item_id) if item is not None else None


@dataclass(frozen=True)
class _Answer:
    item: TemplateItem
    response: JsonValue
    evaluation: Evaluation


def _answered(template: SessionTemplate, items: Sequence[SessionItem]) -> list[_Answer]:
    """Answered items of this template, in the order they were asked, with their evaluation."""
    answers = []
    for item in items:
        if item.completed_at is not None and _known(template, item):
            template_item = template.item(item.item_id)
            evaluation = _evaluation_of(template_item, item)
            answers.append(_Answer(template_item, item.user_response, evaluation))
    return answers


def _evaluation_of(template_item: TemplateItem, item: SessionItem) -> Evaluation:
    """The evaluation recorded with the answer; re-scored only if none (or a broken one) was."""
    if item.evaluation is not None:
        try:
            return Evaluation.model_validate(item.evaluation)
        except ValidationError:
            pass
    return template_item.evaluate(item.user_response)


def _decided(template: SessionTemplate, items: Sequence[SessionItem]) -> Completion | None:
    """The end the answers alone decide (no clock): all asked, or the outcome can't change."""
    answered = _answered(template, items)
    criteria = template.completion
    points = sum(answer.evaluation.points for answer in answered)
    answered_ids = {answer.item.id for answer in answered}
    remaining = sum(
        item.max_points for item in template.planned_items if item.id not in answered_ids
    )
    if criteria.pass_mark is not None:
        needed = criteria.pass_mark * template.max_points
        if criteria.stop_early_when_passed and _at_least(points, needed):
            return _completion(template, "criteria_met", points)
        if criteria.stop_early_when_failed and not _at_least(points + remaining, needed):
            return _completion(template, "criteria_met", points)
    if all(item.id in answered_ids for item in template.planned_items):
        reason: CompletionReason = (
            "max_items_reached" if criteria.max_items is not None else "criteria_met"
        )
        return _completion(template, reason, points)
    return None


def _completion(template: SessionTemplate, reason: CompletionReason, points: float) -> Completion:
    return Completion(
        reason=reason,
        passed=_passed(template, points),
        points=points,
        max_points=template.max_points,
    )


def _passed(template: SessionTemplate, points: float) -> bool | None:
    pass_mark = template.completion.pass_mark
    return None if pass_mark is None else _at_least(points, pass_mark * template.max_points)


def _at_least(value: float, threshold: float) -> bool:
    """``value >= threshold`` forgiving float dust (0.7 * 10 is 7.000000000000001)."""
    return value >= threshold or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-9)


def _topics(answered: list[_Answer]) -> dict[str, dict[str, Any]]:
    """Per tag of the graded answers: how many, how many right, and the fraction of points."""
    totals: dict[str, list[float]] = {}
    for answer in answered:
        evaluation = answer.evaluation
        if evaluation.correct is None:
            continue
        for tag in answer.item.tags:
            answered_count, correct_count, points, max_points = totals.get(tag, [0, 0, 0, 0])
            totals[tag] = [
                answered_count + 1,
                correct_count + (1 if evaluation.correct else 0),
                points + evaluation.points,
                max_points + evaluation.max_points,
            ]
    return {
        tag: {
            "answered": int(answered_count),
            "correct": int(correct_count),
            "score": round(points / max_points, 4) if max_points else 0.0,
        }
        for tag, (answered_count, correct_count, points, max_points) in sorted(totals.items())
    }


def _answer_shown(answer: _Answer) -> str | None:
    """The answer as the user saw it: a choice by its option text even if sent by index."""
    try:
        response: JsonValue = widgets.normalise_response(
            answer.item.client_action(answer.item.id), answer.response
        )
    except widgets.WidgetError:
        response = answer.response
    return answer_text(response)


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_SUMMARY_ANSWER_CHARS:
        return text
    return text[: MAX_SUMMARY_ANSWER_CHARS - 1] + "…"
