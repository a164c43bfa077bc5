"""The edge's input types: bounded, clean strings, identifiers and JSON values, and errors that
say where inside a value the problem is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from domain.session import SessionConfig
from serve_app import limits
from serve_app.schemas import (
    CreateAgentRequest,
    PreferencesRequest,
    RespondRequest,
    StartSessionRequest,
)


class Fields(BaseModel):
    identifier: limits.Identifier | None = None
    line: limits.Reason | None = None
    text: limits.Prompt | None = None
    value: limits.BoundedJson = None
    changes: limits.Preferences | None = None


def _refused(**fields: Any) -> dict[str, Any]:
    """The one error validating ``fields`` gives."""
    with pytest.raises(ValidationError) as caught:
        Fields.model_validate(fields)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f", "\t", "\n"])
def test_a_single_line_refuses_every_control_character(char: str) -> None:
    error = _refused(line=f"a{char}b")
    assert error["type"] == "control_character"
    assert error["loc"] == ("line",)
    assert f"U+{ord(char):04X}" in error["msg"]


def test_multi_line_text_keeps_newlines_and_tabs_but_refuses_the_rest() -> None:
    assert Fields(text="one\r\n\ttwo\n").text == "one\r\n\ttwo\n"
    assert _refused(text="nul\x00")["type"] == "control_character"
    assert _refused(text="bell\x07")["type"] == "control_character"


@pytest.mark.parametrize("field", ["line", "text", "identifier"])
def test_a_lone_surrogate_is_refused_everywhere_and_never_echoed(field: str) -> None:
    """UTF-8 cannot encode it: echoed in the error, it would break the error response."""
    for error in (_refused(**{field: "a\ud800"}), _refused(value={"k\udfff": "\udfff"})):
        assert error["type"] == "lone_surrogate"
        json.dumps([error["loc"], error["input"]], ensure_ascii=False).encode()


def test_ordinary_unicode_passes() -> None:
    text = "Grüße, 東京 👩‍🏫 — «ok» ‏"  # an emoji with a zero-width joiner, a RTL mark
    assert Fields(line=text, text=text, value={"note": text}).line == text


@pytest.mark.parametrize("value", ["bob smith", "bob\u00a0", "\u200bbob", "bob\x00", "", "x" * 201])
def test_an_identifier_has_no_blank_control_or_invisible_character(value: str) -> None:
    error = _refused(identifier=value)
    assert error["loc"] == ("identifier",)


def test_an_identifier_may_be_an_email_an_oidc_subject_or_a_model_name() -> None:
    for value in ("alice@example.com", "f:1b2c:alice", "meta-llama/Llama-3.1-8B", "ä-ü"):
        assert Fields(identifier=value).identifier == value


def test_lengths_are_bounded() -> None:
    assert _refused(line="x" * (limits.MAX_REASON_CHARS + 1))["type"] == "string_too_long"
    assert _refused(text="x" * (limits.MAX_PROMPT_CHARS + 1))["type"] == "string_too_long"
    assert _refused(line="")["type"] == "string_too_short"


@pytest.mark.parametrize(
    ("value", "kind", "loc"),
    [
        ({"a": {"b": "x\x00"}}, "control_character", ("value", "a", "b")),
        ({"a\x00": 1}, "control_character", ("value", "a\x00")),
        ({"k" * 65: 1}, "json_key_too_long", ("value", "k" * 65)),
        (["x" * (limits.JSON_MAX_STRING_CHARS + 1)], "json_string_too_long", ("value", 0)),
        ([[[[[[[[[1]]]]]]]]], "json_too_deep", ("value", 0, 0, 0, 0, 0, 0, 0, 0)),
        (list(range(limits.JSON_MAX_ITEMS + 1)), "json_too_many_items", ("value",)),
        ({f"k{i}": i for i in range(limits.JSON_MAX_KEYS + 1)}, "json_too_many_keys", ("value",)),
        ({"n": 2**63}, "json_number_out_of_range", ("value", "n")),
        ({"n": -(2**63) - 1}, "json_number_out_of_range", ("value", "n")),
        ([float("nan")], "json_number_out_of_range", ("value", 0)),
        ({"inf": float("inf")}, "json_number_out_of_range", ("value", "inf")),
        (["x" * 20_000, "y" * 20_000, "z" * 20_000], "json_too_large", ("value",)),
    ],
)
def test_a_json_value_is_bounded_and_clean_and_the_error_says_where(
    value: Any, kind: str, loc: tuple[Any, ...]
) -> None:
    error = _refused(value=value)
    assert (error["type"], error["loc"]) == (kind, loc)


def test_a_json_value_within_every_bound_passes() -> None:
    value = {
        "text": "multi\nline\ttext",
        "list": [1, 2.5, True, None, "x"],
        "deep": [[[[[[[1]]]]]]],
        "n": 2**63 - 1,
    }
    assert Fields(value=value).value == value


def test_preferences_have_identifier_keys_and_their_own_bounds() -> None:
    assert _refused(changes={"two words": 1})["loc"] == ("changes", "two words")
    assert _refused(changes={"": 1})["loc"] == ("changes", "")
    assert _refused(changes={"a": "x" * 17_000, "b": "x" * 17_000})["type"] == "json_too_large"
    keys = {f"k{i}": None for i in range(limits.MAX_PREFERENCES + 1)}
    assert _refused(changes=keys)["type"] == "json_too_many_keys"
    assert Fields(changes={"ui.theme": "dark", "language": None}).changes == {
        "ui.theme": "dark",
        "language": None,
    }


def test_a_start_request_bounds_the_config_and_hands_on_the_domains_own() -> None:
    request = StartSessionRequest.model_validate(
        {"config": {"template_id": "arithmetic-basics", "extra": {"lms": "x"}}}
    )
    assert type(request.config) is SessionConfig
    assert request.config == SessionConfig(template_id="arithmetic-basics", extra={"lms": "x"})
    with pytest.raises(ValidationError) as caught:
        StartSessionRequest.model_validate({"config": {"max_items": 10**6, "bogus": 1}})
    assert {error["loc"] for error in caught.value.errors()} == {
        ("config", "max_items"),
        ("config", "bogus"),
    }


def test_a_new_agents_preferences_are_checked_against_its_profile() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateAgentRequest.model_validate(
            {"agent_type": "tutor", "preferences": {"temperature": 9, "theme": "dark"}}
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("preferences", "temperature")
    assert CreateAgentRequest.model_validate(
        {"agent_type": "tutor", "preferences": {"temperature": 1, "theme": "dark"}}
    ).preferences == {"temperature": 1, "theme": "dark"}


def test_answers_and_changes_use_the_bounded_types() -> None:
    with pytest.raises(ValidationError):
        RespondRequest.model_validate({"tool_call_id": "bad id", "response": {}})
    with pytest.raises(ValidationError):
        RespondRequest.model_validate(
            {"tool_call_id": "t", "response": {}, "response_time_ms": float("inf")}
        )
    with pytest.raises(ValidationError):
        PreferencesRequest.model_validate({"changes": {"k": "\x00"}})
