"""Templated sessions: the embedded default that teaches and evaluates with no LLM.

A template (YAML, see docs/templates.md) lists items, each a widget plus a scoring rule; the
runner decides the next step of a session from the template and the session's recorded items.
"""

from execution.templates.loader import (
    TemplateError,
    get_template,
    list_templates,
    load_template_file,
    load_templates,
)
from execution.templates.model import (
    CompletionCriteria,
    Evaluation,
    ScoringRule,
    SessionTemplate,
    TemplateItem,
)
from execution.templates.runner import (
    Completion,
    apply_config,
    check_config,
    completion,
    evaluate,
    next_item,
    summary,
)

__all__ = [
    "Completion",
    "CompletionCriteria",
    "Evaluation",
    "ScoringRule",
    "SessionTemplate",
    "TemplateError",
    "TemplateItem",
    "apply_config",
    "check_config",
    "completion",
    "evaluate",
    "get_template",
    "list_templates",
    "load_template_file",
    "load_templates",
    "next_item",
    "summary",
]
