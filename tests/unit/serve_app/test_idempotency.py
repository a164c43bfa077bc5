"""The Idempotency-Key at the edge: which command id a key gives, and what a request's
fingerprint does and does not depend on."""

from __future__ import annotations

from uuid import uuid4

from serve_app.idempotency import FINGERPRINT_LENGTH, command_id_for, request_fingerprint

ROUTE = "/api/agents/{agent_id}/preferences"
AGENT = "5f0c3b1e-8a0d-4f7e-9a51-2d3c4b5a6978"


def fingerprint(
    body: bytes = b'{"changes": {"language": "fr", "theme": "dark"}}',
    *,
    method: str = "PATCH",
    route: str = ROUTE,
    path: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
) -> str:
    return request_fingerprint(
        method, route, {"agent_id": AGENT} if path is None else path, query or [], body
    )


def test_a_fingerprint_is_a_short_hex_digest() -> None:
    found = fingerprint()
    assert len(found) == FINGERPRINT_LENGTH
    assert int(found, 16) >= 0
    assert found == fingerprint()


def test_key_order_and_whitespace_do_not_change_the_fingerprint() -> None:
    assert fingerprint() == fingerprint(b'{"changes":{"theme":"dark","language":"fr"}}')
    assert fingerprint() == fingerprint(b'\n{ "changes" :\t{"theme": "dark",\n "language": "fr"}} ')
    assert fingerprint(query=[("b", "2"), ("a", "1")]) == fingerprint(
        query=[("a", "1"), ("b", "2")]
    )


def test_the_body_changes_the_fingerprint() -> None:
    assert fingerprint() != fingerprint(b'{"changes": {"language": "de", "theme": "dark"}}')
    assert fingerprint() != fingerprint(b"")
    assert fingerprint(b"[1, 2]") != fingerprint(b"[2, 1]")  # arrays keep their order


def test_the_route_method_path_and_query_change_the_fingerprint() -> None:
    base = fingerprint(b"")
    assert base != fingerprint(b"", route="/api/agents/{agent_id}/archive")
    assert base != fingerprint(b"", method="POST")
    assert base != fingerprint(b"", path={"agent_id": str(uuid4())})
    assert base != fingerprint(b"", query=[("reason", "Done")])
    assert fingerprint(b"", query=[("reason", "a")]) != fingerprint(b"", query=[("reason", "b")])


def test_a_body_that_is_not_json_still_has_a_fingerprint() -> None:
    assert fingerprint(b"{not json") != fingerprint(b"{not json!")
    assert len(fingerprint(b"\xff\xfe")) == FINGERPRINT_LENGTH


def test_a_key_gives_one_command_id_per_user_and_agent() -> None:
    key, other_agent = uuid4(), str(uuid4())
    assert command_id_for("olga", AGENT, key) == command_id_for("olga", AGENT, key)
    ids = {
        command_id_for("olga", AGENT, key),
        command_id_for("tess", AGENT, key),
        command_id_for("olga", other_agent, key),
        command_id_for("olga", AGENT, uuid4()),
        key,
    }
    assert len(ids) == 5
    # No separator can make two (user, agent) pairs meet.
    assert command_id_for("a|b", "c", key) != command_id_for("a", "b|c", key)


def test_without_a_key_every_write_gets_a_fresh_command_id() -> None:
    assert command_id_for("olga", AGENT, None) != command_id_for("olga", AGENT, None)
