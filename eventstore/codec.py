"""Domain events <-> CloudEvents envelopes: the one place the domain meets the store."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID, uuid4

from domain.events import AGENT_EVENTS, DomainEvent, EventRegistry
from eventstore.port import DEFAULT_SOURCE, NewEvent, RecordedEvent


def to_envelope(
    event: DomainEvent,
    event_id: UUID | None = None,
    *,
    source: str = DEFAULT_SOURCE,
    registry: EventRegistry = AGENT_EVENTS,
    extensions: Mapping[str, str] | None = None,
) -> NewEvent:
    """Wrap a domain event; pass ``event_id`` to make a retried append idempotent, and
    ``extensions`` for what the envelope carries beside the event (see NewEvent)."""
    event_type, data = registry.encode(event)
    return NewEvent(
        type=event_type,
        data=data,
        subject=event.agent_id,
        id=event_id or uuid4(),
        source=source,
        time=event.occurred_at,
        extensions=extensions or {},
    )


def from_envelope(recorded: RecordedEvent, registry: EventRegistry = AGENT_EVENTS) -> DomainEvent:
    """Decode (and upcast) a stored event into its domain class."""
    return registry.decode(recorded.type, dict(recorded.data))
