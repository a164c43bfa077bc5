"""A refusal must itself be answerable: what a 422 echoes of hostile input (lone surrogates,
NaN, control characters, hostile map keys) never breaks the answer into a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api_client import PROBLEM, as_user
from tests.support.api_flows import new_user

HOSTILE_BODIES = [
    '{"agent_type": "\\ud800"}',
    '{"agent_type": NaN}',
    '{"agent_type": Infinity}',
    '{"agent_type": "tutor", "\\ud800": 1}',
    '{"agent_type": "tutor", "name": {"\\udfff\\u0000": "x"}}',
    '{"agent_type": "tutor", "preferences": {"a": -Infinity}}',
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_a_refused_hostile_body_is_a_clean_422(http: httpx.AsyncClient, body: str) -> None:
    user = new_user("eve")
    refused = await http.post(
        "/api/agents",
        content=body.encode(),
        headers={**as_user(user), "content-type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "validation_failed"
    listed = await http.get("/api/agents", headers=as_user(user))
    assert listed.json() == []


async def test_a_hostile_query_parameter_is_refused_not_a_500(
    api_on_each_read_model: object,
) -> None:
    http = api_on_each_read_model.http  # type: ignore[attr-defined]
    answer = await http.get("/api/agents?agent_type=a%00", headers=as_user(new_user("eve")))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM


async def test_a_hostile_path_is_echoed_bounded(http: httpx.AsyncClient) -> None:
    long_path = "/api/agents/" + "x" * 5000 + "/session"
    answer = await http.get(long_path, headers=as_user(new_user("eve")))
    assert answer.status_code == 404
    assert len(answer.json()["instance"]) <= 201
