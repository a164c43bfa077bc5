"""Refusals of the application itself, beside the aggregate's own (``domain.errors``)."""

from __future__ import annotations


class IdempotencyKeyReused(Exception):
    """A command id already applied came back for another request: an Idempotency-Key sent
    again with another body or route. Refused before anything is decided, so nothing is
    written; not a ``DomainError``, as no invariant of the agent is involved."""
