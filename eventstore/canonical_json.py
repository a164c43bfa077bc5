"""The one rule for event data and snapshot state: plain JSON, the same in every adapter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def dumps(data: Mapping[str, Any]) -> str:
    """Compact JSON text; ValueError for NaN/Infinity, which are not JSON (and which PostgreSQL's
    jsonb would refuse), so no adapter stores what another would read differently."""
    return json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
