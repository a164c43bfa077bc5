"""`make run`: the whole service on this machine, on the embedded defaults.

Starts a local Ray instance, the projector, the agent hosts (lazily, on first use) and the
Ray Serve HTTP front with the web UI (built by `make run` before this), then prints the URL,
a sign-in link, a development token and a curl walk-through.
Relative SQLite paths are made absolute first, so every Ray process opens the same files.
Ctrl-C stops everything (the local Ray instance goes with it).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from urllib.parse import urlsplit

import ray
from rich.console import Console

from actors.session_sweeper import sweeper_handle
from actors.settings import Settings
from eventstore.factory import sqlite_path
from serve_app.auth import AuthSettings, mint_dev_token
from serve_app.deployment import deploy
from serve_app.settings import ApiSettings

DEV_USER = "dev"
SQLITE_PREFIX = "sqlite:///"


def absolute_sqlite(url: str) -> str:
    """``sqlite:///var/x.db`` -> ``sqlite:////<cwd>/var/x.db``; other URLs unchanged."""
    if urlsplit(url).scheme != "sqlite":
        return url
    return SQLITE_PREFIX + str(Path(sqlite_path(url)).resolve())


def main() -> None:
    console = Console()
    defaults = Settings()
    for key, default in (
        ("AGENTHOST_EVENT_STORE_URL", defaults.event_store_url),
        ("AGENTHOST_READ_MODEL_URL", defaults.read_model_url),
    ):
        os.environ[key] = absolute_sqlite(os.environ.get(key, default))
    auth = AuthSettings()
    if auth.oidc_issuer is None and auth.jwt_secret is None:
        os.environ["AGENTHOST_AUTH_DEV_SECRET_FILE"] = str(auth.dev_secret_file.resolve())
        auth = AuthSettings()
    settings, api = Settings(), ApiSettings()

    ray.init(namespace=settings.ray_namespace, include_dashboard=False, log_to_driver=False)
    url = deploy(api, settings)
    sweeper_handle(settings)
    token = mint_dev_token(auth, DEV_USER, roles=("admin",)) if auth.oidc_issuer is None else None

    console.print(f"[bold green]Agent Host is up[/] at {url}  (OpenAPI: {url}/docs)")
    if token is not None:
        console.print(f"Web UI, signed in as [bold]{DEV_USER}[/]:")
        print(f"  {url}/#token={token}", flush=True)  # plain print: keep the link whole
    console.print(f"Event store: {settings.event_store_url}")
    console.print(f"Read model:  {settings.read_model_url}")
    if token is not None:
        console.print(f"\nDevelopment token for user [bold]{DEV_USER}[/] (admin):")
        print(token, "\n", flush=True)  # plain print: a wrapped token cannot be copied
        print(
            "Try:\n"
            f'  export TOKEN="{token}"\n'
            f'  curl -s -X POST {url}/api/agents -H "Authorization: Bearer $TOKEN" '
            "-H 'content-type: application/json' -d '{\"agent_type\": \"tutor\"}'\n"
            f'  curl -s -X POST {url}/api/agents/<id>/sessions -H "Authorization: Bearer $TOKEN" '
            "-H 'content-type: application/json' -d '{}'\n"
            f"  curl -s -X POST {url}/api/agents/<id>/session/respond "
            "-H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' "
            '-d \'{"tool_call_id": "times-7x8", "response": {"selection": "56"}}\'\n'
            "More tokens: .venv/bin/python -m serve_app.tokens mint --user alice",
            flush=True,
        )
    console.print("Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
