"""Base of every event and value object: immutable, validated, lossless through JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class ValueObject(BaseModel):
    """Frozen pydantic model whose dict form is plain JSON (what the event store keeps)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls.model_validate(data)

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes``; a name that is not a field raises ``TypeError`` (a bare
        ``model_copy(update=)`` would store it silently). Values are not re-validated: this runs
        on every event folded, so callers pass values of the field's type."""
        fields = type(self).__pydantic_fields__  # model_fields, minus the property's cost
        for name in changes:
            if name not in fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
        return self.model_copy(update=changes)
