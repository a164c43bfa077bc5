"""A session template: the YAML a templated session runs, and the rules that score its answers.

Templates are how an agent teaches or evaluates with no LLM at all, so everything a model would
have judged must be decided here, deterministically: each item names its widget (validated by
the same models the LLM's tool calls are) and a scoring rule. Every rule scores any JSON without
raising, and user code is only parsed, never executed.
"""

from __future__ import annotations

import ast
import ipaddress
import math
import re
import unicodedata
from abc import abstractmethod
from fractions import Fraction
from typing import Annotated, Any, Literal, Self

from pydantic import Field, JsonValue, StrictInt, StrictStr, model_validator

from domain.enums import AgentType
from domain.session import ClientAction
from domain.value_object import ValueObject
from execution import widgets

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class Evaluation(ValueObject):
    """The verdict on one answer; ``correct`` is None when the item is not graded."""

    correct: bool | None
    points: float = Field(ge=0)
    max_points: float = Field(ge=0)
    feedback: str = ""


def answer_text(response: JsonValue) -> str | None:
    """The text an answer carries: a bare string, free text, a choice's selection, or code."""
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        for key in ("text", "selection", "code"):
            value = response.get(key)
            if isinstance(value, str):
                return value
    return None


def _judged(correct: bool, max_points: float, problem: str = "") -> Evaluation:
    return Evaluation(
        correct=correct,
        points=max_points if correct else 0.0,
        max_points=max_points,
        feedback="Correct." if correct else (problem or "Not quite."),
    )


class _Rule(ValueObject):
    @abstractmethod
    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        """Judge a response (any JSON: never raises); full points or none."""


# --------------------------------------------------------------------------- the rules


class ChoiceRule(_Rule):
    """The right option of a multiple choice, by 0-based index or by its exact text."""

    type: Literal["choice"] = "choice"
    answer: StrictInt | StrictStr

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        if not isinstance(response, dict):
            return _judged(False, max_points, "No option was chosen.")
        key = "index" if isinstance(self.answer, int) else "selection"
        given = response.get(key)
        if not isinstance(given, type(self.answer)) or isinstance(given, bool):
            return _judged(False, max_points, "No option was chosen.")
        return _judged(given == self.answer, max_points)


class ExactRule(_Rule):
    """One of the accepted answers, compared after normalising Unicode, blanks and case."""

    type: Literal["exact"] = "exact"
    accepted: tuple[StrictStr, ...] = Field(min_length=1)
    case_sensitive: bool = False
    ignore_whitespace: bool = False  # False: runs of blanks count as one space

    @model_validator(mode="after")
    def _no_blank_answer(self) -> Self:
        if any(not self._normal(answer) for answer in self.accepted):
            raise ValueError("accepted answers must not be blank")
        return self

    def _normal(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = "".join(text.split()) if self.ignore_whitespace else " ".join(text.split())
        return text if self.case_sensitive else text.casefold()

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        text = answer_text(response)
        if text is None:
            return _judged(False, max_points, "No answer was given.")
        accepted = {self._normal(answer) for answer in self.accepted}
        return _judged(self._normal(text) in accepted, max_points)


MAX_NUMBER_CHARS = 100  # also keeps int() under its 4300-digit conversion limit
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_RATIO = re.compile(r"[+-]?[0-9]{1,30}/[0-9]{1,30}")


def parse_number(value: JsonValue) -> Fraction | None:
    """An exact number from a JSON number or text such as "42", "4.2e1", ".75" or "3/4".

    Length and grammar are checked first, so hostile input ("1e999999999", a million digits)
    is refused instead of computed.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value)) if math.isfinite(value) else None
    text = answer_text(value)
    if text is None:
        return None
    text = text.strip()
    if len(text) > MAX_NUMBER_CHARS or not (_DECIMAL.fullmatch(text) or _RATIO.fullmatch(text)):
        return None
    try:
        return Fraction(text)
    except ZeroDivisionError:
        return None


class NumericRule(_Rule):
    """A number within an absolute tolerance, compared exactly (0.1 + 0.2 is 0.3 here)."""

    type: Literal["numeric"] = "numeric"
    value: float = Field(allow_inf_nan=False)
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        number = parse_number(response)
        if number is None:
            return _judged(False, max_points, "That is not a number.")
        # repr() is the shortest decimal that round-trips: 0.1 means 1/10, not its binary twin.
        expected, tolerance = Fraction(repr(self.value)), Fraction(repr(self.tolerance))
        return _judged(abs(number - expected) <= tolerance, max_points)


_REGEX_FLAGS = {
    "IGNORECASE": re.IGNORECASE,
    "MULTILINE": re.MULTILINE,
    "DOTALL": re.DOTALL,
    "VERBOSE": re.VERBOSE,
    "ASCII": re.ASCII,
}


class RegexRule(_Rule):
    """The whole answer (surrounding blanks stripped) matches a regular expression."""

    type: Literal["regex"] = "regex"
    pattern: StrictStr = Field(min_length=1)
    flags: tuple[Literal["IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"], ...] = ()

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        try:
            self._compiled()
        except re.error as error:
            raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {error}") from None
        return self

    def _compiled(self) -> re.Pattern[str]:
        flags = 0
        for name in self.flags:
            flags |= _REGEX_FLAGS[name]
        return re.compile(self.pattern, flags)  # re caches compiled patterns

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        text = answer_text(response)
        if text is None:
            return _judged(False, max_points, "No answer was given.")
        return _judged(self._compiled().fullmatch(text.strip()) is not None, max_points)


class Ipv4Rule(_Rule):
    """An IPv4 address, network (CIDR or dotted mask) or netmask, compared as values.

    ``10.0.5.255`` equals ``10.0.5.255``; ``172.20.40.0/21`` equals ``172.20.40.0/255.255.248.0``;
    a netmask may be answered ``255.255.240.0``, ``/20`` or ``20``. A network answer with host
    bits set is wrong, and the feedback says why.
    """

    type: Literal["ipv4"] = "ipv4"
    kind: Literal["address", "network", "netmask"] = "address"
    answer: StrictStr

    @model_validator(mode="after")
    def _answer_parses(self) -> Self:
        try:
            self._parse(self.answer)
        except ValueError as error:
            raise ValueError(
                f"answer {self.answer!r} is not a valid {self.kind}: {error}"
            ) from None
        return self

    def _parse(self, text: str) -> ipaddress.IPv4Address | ipaddress.IPv4Network | int:
        text = text.strip()
        if self.kind == "address":
            return ipaddress.IPv4Address(text)
        if self.kind == "network":
            return ipaddress.IPv4Network(text, strict=True)
        if "." in text:
            mask = ipaddress.IPv4Address(text)
            network = ipaddress.IPv4Network(f"0.0.0.0/{text}")
            if network.netmask != mask:  # ipaddress would also take a wildcard mask
                raise ValueError(f"{text} is not a subnet mask")
            return network.prefixlen
        prefix = text.removeprefix("/")
        if not prefix.isascii() or not prefix.isdigit() or int(prefix) > 32:
            raise ValueError(f"{text} is not a prefix length /0 to /32")
        return int(prefix)

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        text = answer_text(response)
        if text is None or len(text) > 64:
            return _judged(False, max_points, "No IPv4 answer was given.")
        try:
            given = self._parse(text)
        except ValueError as error:
            return _judged(False, max_points, f"Not a valid IPv4 {self.kind}: {error}.")
        return _judged(given == self._parse(self.answer), max_points)


_CONSTRUCTS: dict[str, tuple[type[ast.AST], ...]] = {
    "for": (ast.For, ast.AsyncFor),
    "while": (ast.While,),
    "if": (ast.If, ast.IfExp),
    "return": (ast.Return,),
    "comprehension": (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp),
    "lambda": (ast.Lambda,),
    "import": (ast.Import, ast.ImportFrom),
    "class": (ast.ClassDef,),
    "try": (ast.Try, ast.TryStar),
    "with": (ast.With, ast.AsyncWith),
    "yield": (ast.Yield, ast.YieldFrom),
    "fstring": (ast.JoinedStr,),
}
Construct = Literal[
    "for",
    "while",
    "if",
    "return",
    "comprehension",
    "lambda",
    "import",
    "class",
    "try",
    "with",
    "yield",
    "fstring",
]
MAX_CODE_CHARS = 20_000


class FunctionSpec(ValueObject):
    """A top-level function the code must define."""

    name: StrictStr = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    args: int | None = Field(default=None, ge=0)  # positional parameters, not *args/**kwargs
    returns_value: bool = False  # its own body has ``return <expression>``


class PythonAstRule(_Rule):
    """Structural checks on Python code: parsed with ``ast``, never run.

    It cannot prove the code right, only that it has the required shape: the explanation
    should show a model answer.
    """

    type: Literal["python_ast"] = "python_ast"
    functions: tuple[FunctionSpec, ...] = ()
    required: tuple[Construct, ...] = ()
    forbidden: tuple[Construct, ...] = ()
    required_names: tuple[StrictStr, ...] = ()
    forbidden_names: tuple[StrictStr, ...] = ()

    @model_validator(mode="after")
    def _checks_something(self) -> Self:
        if not (
            self.functions
            or self.required
            or self.forbidden
            or self.required_names
            or self.forbidden_names
        ):
            raise ValueError("a python_ast rule must check at least one thing")
        return self

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        code = response.get("code") if isinstance(response, dict) else response
        if not isinstance(code, str):
            return _judged(False, max_points, "No code was given.")
        if len(code) > MAX_CODE_CHARS:
            return _judged(False, max_points, f"The code is over {MAX_CODE_CHARS} characters.")
        try:
            tree = ast.parse(code)
        except SyntaxError as error:
            return _judged(
                False, max_points, f"The code does not parse: {error.msg} (line {error.lineno})."
            )
        except (ValueError, RecursionError, MemoryError) as error:  # NUL bytes, deep nesting
            reason = str(error) or "it is nested too deeply"
            return _judged(False, max_points, f"The code does not parse: {reason}.")
        problems = self._problems(tree)
        return _judged(not problems, max_points, "Not yet: " + "; ".join(problems) + ".")

    def _problems(self, tree: ast.Module) -> list[str]:
        nodes = list(ast.walk(tree))
        used = {name for node in nodes for name in _names(node)}
        problems = [_function_problem(spec, tree) for spec in self.functions]
        problems += [f"use {_label(c)}" for c in self.required if not _has(nodes, c)]
        problems += [f"do not use {_label(c)}" for c in self.forbidden if _has(nodes, c)]
        problems += [f"use {name!r}" for name in self.required_names if name not in used]
        problems += [f"do not use {name!r}" for name in self.forbidden_names if name in used]
        return [problem for problem in problems if problem]


def _label(construct: str) -> str:
    return {"fstring": "an f-string", "import": "an import", "if": "an if"}.get(
        construct, f"a {construct}"
    )


def _has(nodes: list[ast.AST], construct: str) -> bool:
    return any(isinstance(node, _CONSTRUCTS[construct]) for node in nodes)


def _names(node: ast.AST) -> list[str]:
    """Names a program uses: variables and functions, attributes, imported modules."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.alias):
        return [node.name, node.name.split(".")[0]]
    return []


def _function_problem(spec: FunctionSpec, tree: ast.Module) -> str:
    """What is wrong with the required function, or "" when nothing is."""
    found = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == spec.name
    ]
    if not found:
        return f"define a function {spec.name}"
    function = found[-1]  # the last definition is the one a caller would get
    count = len(function.args.posonlyargs) + len(function.args.args)
    if spec.args is not None and count != spec.args:
        return f"{spec.name} should take {spec.args} parameter(s), not {count}"
    if spec.returns_value and not any(
        isinstance(node, ast.Return) and node.value is not None for node in _own_nodes(function)
    ):
        return f"{spec.name} should return a value"
    return ""


def _own_nodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.AST]:
    """The function's nodes, minus nested functions and classes (their returns are not its)."""
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    own: list[ast.AST] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        own.append(node)
        if not isinstance(node, nested):
            stack.extend(ast.iter_child_nodes(node))
    return own


class NoneRule(_Rule):
    """Not graded: reflections, surveys. The answer is kept; it earns and costs nothing."""

    type: Literal["none"] = "none"

    def score(self, response: JsonValue, max_points: float = 1.0) -> Evaluation:
        return Evaluation(correct=None, points=0.0, max_points=0.0, feedback="Answer recorded.")


ScoringRule = Annotated[
    ChoiceRule | ExactRule | NumericRule | RegexRule | Ipv4Rule | PythonAstRule | NoneRule,
    Field(discriminator="type"),
]

# Which widgets each rule can judge: a rule meeting a widget it cannot read is an authoring bug.
_RULE_TOOLS: dict[str, frozenset[str]] = {
    "choice": frozenset({"present_choices"}),
    "exact": frozenset({"request_free_text"}),
    "numeric": frozenset({"request_free_text"}),
    "regex": frozenset({"request_free_text"}),
    "ipv4": frozenset({"request_free_text"}),
    "python_ast": frozenset({"present_code_editor"}),
    "none": frozenset(widgets.CLIENT_TOOLS),
}


# --------------------------------------------------------------------------- the template


class WidgetSpec(ValueObject):
    """The client tool an item shows; its prompt is the item's, so it is not repeated here."""

    tool: StrictStr
    arguments: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_tool_without_prompt(self) -> Self:
        if not widgets.is_client_tool(self.tool):
            known = ", ".join(widgets.CLIENT_TOOLS)
            raise ValueError(f"unknown tool {self.tool!r}; use one of {known}")
        if "prompt" in self.arguments:
            raise ValueError("arguments must not repeat the prompt: it is the item's prompt")
        return self


class TemplateItem(ValueObject):
    """One question: what to show, how to score the answer, what to say afterwards."""

    id: StrictStr = Field(pattern=ID_PATTERN)
    prompt: StrictStr = Field(min_length=1)
    widget: WidgetSpec
    scoring: ScoringRule
    explanation: str = ""  # shown after answering, whatever the verdict
    points: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    tags: tuple[StrictStr, ...] = ()  # topics, for the summary's weakest topics

    @model_validator(mode="after")
    def _widget_fits_rule(self) -> Self:
        if self.widget.tool not in _RULE_TOOLS[self.scoring.type]:
            allowed = ", ".join(sorted(_RULE_TOOLS[self.scoring.type]))
            raise ValueError(
                f"a {self.scoring.type} rule cannot score {self.widget.tool}; use {allowed}"
            )
        props = widgets.validate_arguments(self.widget.tool, self._arguments())
        if isinstance(self.scoring, ChoiceRule):
            options = props["options"]
            answer = self.scoring.answer
            if isinstance(answer, int) and not 0 <= answer < len(options):
                raise ValueError(
                    f"choice answer {answer} is not an option index 0..{len(options) - 1}"
                )
            if isinstance(answer, str) and answer not in options:
                raise ValueError(f"choice answer {answer!r} is not one of the options")
        return self

    def _arguments(self) -> dict[str, Any]:
        return {"prompt": self.prompt, **self.widget.arguments}

    @property
    def graded(self) -> bool:
        return not isinstance(self.scoring, NoneRule)

    @property
    def max_points(self) -> float:
        return self.points if self.graded else 0.0

    def client_action(self, tool_call_id: str) -> ClientAction:
        """The widget to request for this item."""
        return widgets.client_action(tool_call_id, self.widget.tool, self._arguments())

    def evaluate(self, response: JsonValue) -> Evaluation:
        """Score any JSON: an answer the widget would reject scores zero, saying why."""
        try:
            normalised = widgets.normalise_response(self.client_action(self.id), response)
        except widgets.WidgetError as error:
            return Evaluation(
                correct=False if self.graded else None,
                points=0.0,
                max_points=self.max_points,
                feedback="The answer could not be checked: " + "; ".join(error.reasons),
            )
        result = self.scoring.score(normalised, self.max_points)
        feedback = " ".join(part for part in (result.feedback, self.explanation.strip()) if part)
        return result.model_copy(update={"feedback": feedback})


class CompletionCriteria(ValueObject):
    """When a templated session ends, and what counts as a pass."""

    max_items: int | None = Field(default=None, gt=0)  # ask only the first N items
    pass_mark: float | None = Field(default=None, ge=0, le=1)  # fraction of the points
    time_limit_seconds: int | None = Field(default=None, gt=0)
    item_time_limit_seconds: int | None = Field(default=None, gt=0)
    stop_early_when_passed: bool = False  # end once failing has become impossible
    stop_early_when_failed: bool = False  # end once passing has become impossible

    @model_validator(mode="after")
    def _early_stops_need_a_pass_mark(self) -> Self:
        if (self.stop_early_when_passed or self.stop_early_when_failed) and self.pass_mark is None:
            raise ValueError("stop_early_when_passed/failed need a pass_mark")
        return self


class SessionTemplate(ValueObject):
    id: StrictStr = Field(pattern=ID_PATTERN)
    title: StrictStr = Field(min_length=1)
    description: str = ""
    agent_type: AgentType
    version: int = Field(default=1, ge=1)
    intro: str = ""  # shown before the first item
    items: tuple[TemplateItem, ...] = Field(min_length=1)
    completion: CompletionCriteria = Field(default_factory=CompletionCriteria)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} is used twice")
            seen.add(item.id)
        max_items = self.completion.max_items
        if max_items is not None and max_items > len(self.items):
            raise ValueError(
                f"completion.max_items {max_items} exceeds the {len(self.items)} items"
            )
        if self.completion.pass_mark is not None and not any(
            item.graded for item in self.planned_items
        ):
            raise ValueError("completion.pass_mark needs at least one graded item")
        return self

    @property
    def planned_items(self) -> tuple[TemplateItem, ...]:
        """The items a session asks, in order: the first ``max_items`` of them."""
        return self.items[: self.completion.max_items]

    @property
    def max_points(self) -> float:
        """What a perfect session earns: the points of every planned, graded item."""
        return sum(item.max_points for item in self.planned_items)

    def item(self, item_id: str) -> TemplateItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"template {self.id!r} has no item {item_id!r}")


def right_answer(item: TemplateItem) -> JsonValue:
    """A response the item's own rule accepts, read off the rule's data: what demos,
    benchmarks and tests answer. Rules without one right answer (regex, python_ast, none)
    raise ValueError."""
    rule = item.scoring
    if isinstance(rule, ChoiceRule):
        return {"index" if isinstance(rule.answer, int) else "selection": rule.answer}
    if isinstance(rule, NumericRule):
        return {"text": f"{rule.value:g}"}
    if isinstance(rule, ExactRule):
        return {"text": rule.accepted[0]}
    if isinstance(rule, Ipv4Rule):
        return {"text": rule.answer}
    raise ValueError(f"item {item.id}: no single right answer for a {rule.type} rule")
