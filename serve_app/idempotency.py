"""Idempotency-Key: the command id a write is applied under, so a retry is applied once."""

from __future__ import annotations

from uuid import UUID, uuid4


def command_id_for(key: UUID | None) -> UUID:
    """The key itself (a retry re-sends it), or a fresh id for a write sent without one."""
    return key or uuid4()
