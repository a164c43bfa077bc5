"""Session templates from YAML: the packaged ones plus, optionally, an operator's directory.

Packaged templates are read through importlib.resources so they load from a wheel as well as a
checkout. Every file is validated whole; an error names the file and the field (with the item's
id when the field is inside one), because the person fixing it has the YAML open, not a trace.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from execution.templates.model import SessionTemplate

PACKAGED = files("execution.templates").joinpath("data")
SUFFIXES = (".yaml", ".yml")


class TemplateError(ValueError):
    """A template file that cannot be used, or an id no file defines."""


def load_template_file(path: Traversable) -> SessionTemplate:
    """One template; its ``id`` must be the file name without the suffix."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(f"{path}: invalid YAML{where}: {error.problem}") from None
    except yaml.YAMLError as error:
        raise TemplateError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: a template must be a mapping of fields")
    try:
        template = SessionTemplate.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(f"  {problem}" for problem in _problems(error, raw))
        raise TemplateError(f"{path}: invalid template:\n{problems}") from None
    stem = path.name.rsplit(".", 1)[0]
    if template.id != stem:
        raise TemplateError(f"{path}: id {template.id!r} must match the file name {stem!r}")
    return template


def load_templates(extra_dir: Path | None = None) -> dict[str, SessionTemplate]:
    """Every template by id: the packaged ones, then those in ``extra_dir``.

    An id defined twice is an error rather than an override, so a shipped template never
    silently changes under the sessions that use it.
    """
    found = list(_packaged())
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise TemplateError(f"{extra_dir}: not a directory of templates")
        found += [
            (load_template_file(path), str(path)) for path in _yaml_files(extra_dir.iterdir())
        ]
    templates: dict[str, SessionTemplate] = {}
    sources: dict[str, str] = {}
    for template, source in found:
        if template.id in templates:
            first = sources[template.id]
            raise TemplateError(f"{source}: template id {template.id!r} is also defined by {first}")
        templates[template.id] = template
        sources[template.id] = source
    return templates


def get_template(template_id: str, extra_dir: Path | None = None) -> SessionTemplate:
    """The template a session's ``template_id`` names; the error lists the known ids."""
    templates = load_templates(extra_dir)
    try:
        return templates[template_id]
    except KeyError:
        known = ", ".join(sorted(templates))
        raise TemplateError(f"no template {template_id!r}; known: {known}") from None


def list_templates(extra_dir: Path | None = None) -> list[SessionTemplate]:
    """All templates, sorted by id."""
    return [template for _, template in sorted(load_templates(extra_dir).items())]


@functools.cache
def _packaged() -> tuple[tuple[SessionTemplate, str], ...]:
    # Packaged files cannot change while the process runs: parse them once.
    return tuple((load_template_file(path), str(path)) for path in _yaml_files(PACKAGED.iterdir()))


def _yaml_files(entries: Iterable[Traversable]) -> list[Traversable]:
    chosen = (entry for entry in entries if entry.is_file() and entry.name.endswith(SUFFIXES))
    return sorted(chosen, key=lambda entry: entry.name)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML keeps the last one, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _problems(error: ValidationError, raw: dict[str, Any]) -> list[str]:
    """One ``field: message`` line per problem, without pydantic's echoes.

    Dropped: "should be None" (an optional field is a union with None, and pydantic reports
    every branch) and "too short" for a list whose items themselves failed (pydantic counts
    only the valid ones).
    """
    details = error.errors(include_url=False)
    failed_inside = {
        detail["loc"][:size] for detail in details for size in range(len(detail["loc"]))
    }
    return [
        f"{_field(detail['loc'], detail['type'], raw)}: {_message(detail)}"
        for detail in details
        if detail["type"] != "none_required"
        and not (detail["type"] == "too_short" and detail["loc"] in failed_inside)
    ]


def _field(loc: tuple[int | str, ...], error_type: str, raw: dict[str, Any]) -> str:
    """``items[2] (id 'fractions').scoring.value``: the path as the author would look for it.

    pydantic's location also holds levels the YAML lacks (a rule's type tag, a union's branch
    name); walking the raw document alongside tells them apart from the author's fields.
    """
    parts: list[str] = []
    node: Any = raw
    for position, part in enumerate(loc):
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            item_id = node.get("id") if isinstance(node, dict) else None
            label = f"[{part}]" + (f" (id {item_id!r})" if isinstance(item_id, str) else "")
            parts[-1:] = [(parts[-1] if parts else "") + label]
        elif isinstance(node, dict) and part in node:
            node = node[part]
            parts.append(part)
        elif position == len(loc) - 1 and error_type in ("missing", "extra_forbidden"):
            parts.append(part)
        # else: a level pydantic adds (rule tag, union branch): not in the YAML, not shown
    return ".".join(parts) or "(template)"


def _message(detail: Any) -> str:
    if detail["type"] == "extra_forbidden":
        return "unknown field"
    return str(detail["msg"]).removeprefix("Value error, ")
