"""Mint development tokens: `python -m serve_app.tokens mint --user alice [--role admin]`.

It reads the same AGENTHOST_AUTH_* settings (and so the same dev secret file) as the server,
so the printed token is one the server accepts. Under OIDC only the identity provider signs
tokens, and the command refuses with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from serve_app.auth import AuthSettings, mint_dev_token


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serve_app.tokens", description="Development tokens for the HS256 mode."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    mint = commands.add_parser("mint", help="print a signed token (only the token, on stdout)")
    mint.add_argument("--user", required=True, help="user id (the sub claim)")
    mint.add_argument("--username", help="preferred_username; default: the user id")
    mint.add_argument(
        "--role", dest="roles", action="append", default=[], help="grant a role (repeatable)"
    )
    mint.add_argument(
        "--ttl", type=_positive_int, default=86400, help="lifetime in seconds (default: 86400)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        token = mint_dev_token(
            AuthSettings(), args.user, roles=args.roles, username=args.username, ttl_s=args.ttl
        )
    except ValueError as exc:  # OIDC mode or invalid settings: a usage problem, not a crash
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
