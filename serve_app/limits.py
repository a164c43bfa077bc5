"""Bounded, clean input types for everything that enters through HTTP.

Whatever a request carries ends up in an event, and from there in every read model: PostgreSQL
refuses NUL in text and jsonb, no store can encode a lone surrogate in UTF-8, none keeps NaN or
Infinity, MongoDB no integer past 64 bits. Stored once, such a value stops the projector on the
same batch for ever; so it is refused here, with a 422 naming the field (and, inside a JSON
value, the path to the bad part), before anything is stored. Sizes are bounded for the same
reason: an event, and a read-model document, holds what the request held.

Every limit is a constant of this module (the preference-map bounds are the agent profile's,
``execution.agent_profiles``, which the preferences use case also checks on the merged map).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    JsonValue,
    PlainValidator,
    StringConstraints,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain.session import SessionConfig
from execution.agent_profiles import MAX_PREFERENCES, MAX_PREFERENCES_BYTES

MAX_ID_CHARS = 200
"""User ids, tool call ids, template and model ids, session ids in a path."""
MAX_KEY_CHARS = 64
"""Keys of JSON objects (preference keys, criteria, extras, inside answers)."""
MAX_NAME_CHARS = 200
MAX_REASON_CHARS = 500
MAX_PROMPT_CHARS = 20_000
MAX_SECONDS = 366 * 24 * 3600
"""Longest session or item time limit: a year."""
MAX_ITEMS = 10_000
"""Most items a session config may ask for."""
MAX_RESPONSE_TIME_MS = 1000.0 * MAX_SECONDS

JSON_MAX_DEPTH = 8
"""Nested objects and lists in one JSON value (the value itself counts as the first)."""
JSON_MAX_KEYS = 64
"""Keys of one JSON object."""
JSON_MAX_ITEMS = 256
"""Items of one JSON list."""
JSON_MAX_STRING_CHARS = 20_000
"""One string in a JSON value: a code answer may be this long."""
JSON_MAX_BYTES = 48 * 1024
"""One JSON value, serialized compactly as UTF-8."""
JSON_MAX_INT = 2**63 - 1
"""Integers stay within 64 bits (MongoDB's, and most JSON readers', limit)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

Loc = tuple[str | int, ...]


# ---------------------------------------------------------------------- errors


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def _printable(text: str) -> str:
    """What a problem body can echo: lone surrogates replaced (UTF-8 has no encoding for
    them, so echoing one as it is would fail the error response itself)."""
    return text.encode("utf-8", "replace").decode()


def _shown(value: object) -> object:
    """``value`` as an error may echo it: encodable text, and NaN or Infinity as words
    (the error response is JSON, which has no such numbers)."""
    if isinstance(value, str):
        return _printable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _at(loc: Loc, value: object, error: PydanticCustomError) -> NoReturn:
    """A validation error at ``loc`` below the field (pydantic prefixes the field's own)."""
    where = tuple(_printable(part) if isinstance(part, str) else part for part in loc)
    detail: InitErrorDetails = {"type": error, "loc": where, "input": _shown(value)}
    raise ValidationError.from_exception_data("input", [detail])


def _too(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context)


def refuse(loc: Loc, value: object, kind: str, reason: str) -> NoReturn:
    """Raise, from a validator, a 422 error of type ``kind`` at ``loc`` below the field."""
    _at(loc, value, PydanticCustomError(kind, "{reason}", {"reason": reason}))


# ---------------------------------------------------------------------- strings


def _lone_surrogate(char: str) -> PydanticCustomError:
    return _too("lone_surrogate", "contains a lone surrogate {char}", char=_code(char))


def _clean(text: str, control: re.Pattern[str]) -> str:
    """``text`` if it has no character ``control`` matches and no lone surrogate."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise _lone_surrogate(found[0])
    found = control.search(text)
    if found is not None:
        raise _too(
            "control_character", "contains the control character {char}", char=_code(found[0])
        )
    return text


def clean_line(text: str) -> str:
    """One line: no control character at all (tabs and line breaks included)."""
    return _clean(text, _CONTROL)


def clean_text(text: str) -> str:
    """Multi-line text: tabs and line breaks, but no other control character."""
    return _clean(text, _CONTROL_BUT_LINES)


def identifier(text: str) -> str:
    """No blank, control, format (zero-width), private or unassigned character: what two
    users could not tell apart on screen must not name two different things."""
    for char in text:
        if unicodedata.category(char)[0] in "CZ":
            raise _too(
                "not_an_identifier",
                "must not contain blank, control or invisible characters (found {char})",
                char=_code(char),
            )
    return text


def _echoable(value: object) -> object:
    """Refuse a lone surrogate or a non-finite number before pydantic's own checks do: their
    errors echo the input as it is, and the error response could not be encoded."""
    if isinstance(value, float) and not math.isfinite(value):
        _at((), value, _too("finite_number", "must be a finite number"))
    found = _SURROGATE.search(value) if isinstance(value, str) else None
    if found is not None:
        _at((), value, _lone_surrogate(found[0]))
    return value


_ECHOABLE = BeforeValidator(_echoable)  # last in each Annotated below: it runs first
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS),
    AfterValidator(identifier),
    _ECHOABLE,
]
Name = Annotated[
    str, StringConstraints(max_length=MAX_NAME_CHARS), AfterValidator(clean_line), _ECHOABLE
]
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_REASON_CHARS),
    AfterValidator(clean_line),
    _ECHOABLE,
]
Prompt = Annotated[
    str, StringConstraints(max_length=MAX_PROMPT_CHARS), AfterValidator(clean_text), _ECHOABLE
]
Seconds = Annotated[int, Field(gt=0, le=MAX_SECONDS), _ECHOABLE]
ItemCount = Annotated[int, Field(gt=0, le=MAX_ITEMS), _ECHOABLE]
ResponseTimeMs = Annotated[float, Field(ge=0, le=MAX_RESPONSE_TIME_MS), _ECHOABLE]


# ---------------------------------------------------------------------- JSON values


def _check_key(key: str, at: Loc, top: bool) -> None:
    if len(key) > MAX_KEY_CHARS:
        too_long = _too("json_key_too_long", "key longer than {max} characters", max=MAX_KEY_CHARS)
        _at(at, key, too_long)
    try:
        if not top:
            clean_line(key)
        elif key:
            identifier(key)
        else:
            raise PydanticCustomError("not_an_identifier", "must not be empty")
    except PydanticCustomError as error:
        _at(at, key, error)


def _check_scalar(node: object, at: Loc) -> None:
    if isinstance(node, str):
        if len(node) > JSON_MAX_STRING_CHARS:
            _at(
                at,
                node,
                _too(
                    "json_string_too_long",
                    "string longer than {max} characters",
                    max=JSON_MAX_STRING_CHARS,
                ),
            )
        try:
            clean_text(node)
        except PydanticCustomError as error:
            _at(at, node, error)
    elif isinstance(node, bool) or node is None:
        return
    elif (isinstance(node, int) and not -JSON_MAX_INT - 1 <= node <= JSON_MAX_INT) or (
        isinstance(node, float) and not math.isfinite(node)
    ):
        _at(
            at,
            node,
            _too("json_number_out_of_range", "numbers must be finite and integers fit in 64 bits"),
        )


def check_json(
    value: object,
    *,
    identifier_keys: bool = False,
    max_keys: int = JSON_MAX_KEYS,
    max_bytes: int = JSON_MAX_BYTES,
) -> None:
    """Refuse a JSON value past a bound or with an unclean string or key, at the path of the
    first problem found; ``identifier_keys``: the top object's keys are identifiers.

    Walked without recursion, depth first, so the depth bound holds before anything else
    walks it.
    """
    stack: list[tuple[object, Loc, int]] = [(value, (), 1)]
    while stack:
        node, at, depth = stack.pop()
        if not isinstance(node, dict | list):
            _check_scalar(node, at)
            continue
        if depth > JSON_MAX_DEPTH:
            _at(
                at,
                None,
                _too("json_too_deep", "nested deeper than {max} levels", max=JSON_MAX_DEPTH),
            )
        if isinstance(node, list):
            if len(node) > JSON_MAX_ITEMS:
                _at(
                    at,
                    None,
                    _too("json_too_many_items", "more than {max} items", max=JSON_MAX_ITEMS),
                )
            stack.extend((item, (*at, index), depth + 1) for index, item in enumerate(node))
            continue
        limit = max_keys if depth == 1 else JSON_MAX_KEYS
        if len(node) > limit:
            _at(at, None, _too("json_too_many_keys", "more than {max} keys", max=limit))
        for key, item in node.items():
            _check_key(key, (*at, key), top=identifier_keys and depth == 1)
            stack.append((item, (*at, key), depth + 1))
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        _at((), None, _too("json_too_large", "larger than {max} bytes as JSON", max=max_bytes))


def _bounded(**bounds: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        check_json(value, **bounds)
        return value

    return check


BoundedJson = Annotated[JsonValue, AfterValidator(_bounded())]
"""Any JSON value within the bounds (a widget answer)."""
JsonMap = Annotated[dict[str, JsonValue], AfterValidator(_bounded(identifier_keys=True))]
"""A JSON object keyed by identifiers (a session config's criteria and extras)."""
Preferences = Annotated[
    dict[str, JsonValue],
    AfterValidator(
        _bounded(identifier_keys=True, max_keys=MAX_PREFERENCES, max_bytes=MAX_PREFERENCES_BYTES)
    ),
]
"""Preferences, or changes to them (``None`` removes a key): no more than the agent keeps."""


# ---------------------------------------------------------------------- session configs


class SessionConfigInput(SessionConfig):
    """The domain's ``SessionConfig`` as a client may send it: every field bounded. What the
    criteria mean is the executor's to check, at the start (``runner.check_config``)."""

    time_limit_seconds: Seconds | None = None
    item_time_limit_seconds: Seconds | None = None
    max_items: ItemCount | None = None
    completion_criteria: JsonMap = Field(default_factory=dict)
    model_id: Identifier | None = None
    template_id: Identifier | None = None
    extra: JsonMap = Field(default_factory=dict)


def _bounded_config(value: object) -> SessionConfig:
    """Validated as ``SessionConfigInput``, handed on as the domain's own type (commands
    compare configs, and a subclass is never equal to its base)."""
    if isinstance(value, SessionConfig):
        value = value.model_dump()
    return SessionConfig.model_validate(SessionConfigInput.model_validate(value).model_dump())


BoundedSessionConfig = Annotated[
    SessionConfig, PlainValidator(_bounded_config, json_schema_input_type=SessionConfigInput)
]
"""A request's session config (the agent API's and the legacy one's)."""
