"""``agent-client studio``: its flags, and starting the server (its extra dependencies load only
when the command runs, so the rest of the CLI works without the ``studio`` extra).

Like the rest of the CLI it reads the environment: ``AGENT_STUDIO_TOKEN`` as the token.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def add_parser(sub: Any) -> None:
    """Add the ``studio`` subcommand to the CLI's subparsers."""
    studio = sub.add_parser("studio", help="design, run and inspect agent teams in the browser")
    studio.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    studio.add_argument("--port", type=int, default=8765)
    studio.add_argument(
        "--token",
        default=os.environ.get("AGENT_STUDIO_TOKEN"),
        help="required off loopback; open /?token=... once in the browser",
    )
    studio.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL for history and connections (default: ~/.agent-client/studio.db)",
    )
    studio.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="[NAME=]MODULE:FUNCTION",
        help="register a tool teams may use (repeatable); the page can only pick these",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: they need the studio extra (SQLAlchemy), which other commands do not.
    from agent_client.studio.server import serve
    from agent_client.studio.settings import StudioSettings

    database_url = args.database_url
    if database_url is None:
        folder = Path.home() / ".agent-client"
        folder.mkdir(mode=0o700, exist_ok=True)
        database_url = f"sqlite:///{folder / 'studio.db'}"
    try:
        settings = StudioSettings(
            host=args.host,
            port=args.port,
            token=args.token,
            database_url=database_url,
            tools=tuple(args.tool),
        )
    except ValidationError as exc:
        for error in exc.errors():
            sys.stderr.write(f"agent-client studio: {error['msg']}\n")
        return 2
    sys.stderr.write(f"studio: http://{args.host}:{args.port}/\n")
    serve(settings)
    return 0
