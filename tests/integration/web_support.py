"""Running the browser tests (web/e2e, node:test + playwright-core) against a live service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from execution.templates.loader import load_templates
from execution.templates.model import right_answer

from .api_support import deployed_api

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
E2E_TIMEOUT_S = 240


def require_browser_setup() -> None:
    """Missing pieces fail the test with the command that provides them (never a skip)."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web UI is not built: run `make web` (make test does)")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.fail("web/node_modules is missing: run `make web` (make test does)")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (make test does)")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH")


@contextmanager
def web_service(workdir: Path, **deploy: Any) -> Iterator[str]:
    """The service with its UI for browser specs (``deploy``: see ``deployed_api``)."""
    require_browser_setup()
    with deployed_api(workdir, **deploy) as (url, _):
        yield url


def right_answers(*template_ids: str) -> dict[str, str]:
    """prompt -> the text a user would enter or pick, for every item with one right answer."""
    templates = load_templates()
    answers: dict[str, str] = {}
    for template_id in template_ids:
        for item in templates[template_id].planned_items:
            try:
                answer = right_answer(item)
            except ValueError:
                continue
            assert isinstance(answer, dict)
            value = answer.get("selection", answer.get("text"))
            if "index" in answer:
                options = item.widget.arguments["options"]
                value = options[answer["index"]]
            answers[item.prompt] = str(value)
    return answers


def run_e2e(spec: str, env: dict[str, str], screenshots: Path) -> None:
    """One spec file in node's test runner; its TAP output is the failure message."""
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", f"e2e/{spec}"],
        cwd=WEB,
        env={
            **os.environ,
            **env,
            "AGENTHOST_SCREENSHOTS": str(screenshots),
            "CHROMIUM_PATH": str(CHROMIUM),
        },
        capture_output=True,
        text=True,
        timeout=E2E_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{spec} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)


def answers_env(*template_ids: str) -> dict[str, str]:
    return {"AGENTHOST_ANSWERS": json.dumps(right_answers(*template_ids))}
