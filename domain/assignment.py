"""Who may use an agent besides its owner, and how."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from domain.enums import AssignmentRole
from domain.value_object import ValueObject


class AgentAssignment(ValueObject):
    user_id: str = Field(min_length=1)
    role: AssignmentRole
    assigned_by: str = Field(min_length=1)
    assigned_at: datetime
