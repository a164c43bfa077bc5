"""The deprecated legacy Session API under /api/session, answered by the agent flow: a legacy
session *is* an agent session, run by the caller's agent of the mapped type. The mapping, the
deprecation headers and why it works this way are in docs/legacy-api.md.
"""

from serve_app.legacy.middleware import DEPRECATION_HEADERS, PREFIX, DeprecationHeaders
from serve_app.legacy.routes import router

__all__ = ["DEPRECATION_HEADERS", "PREFIX", "DeprecationHeaders", "router"]
