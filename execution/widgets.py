"""The client tools (widgets) as data: what an LLM or a template may ask the browser to show.

The same argument models validate a model's tool call, a template's widget and, through their
JSON Schema, what the LLM is offered, so the three can never drift apart. Responses are checked
against the arguments of the action they answer: a response that fails is rejected before it
reaches the aggregate, which is what the legacy contract promises ("changes nothing").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from domain.session import ClientAction
from execution.llm.port import ToolSpec


class WidgetError(ValueError):
    """Arguments or a response that break a widget's contract; ``reasons`` says every way."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(f"{message}: {'; '.join(reasons)}")
        self.reasons = tuple(reasons)


class _Strict(BaseModel):
    # Frozen and closed: an unknown key is a mistake worth reporting, not ignoring.
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------------ arguments


class PresentChoicesArguments(_Strict):
    prompt: StrictStr = Field(min_length=1, description="The question shown above the options.")
    options: list[StrictStr] = Field(
        min_length=2,
        max_length=6,
        description="2 to 6 distinct, non-empty answer options, in display order.",
        json_schema_extra={"uniqueItems": True},
    )
    context: StrictStr | SkipJsonSchema[None] = Field(
        default=None, description="Optional background shown with the question."
    )

    @model_validator(mode="after")
    def _distinct_non_empty_options(self) -> Self:
        if any(not option.strip() for option in self.options):
            raise ValueError("options must not be blank")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        return self


class RequestFreeTextArguments(_Strict):
    prompt: StrictStr = Field(min_length=1, description="The question or instruction shown.")
    placeholder: StrictStr | SkipJsonSchema[None] = Field(
        default=None, description="Hint text shown in the empty input."
    )
    min_length: Annotated[StrictInt, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None, description="Fewest characters accepted (surrounding blanks ignored)."
    )
    max_length: Annotated[StrictInt, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None, description="Most characters accepted."
    )
    multiline: bool = Field(default=False, description="Show a text area instead of one line.")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise ValueError(
                f"min_length {self.min_length} is greater than max_length {self.max_length}"
            )
        return self


class PresentCodeEditorArguments(_Strict):
    prompt: StrictStr = Field(min_length=1, description="The programming task shown.")
    language: StrictStr = Field(
        default="python", min_length=1, description="Language for syntax highlighting."
    )
    initial_code: StrictStr = Field(default="", description="Code the editor starts with.")


# ------------------------------------------------------------------------------ responses
# Each response model is validated with context={"arguments": <the action's arguments>}.


def _arguments(info: ValidationInfo) -> Any:
    context = info.context or {}
    return context.get("arguments")


class MultipleChoiceResponse(_Strict):
    selection: StrictStr | None = None
    index: StrictInt | None = None

    @model_validator(mode="after")
    def _consistent_with_options(self, info: ValidationInfo) -> Self:
        if self.selection is None and self.index is None:
            raise ValueError("give a selection, an index, or both")
        arguments = _arguments(info)
        if not isinstance(arguments, PresentChoicesArguments):
            return self
        options = arguments.options
        problems = []
        if self.index is not None and not 0 <= self.index < len(options):
            problems.append(f"index {self.index} is out of range 0..{len(options) - 1}")
        if self.selection is not None and self.selection not in options:
            problems.append(f"selection {self.selection!r} is not one of the options")
        if problems:
            raise ValueError("; ".join(problems))
        if (
            self.index is not None
            and self.selection is not None
            and options[self.index] != self.selection
        ):
            raise ValueError(
                f"selection {self.selection!r} does not match option {self.index} "
                f"({options[self.index]!r})"
            )
        return self


class FreeTextResponse(_Strict):
    text: StrictStr

    @model_validator(mode="after")
    def _length_within_bounds(self, info: ValidationInfo) -> Self:
        arguments = _arguments(info)
        if not isinstance(arguments, RequestFreeTextArguments):
            return self
        if arguments.min_length is not None and len(self.text.strip()) < arguments.min_length:
            raise ValueError(f"text is shorter than {arguments.min_length} characters")
        if arguments.max_length is not None and len(self.text) > arguments.max_length:
            raise ValueError(f"text is longer than {arguments.max_length} characters")
        return self


class CodeEditorResponse(_Strict):
    code: StrictStr


# ------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class ClientTool:
    """One widget: the tool name the LLM calls, the widget the browser draws, its contracts."""

    name: str
    widget_type: str
    description: str
    arguments: type[_Strict]
    response: type[_Strict]

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=_for_llm(self.arguments.model_json_schema()),
        )


def _for_llm(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without pydantic's titles and ``default: null``: fewer tokens, no noise."""
    properties = {
        name: {
            key: value
            for key, value in prop.items()
            if key != "title" and not (key == "default" and value is None)
        }
        for name, prop in schema["properties"].items()
    }
    return {key: value for key, value in schema.items() if key != "title"} | {
        "properties": properties
    }


CLIENT_TOOLS: Mapping[str, ClientTool] = {
    tool.name: tool
    for tool in (
        ClientTool(
            name="present_choices",
            widget_type="multiple_choice",
            description=(
                "Show the user a multiple-choice question and wait for their pick. The answer "
                "comes back as the chosen option's text and its 0-based index."
            ),
            arguments=PresentChoicesArguments,
            response=MultipleChoiceResponse,
        ),
        ClientTool(
            name="request_free_text",
            widget_type="free_text",
            description=(
                "Ask the user to type a free-text answer and wait for it. Use for short answers "
                "(numbers, words) or, with multiline, for longer reflections."
            ),
            arguments=RequestFreeTextArguments,
            response=FreeTextResponse,
        ),
        ClientTool(
            name="present_code_editor",
            widget_type="code_editor",
            description=(
                "Open a code editor with a programming task and wait for the user's code. The "
                "code is returned as text; it is never executed."
            ),
            arguments=PresentCodeEditorArguments,
            response=CodeEditorResponse,
        ),
    )
}


def client_tool_specs() -> list[ToolSpec]:
    """The widgets as tool specs, to offer next to the server tools."""
    return [tool.spec for tool in CLIENT_TOOLS.values()]


def client_tool_schemas() -> list[dict[str, Any]]:
    """The widgets as OpenAI function tools (``{"type": "function", "function": {...}}``)."""
    return [spec.to_openai() for spec in client_tool_specs()]


def is_client_tool(name: str) -> bool:
    """Whether a tool call must be answered by the browser (suspend) rather than run here."""
    return name in CLIENT_TOOLS


def validate_arguments(tool_name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as widget props (defaults filled, absent optionals dropped), or WidgetError."""
    tool = _tool(tool_name)
    try:
        parsed = tool.arguments.model_validate(dict(arguments))
    except ValidationError as error:
        raise WidgetError(f"invalid arguments for {tool_name}", _reasons(error)) from None
    return parsed.model_dump(mode="json", exclude_none=True)


def client_action(tool_call_id: str, tool_name: str, arguments: Mapping[str, Any]) -> ClientAction:
    """The action to record for a widget call; raises WidgetError if the call is malformed."""
    tool = _tool(tool_name)
    return ClientAction(
        tool_call_id=tool_call_id,
        tool_name=tool.name,
        widget_type=tool.widget_type,
        props=validate_arguments(tool_name, arguments),
    )


def validate_response(action: ClientAction, response: JsonValue) -> list[str]:
    """Every reason ``response`` is not a valid answer to ``action``; empty means valid."""
    try:
        normalise_response(action, response)
    except WidgetError as error:
        return list(error.reasons)
    return []


def normalise_response(action: ClientAction, response: JsonValue) -> dict[str, JsonValue]:
    """The response in canonical form (a choice carries both selection and index).

    Raises WidgetError with the reasons when the response does not answer the action.
    """
    tool = CLIENT_TOOLS.get(action.tool_name)
    if tool is None:
        raise WidgetError("cannot validate", [f"unknown client tool {action.tool_name!r}"])
    try:
        arguments = tool.arguments.model_validate(action.props)
    except ValidationError as error:
        reasons = [f"the action's props are invalid: {reason}" for reason in _reasons(error)]
        raise WidgetError("cannot validate", reasons) from None
    fields = ", ".join(tool.response.model_fields)
    if not isinstance(response, dict):
        raise WidgetError(
            f"invalid {tool.widget_type} response",
            [f"a {tool.widget_type} response must be a JSON object with {fields}"],
        )
    try:
        parsed = tool.response.model_validate(response, context={"arguments": arguments})
    except ValidationError as error:
        raise WidgetError(f"invalid {tool.widget_type} response", _reasons(error)) from None
    if isinstance(parsed, MultipleChoiceResponse) and isinstance(
        arguments, PresentChoicesArguments
    ):
        index = (
            parsed.index
            if parsed.index is not None
            else arguments.options.index(str(parsed.selection))
        )
        return {"selection": arguments.options[index], "index": index}
    normalised: dict[str, JsonValue] = parsed.model_dump(mode="json")
    return normalised


def _tool(tool_name: str) -> ClientTool:
    tool = CLIENT_TOOLS.get(tool_name)
    if tool is None:
        known = ", ".join(CLIENT_TOOLS)
        raise WidgetError("not a client tool", [f"{tool_name!r} is not one of {known}"])
    return tool


def _reasons(error: ValidationError) -> list[str]:
    """One readable line per problem: ``field: message``, without pydantic's union noise.

    An optional field is a union with None; pydantic reports a failure against each branch
    (``min_length.constrained-int``, ``min_length.none``). "Should be None" helps no one, so
    it is dropped and the other branch is reported against the field itself.
    """
    details = error.errors(include_url=False)
    optional = {detail["loc"][:-1] for detail in details if detail["type"] == "none_required"}
    reasons = []
    for detail in details:
        if detail["type"] == "none_required":
            continue
        loc = detail["loc"][:-1] if detail["loc"][:-1] in optional else detail["loc"]
        where = ".".join(str(part) for part in loc)
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown field"
        reasons.append(f"{where}: {message}" if where else message)
    return reasons
