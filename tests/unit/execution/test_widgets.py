"""The widget contracts: arguments a tool call may carry, answers a browser may send back."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import JsonValue

from domain.session import ClientAction
from execution.widgets import (
    CLIENT_TOOLS,
    WidgetError,
    client_action,
    client_tool_schemas,
    is_client_tool,
    normalise_response,
    validate_arguments,
    validate_response,
)

CHOICES = {"prompt": "7 x 8?", "options": ["54", "56", "63"]}


def choices() -> ClientAction:
    return client_action("call-1", "present_choices", CHOICES)


def free_text(**arguments: Any) -> ClientAction:
    return client_action("call-2", "request_free_text", {"prompt": "Why?", **arguments})


def code_editor() -> ClientAction:
    return client_action("call-3", "present_code_editor", {"prompt": "Write add(a, b)."})


def reasons_of(tool: str, arguments: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(WidgetError) as raised:
        validate_arguments(tool, arguments)
    return raised.value.reasons


# ------------------------------------------------------------------------------ schemas


def test_schemas_are_openai_function_tools_with_valid_json_schema() -> None:
    schemas = client_tool_schemas()

    assert [schema["function"]["name"] for schema in schemas] == list(CLIENT_TOOLS)
    for schema in schemas:
        assert schema["type"] == "function"
        function = schema["function"]
        assert function["description"]
        parameters = function["parameters"]
        Draft202012Validator.check_schema(parameters)
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert "prompt" in parameters["required"]
        assert all(prop.get("description") for prop in parameters["properties"].values())
        assert "title" not in parameters


def test_schemas_carry_the_argument_constraints() -> None:
    by_name = {schema["function"]["name"]: schema["function"] for schema in client_tool_schemas()}

    options = by_name["present_choices"]["parameters"]["properties"]["options"]
    assert (options["minItems"], options["maxItems"], options["uniqueItems"]) == (2, 6, True)
    assert by_name["present_choices"]["parameters"]["required"] == ["prompt", "options"]
    free_text_props = by_name["request_free_text"]["parameters"]["properties"]
    assert free_text_props["min_length"] == {
        "description": free_text_props["min_length"]["description"],
        "minimum": 0,
        "type": "integer",
    }


def test_schemas_accept_what_the_models_accept_and_reject_what_they_reject() -> None:
    validators = {
        schema["function"]["name"]: Draft202012Validator(schema["function"]["parameters"])
        for schema in client_tool_schemas()
    }
    assert validators["present_choices"].is_valid(CHOICES)
    assert not validators["present_choices"].is_valid({"prompt": "x", "options": ["only"]})
    assert not validators["request_free_text"].is_valid({"prompt": "x", "bogus": 1})
    assert validators["present_code_editor"].is_valid({"prompt": "x", "language": "sql"})


def test_is_client_tool() -> None:
    assert is_client_tool("present_choices")
    assert is_client_tool("request_free_text")
    assert is_client_tool("present_code_editor")
    assert not is_client_tool("calculator")
    assert not is_client_tool("")


# ------------------------------------------------------------------------------ arguments


def test_client_action_names_the_widget_and_fills_defaults() -> None:
    assert choices() == ClientAction(
        tool_call_id="call-1",
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": "7 x 8?", "options": ["54", "56", "63"]},
    )
    assert free_text().widget_type == "free_text"
    assert free_text().props == {"prompt": "Why?", "multiline": False}
    assert code_editor().widget_type == "code_editor"
    assert code_editor().props == {
        "prompt": "Write add(a, b).",
        "language": "python",
        "initial_code": "",
    }


def test_full_arguments_pass_through() -> None:
    action = free_text(placeholder="because...", min_length=2, max_length=50, multiline=True)
    assert action.props == {
        "prompt": "Why?",
        "placeholder": "because...",
        "min_length": 2,
        "max_length": 50,
        "multiline": True,
    }
    with_context = client_action("c", "present_choices", {**CHOICES, "context": "Times tables"})
    assert with_context.props["context"] == "Times tables"


def test_unknown_tool_is_refused() -> None:
    with pytest.raises(WidgetError, match="'calculator' is not one of present_choices"):
        client_action("c", "calculator", {"expression": "1+1"})


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"options": ["a", "b"]}, "prompt: Field required"),
        ({"prompt": "", "options": ["a", "b"]}, "prompt: String should have at least 1 character"),
        ({"prompt": 3, "options": ["a", "b"]}, "prompt: Input should be a valid string"),
        ({"prompt": "q"}, "options: Field required"),
        ({"prompt": "q", "options": ["a"]}, "options: List should have at least 2 items"),
        ({"prompt": "q", "options": list("abcdefg")}, "options: List should have at most 6"),
        ({"prompt": "q", "options": ["a", 2]}, "options.1: Input should be a valid string"),
        ({"prompt": "q", "options": ["a", "a"]}, "options must be distinct"),
        ({"prompt": "q", "options": ["a", " "]}, "options must not be blank"),
        ({"prompt": "q", "options": ["a", "b"], "context": 1}, "context: Input should be a valid"),
        ({"prompt": "q", "options": ["a", "b"], "colour": "red"}, "colour: unknown field"),
    ],
)
def test_present_choices_argument_errors(arguments: dict[str, Any], reason: str) -> None:
    assert any(found.startswith(reason) for found in reasons_of("present_choices", arguments))


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({}, "prompt: Field required"),
        ({"prompt": "q", "placeholder": 1}, "placeholder: Input should be a valid string"),
        ({"prompt": "q", "min_length": -1}, "min_length: Input should be greater than or equal"),
        ({"prompt": "q", "min_length": "2"}, "min_length: Input should be a valid integer"),
        ({"prompt": "q", "max_length": 0}, "max_length: Input should be greater than or equal"),
        ({"prompt": "q", "min_length": 5, "max_length": 4}, "min_length 5 is greater than"),
        ({"prompt": "q", "multiline": "sometimes"}, "multiline: Input should be a valid boolean"),
    ],
)
def test_request_free_text_argument_errors(arguments: dict[str, Any], reason: str) -> None:
    assert any(found.startswith(reason) for found in reasons_of("request_free_text", arguments))


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"language": "python"}, "prompt: Field required"),
        ({"prompt": "q", "language": ""}, "language: String should have at least 1 character"),
        ({"prompt": "q", "initial_code": None}, "initial_code: Input should be a valid string"),
        ({"prompt": "q", "theme": "dark"}, "theme: unknown field"),
    ],
)
def test_present_code_editor_argument_errors(arguments: dict[str, Any], reason: str) -> None:
    assert any(found.startswith(reason) for found in reasons_of("present_code_editor", arguments))


def test_every_argument_problem_is_reported_at_once() -> None:
    reasons = reasons_of("present_choices", {"prompt": "", "options": ["a"], "x": 1})
    assert len(reasons) == 3


# ------------------------------------------------------------------------------ responses


@pytest.mark.parametrize(
    ("response", "normalised"),
    [
        ({"index": 1}, {"selection": "56", "index": 1}),
        ({"selection": "56"}, {"selection": "56", "index": 1}),
        ({"selection": "63", "index": 2}, {"selection": "63", "index": 2}),
        ({"index": 0}, {"selection": "54", "index": 0}),
    ],
)
def test_multiple_choice_valid_responses_carry_both_fields(
    response: JsonValue, normalised: dict[str, JsonValue]
) -> None:
    assert validate_response(choices(), response) == []
    assert normalise_response(choices(), response) == normalised


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({}, "give a selection, an index, or both"),
        ({"selection": None, "index": None}, "give a selection, an index, or both"),
        ({"index": 3}, "index 3 is out of range 0..2"),
        ({"index": -1}, "index -1 is out of range 0..2"),
        ({"selection": "57"}, "selection '57' is not one of the options"),
        ({"selection": "56", "index": 0}, "selection '56' does not match option 0 ('54')"),
        ({"index": "1"}, "index: Input should be a valid integer"),
        ({"index": True}, "index: Input should be a valid integer"),
        ({"index": 1.0}, "index: Input should be a valid integer"),
        ({"selection": 56}, "selection: Input should be a valid string"),
        ({"index": 1, "confidence": 0.9}, "confidence: unknown field"),
        ("56", "a multiple_choice response must be a JSON object with selection, index"),
        (1, "a multiple_choice response must be a JSON object"),
        (None, "a multiple_choice response must be a JSON object"),
        ([1], "a multiple_choice response must be a JSON object"),
    ],
)
def test_multiple_choice_invalid_responses(response: JsonValue, reason: str) -> None:
    reasons = validate_response(choices(), response)
    assert any(found.startswith(reason) for found in reasons), reasons
    with pytest.raises(WidgetError):
        normalise_response(choices(), response)


def test_free_text_valid_responses() -> None:
    assert validate_response(free_text(), {"text": ""}) == []
    bounded = free_text(min_length=2, max_length=5)
    assert validate_response(bounded, {"text": "ab"}) == []
    assert validate_response(bounded, {"text": "abcde"}) == []
    assert normalise_response(bounded, {"text": " ab "}) == {"text": " ab "}


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"text": "a"}, "text is shorter than 2 characters"),
        ({"text": "  a   "}, "text is shorter than 2 characters"),  # blanks do not count
        ({"text": "abcdef"}, "text is longer than 5 characters"),
        ({}, "text: Field required"),
        ({"text": 12}, "text: Input should be a valid string"),
        ({"text": "abc", "lang": "en"}, "lang: unknown field"),
        ("abc", "a free_text response must be a JSON object with text"),
    ],
)
def test_free_text_invalid_responses(response: JsonValue, reason: str) -> None:
    reasons = validate_response(free_text(min_length=2, max_length=5), response)
    assert any(found.startswith(reason) for found in reasons), reasons


def test_code_editor_responses() -> None:
    assert validate_response(code_editor(), {"code": "def add(a, b):\n    return a + b\n"}) == []
    assert validate_response(code_editor(), {"code": ""}) == []
    assert validate_response(code_editor(), {"code": None}) == [
        "code: Input should be a valid string"
    ]
    assert validate_response(code_editor(), {"text": "x"}) == [
        "code: Field required",
        "text: unknown field",
    ]
    assert validate_response(code_editor(), "x = 1") == [
        "a code_editor response must be a JSON object with code"
    ]


def test_an_action_of_an_unknown_tool_or_with_broken_props_cannot_be_answered() -> None:
    unknown = ClientAction(tool_call_id="c", tool_name="draw", widget_type="canvas")
    assert validate_response(unknown, {"x": 1}) == ["unknown client tool 'draw'"]
    broken = ClientAction(
        tool_call_id="c",
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": "q", "options": ["one"]},
    )
    assert validate_response(broken, {"index": 0}) == [
        "the action's props are invalid: options: List should have at least 2 items after "
        "validation, not 1"
    ]
