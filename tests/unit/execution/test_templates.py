"""Session templates: scoring rules, the template model, the loader, the runner, and the content.

The content checks do not trust the YAML: every declared answer is recomputed here (Fraction
arithmetic, the ipaddress module, evaluating the Python expressions the questions show).
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import textwrap
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue, TypeAdapter, ValidationError

from domain.agent import Agent
from domain.enums import AgentType
from domain.session import ClientResponse, SessionConfig, SessionItem
from execution.agent_profiles import agent_profile
from execution.templates import (
    SessionTemplate,
    TemplateError,
    TemplateItem,
    apply_config,
    completion,
    evaluate,
    get_template,
    list_templates,
    load_template_file,
    load_templates,
    next_item,
    summary,
)
from execution.templates.model import (
    ChoiceRule,
    Evaluation,
    ExactRule,
    Ipv4Rule,
    NoneRule,
    NumericRule,
    PythonAstRule,
    ScoringRule,
    parse_number,
    right_answer,
)
from execution.widgets import WidgetError, validate_response

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
RULE = TypeAdapter[Any](ScoringRule)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(**fields: Any) -> Any:
    return RULE.validate_python(fields)


def choice_item(item_id: str, answer: int | str = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "prompt": f"Question {item_id}?",
        "widget": {"tool": "present_choices", "arguments": {"options": ["a", "b", "c"]}},
        "scoring": {"type": "choice", "answer": answer},
        **extra,
    }


def text_item(item_id: str, scoring: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "prompt": f"Question {item_id}?",
        "widget": {"tool": "request_free_text"},
        "scoring": scoring,
        **extra,
    }


def make_template(items: list[dict[str, Any]], **fields: Any) -> SessionTemplate:
    return SessionTemplate.model_validate(
        {"id": "t", "title": "T", "agent_type": "tutor", "items": items, **fields}
    )


def quiz(**completion_fields: Any) -> SessionTemplate:
    """Four one-point choice items, answer index 1 ('b'), tagged two topics."""
    return make_template(
        [
            choice_item("q1", tags=["alpha"]),
            choice_item("q2", tags=["alpha", "beta"]),
            choice_item("q3", tags=["beta"]),
            choice_item("q4"),
        ],
        completion=completion_fields,
    )


def asked(template: SessionTemplate, item_id: str, sequence: int, second: float) -> SessionItem:
    item = template.item(item_id)
    return SessionItem(
        item_id=item_id,
        sequence=sequence,
        agent_prompt=item.prompt,
        client_action=item.client_action(f"call-{item_id}"),
        started_at=at(second),
    )


def answered(
    template: SessionTemplate,
    item_id: str,
    response: JsonValue,
    sequence: int = 1,
    second: float = 0,
    store_evaluation: bool = True,
) -> SessionItem:
    item = asked(template, item_id, sequence, second)
    return item.model_copy(
        update={
            "user_response": response,
            "evaluation": evaluate(template, item_id, response) if store_evaluation else None,
            "completed_at": at(second + 5),
        }
    )


def run(template: SessionTemplate, responses: list[JsonValue]) -> list[SessionItem]:
    """Answer the items in the runner's order: the recorded items a session would hold."""
    items: list[SessionItem] = []
    for sequence, response in enumerate(responses, start=1):
        item = next_item(template, items)
        assert item is not None
        items.append(answered(template, item.id, response, sequence, sequence * 10))
    return items


RIGHT: JsonValue = {"index": 1}
WRONG: JsonValue = {"index": 0}


# ---------------------------------------------------------------------------- choice


def test_choice_by_index_and_by_text() -> None:
    by_index, by_text = rule(type="choice", answer=1), rule(type="choice", answer="b")
    assert by_index.score({"selection": "b", "index": 1}).correct is True
    assert by_index.score({"index": 2}).correct is False
    assert by_text.score({"selection": "b", "index": 1}).correct is True
    assert by_text.score({"selection": "B"}).correct is False
    assert by_index.score({"index": 1}, max_points=3) == Evaluation(
        correct=True, points=3, max_points=3, feedback="Correct."
    )
    assert by_index.score({"index": 0}, max_points=3).points == 0


@pytest.mark.parametrize("response", [None, "b", 1, [1], {}, {"index": True}, {"index": "1"}])
def test_choice_without_a_usable_pick_is_wrong(response: JsonValue) -> None:
    evaluation = rule(type="choice", answer=1).score(response)
    assert evaluation.correct is False
    assert evaluation.feedback == "No option was chosen."


def test_choice_answer_must_be_an_option() -> None:
    with pytest.raises(ValidationError, match="choice answer 'd' is not one of the options"):
        make_template([choice_item("q1", answer="d")])
    with pytest.raises(ValidationError, match=r"choice answer 3 is not an option index 0\.\.2"):
        make_template([choice_item("q1", answer=3)])
    with pytest.raises(ValidationError, match="answer"):
        make_template([choice_item("q1", answer=True)])


# ---------------------------------------------------------------------------- exact


@pytest.mark.parametrize(
    ("given", "correct"),
    [
        ("Paris", True),
        ("  paris ", True),
        ("PARIS", True),
        ("\uff30\uff41\uff52\uff49\uff53", True),  # full-width "Paris": NFKC-normalised
        ("Paris, France", True),
        ("paris,   france", True),
        ("parisfrance", False),
        ("Pari", False),
        ("", False),
    ],
)
def test_exact_ignores_case_and_runs_of_blanks(given: str, correct: bool) -> None:
    exact = rule(type="exact", accepted=["Paris", "Paris, France"])
    assert exact.score({"text": given}).correct is correct


def test_exact_options() -> None:
    strict = rule(type="exact", accepted=["NaCl"], case_sensitive=True)
    assert strict.score({"text": " NaCl"}).correct is True
    assert strict.score({"text": "nacl"}).correct is False
    squeezed = rule(type="exact", accepted=["x = 1"], ignore_whitespace=True)
    assert squeezed.score({"text": "x=1"}).correct is True
    assert squeezed.score("x  =  1").correct is True  # a bare string is an answer too
    assert rule(type="exact", accepted=["a"]).score({"count": 1}).correct is False


def test_exact_needs_non_blank_answers() -> None:
    with pytest.raises(ValidationError, match="accepted answers must not be blank"):
        rule(type="exact", accepted=["ok", "  "])
    with pytest.raises(ValidationError, match="at least 1 item"):
        rule(type="exact", accepted=[])


# ---------------------------------------------------------------------------- numeric


@pytest.mark.parametrize(
    "given", ["42", "42.0", "4.2e1", "4.2E+1", " 42 ", "+42", "042", "420e-1", "84/2", 42, 42.0]
)
def test_numeric_accepts_every_spelling_of_the_value(given: JsonValue) -> None:
    numeric = rule(type="numeric", value=42)
    response = given if isinstance(given, int | float) else {"text": given}
    assert numeric.score(response).correct is True


@pytest.mark.parametrize(
    "given",
    ["41", "42.01", "forty-two", "42 hosts", "4,2", "", "nan", "inf", "-inf", "1/0", "0x2a"],
)
def test_numeric_rejects_other_values_and_non_numbers(given: str) -> None:
    assert rule(type="numeric", value=42).score({"text": given}).correct is False


def test_numeric_is_exact_on_decimals_and_honours_tolerance() -> None:
    assert rule(type="numeric", value=0.3).score({"text": "0.30"}).correct is True
    assert rule(type="numeric", value=0.1).score({"text": ".1"}).correct is True
    assert rule(type="numeric", value=0.75).score({"text": "3/4"}).correct is True
    pi = rule(type="numeric", value=3.14159, tolerance=0.01)
    assert pi.score({"text": "3.14"}).correct is True
    assert pi.score({"text": "3.15"}).correct is True
    assert pi.score({"text": "3.13"}).correct is False
    assert pi.score({"text": "22/7"}).correct is True


def test_numeric_feedback_and_hostile_input() -> None:
    numeric = rule(type="numeric", value=1)
    assert numeric.score({"text": "one"}).feedback == "That is not a number."
    assert parse_number("1e999999999") is None  # refused by the grammar, never computed
    assert parse_number("9" * 100_000) is None
    assert parse_number(True) is None
    assert parse_number(float("nan")) is None
    assert parse_number({"text": "1e300"}) == Fraction(10) ** 300


def test_numeric_rule_rejects_non_finite_or_negative_settings() -> None:
    with pytest.raises(ValidationError):
        rule(type="numeric", value=float("inf"))
    with pytest.raises(ValidationError):
        rule(type="numeric", value=1, tolerance=-0.1)


# ---------------------------------------------------------------------------- regex


def test_regex_fullmatch_with_flags() -> None:
    colour = rule(type="regex", pattern=r"colou?r", flags=["IGNORECASE"])
    assert colour.score({"text": "Color"}).correct is True
    assert colour.score({"text": " COLOUR "}).correct is True
    assert colour.score({"text": "colors"}).correct is False  # the whole answer must match
    assert rule(type="regex", pattern="colou?r").score({"text": "Color"}).correct is False
    assert colour.score({"index": 1}).correct is False


def test_invalid_regex_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"pattern '\(' is not a valid regex"):
        rule(type="regex", pattern="(")
    with pytest.raises(ValidationError):
        rule(type="regex", pattern="a", flags=["LOCALE"])


# ---------------------------------------------------------------------------- ipv4


@pytest.mark.parametrize(
    ("kind", "answer", "given", "correct"),
    [
        ("address", "192.168.10.64", "192.168.10.64", True),
        ("address", "192.168.10.64", " 192.168.10.64\n", True),
        ("address", "192.168.10.64", "192.168.10.63", False),
        ("address", "192.168.10.64", "192.168.010.064", False),  # leading zeros are ambiguous
        ("address", "192.168.10.64", "192.168.10.64/27", False),
        ("network", "172.20.40.0/21", "172.20.40.0/21", True),
        ("network", "172.20.40.0/21", "172.20.40.0/255.255.248.0", True),
        ("network", "172.20.40.0/21", "172.20.40.0/22", False),
        ("network", "172.20.40.0/21", "172.20.45.200/21", False),
        ("network", "172.20.40.0/21", "172.20.40.0", False),  # /32, a different network
        ("netmask", "255.255.240.0", "255.255.240.0", True),
        ("netmask", "255.255.240.0", "/20", True),
        ("netmask", "255.255.240.0", "20", True),
        ("netmask", "255.255.240.0", "255.255.0.0", False),
        ("netmask", "255.255.240.0", "0.0.15.255", False),  # a wildcard mask is not a netmask
        ("netmask", "255.255.240.0", "255.0.255.0", False),
        ("netmask", "255.255.240.0", "/33", False),
        ("netmask", "255.255.240.0", "²⁰", False),
    ],
)
def test_ipv4_compares_values(kind: str, answer: str, given: str, correct: bool) -> None:
    assert rule(type="ipv4", kind=kind, answer=answer).score({"text": given}).correct is correct


def test_ipv4_feedback_says_why() -> None:
    network = rule(type="ipv4", kind="network", answer="172.20.40.0/21")
    assert "has host bits set" in network.score({"text": "172.20.45.200/21"}).feedback
    address = rule(type="ipv4", answer="10.0.0.1")
    assert address.score({"text": "banana"}).feedback.startswith("Not a valid IPv4 address")
    assert address.score({"text": "1" * 100}).feedback == "No IPv4 answer was given."


@pytest.mark.parametrize(
    ("kind", "answer"),
    [("address", "10.0.0.256"), ("network", "10.0.0.1/8"), ("netmask", "255.0.255.0")],
)
def test_ipv4_rule_answer_must_be_valid(kind: str, answer: str) -> None:
    with pytest.raises(ValidationError, match=f"is not a valid {kind}"):
        rule(type="ipv4", kind=kind, answer=answer)


# ---------------------------------------------------------------------------- python_ast

ADD = rule(type="python_ast", functions=[{"name": "add", "args": 2, "returns_value": True}])
EVENS = rule(
    type="python_ast",
    functions=[{"name": "count_evens", "args": 1, "returns_value": True}],
    required=["for", "if"],
    forbidden=["comprehension"],
    forbidden_names=["sum"],
)


def code(source: str) -> dict[str, JsonValue]:
    return {"code": textwrap.dedent(source)}


def test_python_ast_accepts_the_right_shape() -> None:
    assert ADD.score(code("def add(a, b):\n    return a + b\n")).correct is True
    assert ADD.score(code("async def add(x, /, y):\n    return x + y\n")).correct is True
    loop = """
        def count_evens(numbers):
            count = 0
            for n in numbers:
                if n % 2 == 0:
                    count += 1
            return count
    """
    assert EVENS.score(code(loop)).correct is True


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("def plus(a, b):\n    return a + b\n", "define a function add"),
        ("def add(a):\n    return a\n", "add should take 2 parameter(s), not 1"),
        ("def add(a, b, *rest):\n    return a\n", None),
        ("def add(a, b):\n    print(a + b)\n", "add should return a value"),
        ("def add(a, b):\n    return\n", "add should return a value"),
        ("def add(a, b):\n    def inner():\n        return 1\n    inner()\n", "return a value"),
        ("class K:\n    def add(self, a, b):\n        return a + b\n", "define a function add"),
        ("def add(a, b)\n    return a + b\n", "The code does not parse: expected ':' (line 1)"),
        ("x = 1\0", "The code does not parse"),
        ("x = " + "(" * 5000 + "1" + ")" * 5000, "The code does not parse"),
        ("x = " + "-" * 19_990 + "1", "The code does not parse: it is nested too deeply."),
        ("#" * 20_001, "The code is over 20000 characters."),
    ],
)
def test_python_ast_reports_what_is_missing(source: str, problem: str | None) -> None:
    evaluation = ADD.score({"code": source})
    if problem is None:  # *rest is not a positional parameter: two it is
        assert evaluation.correct is True
        return
    assert evaluation.correct is False
    assert problem in evaluation.feedback


def test_python_ast_required_and_forbidden_constructs_and_names() -> None:
    comprehension = """
        def count_evens(numbers):
            return sum(1 for n in numbers if n % 2 == 0)
    """
    evaluation = EVENS.score(code(comprehension))
    assert evaluation.correct is False
    assert evaluation.feedback == (
        "Not yet: use a for; use an if; do not use a comprehension; do not use 'sum'."
    )
    needs_import = rule(type="python_ast", required=["import"], required_names=["math"])
    assert needs_import.score(code("import math.pi\n")).correct is True
    assert needs_import.score(code("x = 1\n")).feedback == "Not yet: use an import; use 'math'."


@pytest.mark.parametrize("response", [None, 3, {"code": 3}, {"text": "def add(a, b): ..."}, {}])
def test_python_ast_needs_code(response: JsonValue) -> None:
    assert ADD.score(response).feedback == "No code was given."
    assert ADD.score("def add(a, b):\n    return a + b\n").correct is True  # bare code is fine


def test_python_ast_rule_must_check_something() -> None:
    with pytest.raises(ValidationError, match="must check at least one thing"):
        rule(type="python_ast")
    with pytest.raises(ValidationError):
        rule(type="python_ast", required=["goto"])


# ---------------------------------------------------------------------------- none


def test_none_rule_records_without_grading() -> None:
    assert rule(type="none").score({"text": "anything"}, max_points=5) == Evaluation(
        correct=None, points=0, max_points=0, feedback="Answer recorded."
    )


def test_unknown_rule_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        rule(type="fuzzy")


# ---------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("items", "completion_fields", "message"),
    [
        ([choice_item("q1"), choice_item("q1")], {}, "item id 'q1' is used twice"),
        ([choice_item("q1")], {"max_items": 2}, "max_items 2 exceeds the 1 items"),
        ([text_item("q1", {"type": "none"})], {"pass_mark": 0.5}, "needs at least one graded"),
        ([choice_item("q1")], {"stop_early_when_failed": True}, "need a pass_mark"),
        ([choice_item("q1")], {"pass_mark": 1.5}, "less than or equal to 1"),
        ([choice_item("Q 1")], {}, "should match pattern"),
        ([text_item("q1", {"type": "choice", "answer": 0})], {}, "cannot score request_free_text"),
        ([choice_item("q1", scoring={"type": "numeric", "value": 1})], {}, "a numeric rule"),
        (
            [{**choice_item("q1"), "widget": {"tool": "present_choices", "arguments": {}}}],
            {},
            "options: Field required",
        ),
        (
            [{**choice_item("q1"), "widget": {"tool": "draw", "arguments": {}}}],
            {},
            "unknown tool 'draw'",
        ),
        (
            [
                {
                    **choice_item("q1"),
                    "widget": {
                        "tool": "present_choices",
                        "arguments": {"prompt": "again?", "options": ["a", "b"]},
                    },
                }
            ],
            {},
            "must not repeat the prompt",
        ),
        ([choice_item("q1", points=0)], {}, "greater than 0"),
        ([], {}, "at least 1 item"),
    ],
)
def test_template_validation(
    items: list[dict[str, Any]], completion_fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        make_template(items, completion=completion_fields)


def test_item_builds_its_widget_and_evaluates_with_explanation() -> None:
    template = make_template([choice_item("q1", explanation="b is second.", points=2)])
    item = template.item("q1")
    action = item.client_action("call-9")
    assert action.tool_call_id == "call-9"
    assert action.widget_type == "multiple_choice"
    assert action.props == {"prompt": "Question q1?", "options": ["a", "b", "c"]}
    assert item.evaluate({"selection": "b"}) == Evaluation(
        correct=True, points=2, max_points=2, feedback="Correct. b is second."
    )
    assert item.evaluate({"index": 2}).feedback == "Not quite. b is second."
    invalid = item.evaluate({"index": 7})
    assert (invalid.correct, invalid.points, invalid.max_points) == (False, 0, 2)
    assert invalid.feedback == "The answer could not be checked: index 7 is out of range 0..2"
    with pytest.raises(KeyError, match="template 't' has no item 'q9'"):
        template.item("q9")


# ---------------------------------------------------------------------------- loader


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD = """\
    id: extra-quiz
    title: Extra
    agent_type: evaluator
    items:
      - id: one
        prompt: One?
        widget: {tool: request_free_text}
        scoring: {type: numeric, value: 1}
"""


def test_packaged_templates_are_listed_and_found() -> None:
    ids = [template.id for template in list_templates()]
    assert ids == [
        "arithmetic-basics",
        "coaching-check-in",
        "daily-reflection",
        "introductions",
        "ipv4-subnetting",
        "python-basics",
        "research-brief",
        "weekly-plan",
        "wellbeing-check",
    ]
    assert get_template("ipv4-subnetting").agent_type is AgentType.EVALUATOR
    with pytest.raises(TemplateError, match="no template 'nope'; known: arithmetic-basics, "):
        get_template("nope")


@pytest.mark.parametrize("agent_type", list(AgentType))
def test_every_agent_type_has_a_default_template_of_its_own_type(agent_type: AgentType) -> None:
    # Given no LLM configured, a session that names no template runs its type's default
    default = agent_profile(agent_type).default_template
    # Then every type has one, packaged, and written for that type
    assert default is not None
    assert get_template(default).agent_type is agent_type


def test_extra_directory_adds_templates(tmp_path: Path) -> None:
    write(tmp_path, "extra-quiz.yaml", GOOD)
    write(tmp_path, "notes.txt", "not a template")
    templates = load_templates(tmp_path)
    assert "extra-quiz" in templates
    assert "arithmetic-basics" in templates
    assert get_template("extra-quiz", tmp_path).title == "Extra"
    listed = [t.id for t in list_templates(tmp_path)]
    assert "extra-quiz" in listed
    assert listed == sorted(listed)


def test_extra_directory_cannot_redefine_a_template(tmp_path: Path) -> None:
    write(tmp_path, "python-basics.yaml", GOOD.replace("extra-quiz", "python-basics"))
    with pytest.raises(TemplateError, match=r"python-basics.yaml: template id 'python-basics' is"):
        load_templates(tmp_path)


def test_extra_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a directory of templates"):
        load_templates(tmp_path / "missing")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("extra-quiz", "other"), "id 'other' must match the file name 'extra-quiz'"),
        ("id: [unclosed\n", "invalid YAML at line 2, column 1"),
        ("id: a\nid: b\n", "invalid YAML at line 2, column 1: duplicate key 'id'"),
        ("- just\n- a list\n", "a template must be a mapping of fields"),
        ("", "a template must be a mapping of fields"),
        (GOOD + "    colour: red\n", "  colour: unknown field"),
        (GOOD.replace("    title: Extra\n", ""), "  title: Field required"),
        (GOOD.replace("evaluator", "oracle"), "  agent_type: Input should be 'tutor', "),
        (
            GOOD.replace("value: 1}", "value: 1, tolerance: -1}"),
            "  items[0] (id 'one').scoring.tolerance: Input should be greater than or equal to 0",
        ),
        (
            GOOD.replace("{type: numeric, value: 1}", "{type: regex, pattern: '[a-'}"),
            "  items[0] (id 'one').scoring: pattern '[a-' is not a valid regex",
        ),
        (
            GOOD.replace("{type: numeric, value: 1}", "{type: numeric}"),
            "  items[0] (id 'one').scoring.value: Field required",
        ),
        (
            GOOD.replace("{tool: request_free_text}", "{tool: request_free_text, arguments: "),
            "invalid YAML",
        ),
        (
            GOOD.replace("{tool: request_free_text}", "{tool: request_free_text, arguments: 3}"),
            "  items[0] (id 'one').widget.arguments: Input should be a valid dictionary",
        ),
        (
            GOOD.replace("prompt: One?", "prompt: 7"),
            "  items[0] (id 'one').prompt: Input should be a valid string",
        ),
    ],
)
def test_loader_errors_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "extra-quiz.yaml", text)
    with pytest.raises(TemplateError) as raised:
        load_template_file(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_union_branches_do_not_leak_into_messages(tmp_path: Path) -> None:
    text = GOOD.replace(
        "widget: {tool: request_free_text}",
        "widget: {tool: present_choices, arguments: {options: [x, y]}}",
    ).replace("{type: numeric, value: 1}", "{type: choice, answer: 1.5}")
    path = write(tmp_path, "extra-quiz.yaml", text)
    with pytest.raises(TemplateError) as raised:
        load_template_file(path)
    assert str(raised.value).splitlines()[1:] == [
        "  items[0] (id 'one').scoring.answer: Input should be a valid integer",
        "  items[0] (id 'one').scoring.answer: Input should be a valid string",
    ]


# ---------------------------------------------------------------------------- runner


def test_next_item_goes_in_order_and_reshows_the_open_item() -> None:
    template = quiz()
    assert next_item(template, []) == template.item("q1")
    items = [answered(template, "q1", RIGHT)]
    assert next_item(template, items) == template.item("q2")
    items.append(asked(template, "q2", 2, 10))
    assert next_item(template, items) == template.item("q2")  # still waiting on it
    items[-1] = answered(template, "q2", WRONG, 2, 10)
    assert next_item(template, items) == template.item("q3")


def test_next_item_skips_items_already_asked_and_ignores_foreign_ones() -> None:
    template = quiz()
    foreign = SessionItem(item_id="llm-call-1", sequence=1, started_at=T0)  # open, not ours
    items = [foreign, answered(template, "q2", RIGHT, 2)]
    assert next_item(template, items) == template.item("q1")


def test_next_item_is_none_when_every_item_is_answered() -> None:
    template = quiz()
    assert next_item(template, run(template, [RIGHT] * 4)) is None


def test_completion_when_every_item_is_answered() -> None:
    template = quiz(pass_mark=0.75)
    items = run(template, [RIGHT, RIGHT, WRONG])
    assert completion(template, items, now=at(60), started_at=T0) is None
    items = run(template, [RIGHT, RIGHT, WRONG, RIGHT])
    done = completion(template, items, now=at(60), started_at=T0)
    assert done is not None
    assert (done.reason, done.passed, done.points, done.max_points) == ("criteria_met", True, 3, 4)
    assert not done.expired
    failed = completion(template, run(template, [RIGHT, WRONG, WRONG, RIGHT]), at(60), T0)
    assert failed is not None
    assert (failed.reason, failed.passed) == ("criteria_met", False)


def test_completion_by_max_items() -> None:
    template = quiz(max_items=2)
    items = run(template, [RIGHT, WRONG])
    assert next_item(template, items) is None
    done = completion(template, items, now=at(60), started_at=T0)
    assert done is not None
    assert (done.reason, done.passed, done.points, done.max_points) == (
        "max_items_reached",
        None,
        1,
        2,
    )


def test_completion_early_when_the_pass_mark_is_reached() -> None:
    template = quiz(pass_mark=0.5, stop_early_when_passed=True)
    items = run(template, [RIGHT])
    assert completion(template, items, at(60), T0) is None
    items = run(template, [RIGHT, RIGHT])
    done = completion(template, items, at(60), T0)
    assert done is not None
    assert (done.reason, done.passed, done.points) == ("criteria_met", True, 2)
    assert next_item(template, items) is None


def test_completion_early_when_passing_is_impossible() -> None:
    template = quiz(pass_mark=0.75, stop_early_when_failed=True)
    items = run(template, [WRONG])
    assert completion(template, items, at(60), T0) is None
    items = run(template, [WRONG, WRONG])
    done = completion(template, items, at(60), T0)
    assert done is not None
    assert (done.reason, done.passed, done.points) == ("criteria_met", False, 0)
    assert next_item(template, items) is None


def test_pass_mark_survives_float_dust() -> None:
    template = make_template(
        [choice_item(f"q{n}") for n in range(10)], completion={"pass_mark": 0.7}
    )
    done = completion(template, run(template, [RIGHT] * 7 + [WRONG] * 3), at(60), T0)
    assert done is not None
    assert done.passed is True  # 7 >= 0.7 * 10 although 0.7 * 10 == 7.000000000000001


def test_completion_by_time_limit_even_with_an_open_item() -> None:
    template = quiz(time_limit_seconds=600, pass_mark=0.5)
    items = [*run(template, [RIGHT, RIGHT]), asked(template, "q3", 3, 500)]
    assert completion(template, items, now=at(599), started_at=T0) is None
    done = completion(template, items, now=at(600), started_at=T0)
    assert done is not None
    assert (done.reason, done.passed, done.points, done.max_points) == ("time_limit", True, 2, 4)
    assert done.expired


def test_completion_by_item_timeout() -> None:
    template = quiz(item_time_limit_seconds=120)
    items = [answered(template, "q1", RIGHT), asked(template, "q2", 2, 100)]
    assert completion(template, items, now=at(219), started_at=T0) is None
    done = completion(template, items, now=at(220), started_at=T0)
    assert done is not None
    assert (done.reason, done.expired, done.passed) == ("item_timeout", True, None)


def test_finished_work_beats_a_late_clock() -> None:
    template = quiz(time_limit_seconds=60)
    done = completion(template, run(template, [RIGHT] * 4), now=at(3600), started_at=T0)
    assert done is not None
    assert done.reason == "criteria_met"


def test_evaluate_scores_valid_answers_and_refuses_invalid_ones() -> None:
    template = quiz()
    assert evaluate(template, "q1", {"selection": "b"}) == {
        "correct": True,
        "points": 1.0,
        "max_points": 1.0,
        "feedback": "Correct.",
    }
    with pytest.raises(WidgetError, match="invalid answer to q1: index 9 is out of range"):
        evaluate(template, "q1", {"index": 9})
    with pytest.raises(KeyError):
        evaluate(template, "q9", {"index": 1})


def test_summary_is_complete_and_deterministic() -> None:
    template = quiz(pass_mark=0.5)
    items = run(template, [RIGHT, WRONG, WRONG, {"selection": "b"}])
    first = summary(template, items)
    assert first == summary(template, list(items))
    assert json.dumps(first, sort_keys=True) == json.dumps(summary(template, items), sort_keys=True)
    assert first == {
        "template_id": "t",
        "template_version": 1,
        "title": "T",
        "items_planned": 4,
        "items_answered": 4,
        "correct_count": 2,
        "incorrect_count": 2,
        "ungraded_count": 0,
        "score": 0.5,
        "points": 2.0,
        "max_points": 4.0,
        "pass_mark": 0.5,
        "passed": True,
        "items": [
            {
                "item_id": f"q{n}",
                "prompt": f"Question q{n}?",
                "answer": answer,
                "correct": correct,
                "points": float(correct),
                "max_points": 1.0,
            }
            for n, answer, correct in [
                (1, "b", True),
                (2, "a", False),
                (3, "a", False),
                (4, "b", True),
            ]
        ],
        "topics": {
            "alpha": {"answered": 2, "correct": 1, "score": 0.5},
            "beta": {"answered": 2, "correct": 0, "score": 0.0},
        },
        "weakest_topics": ["beta", "alpha"],
    }


def test_summary_uses_the_stored_evaluation_and_rescores_only_without_one() -> None:
    template = quiz()
    stored = answered(template, "q1", WRONG).model_copy(
        update={"evaluation": {"correct": True, "points": 1, "max_points": 1, "feedback": ""}}
    )
    assert summary(template, [stored])["correct_count"] == 1  # the record is the truth
    bare = answered(template, "q1", RIGHT, store_evaluation=False)
    broken = answered(template, "q2", RIGHT, 2).model_copy(update={"evaluation": {"x": 1}})
    result = summary(template, [bare, broken])
    assert (result["correct_count"], result["points"], result["score"]) == (2, 2.0, 0.5)


def test_summary_truncates_long_answers_and_handles_ungraded_sessions() -> None:
    reflection = get_template("daily-reflection")
    long_text = "x" * 500
    items = run(reflection, [{"text": long_text}, {"index": 1}, {"text": "a"}, {"text": "b"}])
    result = summary(reflection, items)
    assert result["items"][0]["answer"] == "x" * 199 + "…"
    assert result["items"][1]["answer"] == "Steady"
    assert (result["passed"], result["score"], result["ungraded_count"]) == (None, None, 4)
    assert result["topics"] == {}
    assert result["weakest_topics"] == []
    done = completion(reflection, items, at(100), T0)
    assert done is not None
    assert (done.reason, done.passed) == ("criteria_met", None)


def test_apply_config_lays_session_limits_over_the_template() -> None:
    template = quiz(pass_mark=0.5)
    assert apply_config(template, SessionConfig()) is template
    tuned = apply_config(
        template,
        SessionConfig(
            max_items=99,
            time_limit_seconds=60,
            item_time_limit_seconds=30,
            completion_criteria={"pass_mark": 0.9, "stop_early_when_failed": True},
        ),
    )
    assert tuned.completion.model_dump() == {
        "max_items": 4,
        "pass_mark": 0.9,
        "time_limit_seconds": 60,
        "item_time_limit_seconds": 30,
        "stop_early_when_passed": False,
        "stop_early_when_failed": True,
    }
    assert apply_config(template, SessionConfig(max_items=2)).planned_items == template.items[:2]
    with pytest.raises(ValidationError, match="unknown_key"):
        apply_config(template, SessionConfig(completion_criteria={"unknown_key": 1}))


def test_a_templated_session_through_the_agent_aggregate() -> None:
    """The runner's decisions, applied as domain commands, end in a completed session."""
    template = get_template("arithmetic-basics")
    agent = Agent.create(agent_id="a-1", owner_user_id="u-1", agent_type=AgentType.TUTOR, now=T0)
    agent.start_session(
        session_id="s-1",
        conversation_id="c-1",
        now=at(1),
        config=SessionConfig(template_id=template.id),
    )
    answers: dict[str, JsonValue] = {
        "times-7x8": {"selection": "56"},
        "divide-144-by-12": {"text": "12"},
        "order-2-plus-3x4": {"selection": "20"},  # the classic mistake
        "order-brackets": {"text": "20"},
        "fraction-half-plus-quarter": {"text": "3/4"},
        "fraction-of-number": {"index": 2},
        "percent-of-80": {"text": "20.0"},
        "percent-increase": {"text": "5.5e1"},
    }
    clock = 1
    while True:
        session = agent.get_active_session()
        assert session is not None
        clock += 10
        done = completion(template, session.items, at(clock), session.started_at)
        if done is not None:
            agent.complete_session(
                now=at(clock), reason=done.reason, summary=summary(template, session.items)
            )
            break
        item = next_item(template, session.items)
        assert item is not None
        action = item.client_action(f"call-{clock}")
        agent.request_client_action(action, now=at(clock), item_id=item.id)
        response = answers[item.id]
        assert validate_response(action, response) == []
        agent.receive_client_response(
            ClientResponse(tool_call_id=action.tool_call_id, response=response),
            now=at(clock + 5),
            evaluation=evaluate(template, item.id, response),
        )
    ended = agent.state.session_history[-1]
    assert ended.end_reason == "criteria_met"
    assert ended.summary is not None
    assert (ended.summary["correct_count"], ended.summary["passed"]) == (7, True)
    assert ended.summary["weakest_topics"] == ["order-of-operations"]
    assert agent.state.average_score == 0.875  # summary["score"] feeds the agent's metrics


# ---------------------------------------------------------------------------- content


def shipped_items() -> list[tuple[SessionTemplate, TemplateItem]]:
    return [(template, item) for template in list_templates() for item in template.items]


def declared_answer(item: TemplateItem) -> dict[str, JsonValue]:
    """The response a user who knows the declared answer would send."""
    scoring = item.scoring
    if isinstance(scoring, ChoiceRule):
        key = "index" if isinstance(scoring.answer, int) else "selection"
        return {key: scoring.answer}
    if isinstance(scoring, NumericRule):
        return {"text": format(scoring.value, "g")}
    if isinstance(scoring, Ipv4Rule):
        return {"text": scoring.answer}
    if isinstance(scoring, ExactRule):
        return {"text": scoring.accepted[0]}
    raise AssertionError(f"no declared answer for {scoring.type}")


def correct_option(item: TemplateItem) -> str:
    assert isinstance(item.scoring, ChoiceRule)
    options: list[str] = item.client_action("c").props["options"]
    answer = item.scoring.answer
    return options[answer] if isinstance(answer, int) else answer


@pytest.mark.parametrize(
    ("template", "item"),
    [pair for pair in shipped_items() if pair[1].graded],
    ids=lambda value: getattr(value, "id", ""),
)
def test_every_declared_answer_scores_as_correct(
    template: SessionTemplate, item: TemplateItem
) -> None:
    assert item.explanation.strip(), "a graded item must explain its answer"
    if isinstance(item.scoring, PythonAstRule):
        return  # checked against model answers below
    response = declared_answer(item)
    assert validate_response(item.client_action("c"), response) == []
    assert evaluate(template, item.id, response)["correct"] is True


def test_shipped_templates_cover_the_agents_and_ungraded_items_are_reflective() -> None:
    by_id = {template.id: template for template in list_templates()}
    assert by_id["arithmetic-basics"].agent_type is AgentType.TUTOR
    assert by_id["python-basics"].agent_type is AgentType.TUTOR
    assert by_id["ipv4-subnetting"].agent_type is AgentType.EVALUATOR
    assert by_id["daily-reflection"].agent_type is AgentType.THOUGHT
    assert all(isinstance(item.scoring, NoneRule) for item in by_id["daily-reflection"].items)
    for template in list_templates():
        assert template.title
        assert template.description
        assert template.intro


ARITHMETIC_TRUTH = {
    "times-7x8": Fraction(7 * 8),
    "divide-144-by-12": Fraction(144, 12),
    "order-2-plus-3x4": Fraction(2 + 3 * 4),
    "order-brackets": Fraction((2 + 3) * 4),
    "fraction-half-plus-quarter": Fraction(1, 2) + Fraction(1, 4),
    "fraction-of-number": Fraction(3, 5) * 40,
    "percent-of-80": Fraction(25, 100) * 80,
    "percent-increase": 50 * (1 + Fraction(10, 100)),
}


def test_arithmetic_answers_are_true() -> None:
    template = get_template("arithmetic-basics")
    assert {item.id for item in template.items} == set(ARITHMETIC_TRUTH)
    assert ARITHMETIC_TRUTH["fraction-half-plus-quarter"] == Fraction("0.75")
    for item in template.items:
        truth = ARITHMETIC_TRUTH[item.id]
        if isinstance(item.scoring, ChoiceRule):
            assert Fraction(correct_option(item)) == truth, item.id
            options = item.client_action("c").props["options"]
            assert [Fraction(option) for option in options].count(truth) == 1, item.id
        else:
            assert isinstance(item.scoring, NumericRule)
            assert Fraction(repr(item.scoring.value)) == truth, item.id


def yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


IPV4_TRUTH: dict[str, str] = {
    "hosts-in-slash-26": str(ipaddress.ip_network("0.0.0.0/26").num_addresses - 2),
    "network-of-192-168-10-77-27": str(
        ipaddress.ip_interface("192.168.10.77/27").network.network_address
    ),
    "broadcast-of-10-0-5-130-25": str(
        ipaddress.ip_interface("10.0.5.130/25").network.broadcast_address
    ),
    "mask-of-slash-20": str(ipaddress.ip_network("0.0.0.0/20").netmask),
    "private-172-16-slash-12": yes_no(ipaddress.ip_network("172.16.0.0/12").is_private),
    "slash-24s-in-slash-20": str(
        len(list(ipaddress.ip_network("10.0.0.0/20").subnets(new_prefix=24)))
    ),
    "prefix-for-500-hosts": "/"
    + str(
        max(p for p in range(33) if ipaddress.ip_network(f"0.0.0.0/{p}").num_addresses - 2 >= 500)
    ),
    "same-subnet-10-1-1-100-and-130": yes_no(
        ipaddress.ip_interface("10.1.1.100/26").network
        == ipaddress.ip_interface("10.1.1.130/26").network
    ),
    "network-of-172-20-45-200-mask-248": str(
        ipaddress.ip_interface("172.20.45.200/255.255.248.0").network
    ),
    "last-host-of-192-168-1-0-28": str(list(ipaddress.ip_network("192.168.1.0/28").hosts())[-1]),
}


def test_ipv4_answers_are_true() -> None:
    assert IPV4_TRUTH["hosts-in-slash-26"] == "62"
    assert IPV4_TRUTH["network-of-192-168-10-77-27"] == "192.168.10.64"
    assert IPV4_TRUTH["broadcast-of-10-0-5-130-25"] == "10.0.5.255"
    assert IPV4_TRUTH["mask-of-slash-20"] == "255.255.240.0"
    assert IPV4_TRUTH["slash-24s-in-slash-20"] == "16"
    template = get_template("ipv4-subnetting")
    assert {item.id for item in template.items} == set(IPV4_TRUTH)
    for item in template.items:
        truth = IPV4_TRUTH[item.id]
        scoring = item.scoring
        if isinstance(scoring, ChoiceRule):
            assert correct_option(item) == truth, item.id
        elif isinstance(scoring, NumericRule):
            assert Fraction(repr(scoring.value)) == Fraction(truth), item.id
        else:
            assert isinstance(scoring, Ipv4Rule)
            assert scoring.answer == truth, item.id
        assert evaluate(template, item.id, declared_answer(item))["correct"] is True


PYTHON_EXPRESSIONS = {
    "type-of-true-division": "type(3 / 2)",
    "floor-division": "7 // 2",
    "len-of-string": 'len("hello world")',
    "string-slice": '"python"[1:4]',
    "negative-index": "[10, 20, 30, 40][-1]",
    "reversed-slice": "[1, 2, 3][::-1]",
    "string-repetition": '"ab" * 3',
    "truthiness-of-empty-list": "bool([])",
    "len-of-dict": 'len({"a": 1, "b": 2})',
}


def test_python_choice_answers_are_what_python_shows() -> None:
    template = get_template("python-basics")
    choice_items = [item for item in template.items if isinstance(item.scoring, ChoiceRule)]
    assert {item.id for item in choice_items} == set(PYTHON_EXPRESSIONS)
    for item in choice_items:
        expression = PYTHON_EXPRESSIONS[item.id]
        assert f"`{expression}`" in item.prompt, item.id
        shown = repr(eval(expression))  # our own literal expressions, never user input
        assert correct_option(item) == shown, item.id
        assert item.client_action("c").props["options"].count(shown) == 1, item.id


MODEL_BEHAVIOUR = {
    "write-add": lambda namespace: namespace["add"](2, 3) == 5 and namespace["add"](-1, 1) == 0,
    "write-count-evens": lambda namespace: (
        namespace["count_evens"]([1, 2, 3, 4, 6]) == 3 and namespace["count_evens"]([]) == 0
    ),
}


def model_answer(item: TemplateItem) -> str:
    """The indented code block of the item's explanation."""
    block = item.explanation.split("A model answer:", 1)[1]
    return textwrap.dedent(block).strip() + "\n"


def test_python_code_items_accept_their_model_answers_and_refuse_the_starter_code() -> None:
    template = get_template("python-basics")
    code_items = [item for item in template.items if isinstance(item.scoring, PythonAstRule)]
    assert {item.id for item in code_items} == set(MODEL_BEHAVIOUR)
    for item in code_items:
        source = model_answer(item)
        ast.parse(source)
        namespace: dict[str, Any] = {}
        exec(source, namespace)  # the template's own model answer, to prove it right
        assert MODEL_BEHAVIOUR[item.id](namespace), item.id
        assert evaluate(template, item.id, {"code": source})["correct"] is True, item.id
        starter = item.client_action("c").props["initial_code"]
        assert evaluate(template, item.id, {"code": starter})["correct"] is False, item.id


# ---------------------------------------------------------------------------- property

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["56", "3/4", "1e999", "10.0.5.255", "/20", "def add(a, b):\n  return 1"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["selection", "index", "text", "code", "other"]) | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
ITEMS = shipped_items()


@settings(max_examples=300, deadline=None)
@given(pair=st.sampled_from(ITEMS), response=JSON)
def test_scoring_never_raises_on_arbitrary_json(
    pair: tuple[SessionTemplate, TemplateItem], response: JsonValue
) -> None:
    template, item = pair
    raw = item.scoring.score(response, item.max_points)
    assert 0 <= raw.points <= raw.max_points
    evaluation = item.evaluate(response)
    assert 0 <= evaluation.points <= evaluation.max_points == item.max_points
    reasons = validate_response(item.client_action("c"), response)
    if reasons:
        with pytest.raises(WidgetError):
            evaluate(template, item.id, response)
        assert evaluation.points == 0
    else:
        assert evaluate(template, item.id, response) == evaluation.to_dict()


def test_right_answer_is_accepted_by_every_rule_that_has_one() -> None:
    checked = 0
    for template in list_templates():
        for item in template.items:
            if item.scoring.type in {"regex", "python_ast", "none"}:
                with pytest.raises(ValueError, match="no single right answer"):
                    right_answer(item)
                continue
            assert item.evaluate(right_answer(item)).correct is True, item.id
            checked += 1
    assert checked >= 20
