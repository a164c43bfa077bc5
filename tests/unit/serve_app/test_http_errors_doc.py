"""docs/http-errors.md tabulates ``serve_app.problems.RULES``: every row says what the table
answers and every type in the table has a row, so the doc cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serve_app.problems import RULES

DOC = Path(__file__).parents[3] / "docs" / "http-errors.md"
BY_NAME = {error.__name__: error for error in RULES}
TYPE_NAME = re.compile(r"`([A-Z]\w*)`")


def table_rows() -> list[list[str]]:
    """The cells of each body row of the doc's one table (its header and rule line skipped)."""
    lines = [line.strip() for line in DOC.read_text().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def named(error_cell: str) -> list[str]:
    return TYPE_NAME.findall(error_cell)


def test_the_doc_has_the_table_and_names_are_unique() -> None:
    assert len(BY_NAME) == len(RULES)
    assert len(table_rows()) >= 10


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: (named(row[0]) or row)[0])
def test_each_row_says_what_the_table_answers(row: list[str]) -> None:
    error, status, code, retry_after = row

    assert named(error), "a row names the error types it is about"
    for name in named(error):
        assert name in BY_NAME, f"{name} is not in RULES"
        rule = RULES[BY_NAME[name]]
        if rule.status is None:
            assert not status.isdigit(), name
        else:
            assert status == str(rule.status), name
        if rule.code is None:
            assert not re.fullmatch(r"`\w+`", code), f"{name}: the table gives no fixed code"
        else:
            assert code == f"`{rule.code}`", name
        assert retry_after == (rule.retry_after or ""), name


def test_every_type_in_the_table_has_a_row() -> None:
    documented = {name for row in table_rows() for name in named(row[0])}

    assert set(BY_NAME) - documented == set()
