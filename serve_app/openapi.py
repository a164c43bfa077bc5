"""The OpenAPI document as the app really answers: every error is problem+json.

Routes declare their error statuses with the ``Problem`` model, which FastAPI files under
``application/json``, and FastAPI adds its own 422 schema, which the app never sends (its
handlers answer every error, validation included, as an RFC 9457 problem). So the document
is rewritten once, here: each error answer served as ``application/problem+json`` with the
shared ``Problem`` schema, and every operation with a body also documents the 400 (a body
that is not JSON) and the 413 (a body over the limit) that the body middleware answers.
Answers that are not problems (``/readyz``'s 503 is a ``Health``) are left as they are.

Optional parameters are typed ``X | None`` in Python, which FastAPI documents as "X or null".
A header or query value is sent or it is not, and a literal ``null`` is refused, so each is
documented as plain ``X``, not required.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from serve_app.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
BODY_PROBLEMS = {
    "400": "The body is not JSON (nothing was changed)",
    "413": "The body is larger than the limit (nothing was changed)",
}


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the errors rewritten as problem+json (computed once, cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _errors_as_problems(generate())
        return app.openapi_schema

    return openapi


def _errors_as_problems(spec: dict[str, Any]) -> dict[str, Any]:
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if not parameter.get("required"):
                    parameter["schema"] = _without_null(parameter["schema"])
            responses: dict[str, Any] = operation["responses"]
            if "requestBody" in operation:
                for status, description in BODY_PROBLEMS.items():
                    responses.setdefault(status, {"description": description, "content": {}})
            for status, response in responses.items():
                if status[0] in "45" and _is_problem(response):
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    schemas = spec["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``{"anyOf": [X, {"type": "null"}], ...}`` -> X with the rest of the annotations."""
    choices = schema.get("anyOf")
    if not choices:
        return schema
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest}


def _is_problem(response: dict[str, Any]) -> bool:
    """An error the problem handlers answer: declared with Problem, FastAPI's own 422, or one
    added here (no content yet)."""
    content = response.get("content", {})
    if not content:
        return True
    refs = {media.get("schema", {}).get("$ref") for media in content.values()}
    return bool(refs & {PROBLEM_REF, FASTAPI_VALIDATION_REF})
