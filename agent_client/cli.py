"""The ``agent-client`` command: run a team from a spec or the preset, or print the spec schema.

Unlike the library, the CLI reads the environment: the keys named in a spec, and
``AGENT_SANDBOX_KEY`` / ``OPENAI_API_KEY`` as defaults for the preset's flags.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from agent_client.console import console
from agent_client.errors import AgentClientError, ModelError
from agent_client.executors.remote import RemoteExecutor
from agent_client.models.openai_client import OpenAIModelClient
from agent_client.service.client import ExecutionClient
from agent_client.spec import load_spec, team_spec_schema
from agent_client.studio import command as studio_command
from agent_client.team_builder import open_team
from agent_client.teams.planner_coder_reviewer import planner_coder_reviewer


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.command == "schema":
        sys.stdout.write(team_spec_schema())
        return 0
    if args.command == "studio":
        return studio_command.run(args)
    out = Console()
    try:
        return asyncio.run(_run(args, out))
    except AgentClientError as exc:
        out.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        if isinstance(exc, ModelError) and exc.status_code is None:  # no HTTP answer at all
            where = args.base_url or "the spec's base_url"
            out.print(
                f"the model server at {where} did not answer (not running, or slower than the "
                "client's timeout); `bash scripts/local-model.sh` starts a local one",
                highlight=False,
            )
        return 1
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, out: Console) -> int:
    if args.spec is not None:
        spec = load_spec(Path(args.spec))
        async with open_team(spec, env=os.environ) as team:
            await console(team.run_stream(args.task), output=out)
        return 0
    missing = [
        flag
        for flag, value in (
            ("--base-url", args.base_url),
            ("--model", args.model),
            ("--service-url", args.service_url),
            ("--service-key", args.service_key),
        )
        if not value
    ]
    if missing:
        out.print(f"without a spec, give {', '.join(missing)}", highlight=False)
        return 2
    model = OpenAIModelClient(
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        temperature=args.temperature,
    )
    try:
        async with (
            ExecutionClient(args.service_url, args.service_key) as client,
            RemoteExecutor(client, policy=args.policy) as executor,
        ):
            team = planner_coder_reviewer(model, executor, max_rounds=args.max_rounds)
            await console(team.run_stream(args.task), output=out)
    finally:
        await model.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-client", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a team on a task and stream the conversation")
    run.add_argument("spec", nargs="?", help="team spec YAML; omit to run the preset")
    run.add_argument("--task", required=True)
    run.add_argument("--base-url", help="OpenAI-compatible endpoint (preset)")
    run.add_argument("--model", help="model name (preset)")
    run.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "none"))
    run.add_argument("--temperature", type=float, default=None)
    run.add_argument("--service-url", help="sandbox service URL (preset)")
    run.add_argument("--service-key", default=os.environ.get("AGENT_SANDBOX_KEY"))
    run.add_argument("--policy", default=None, help="sandbox policy (preset)")
    run.add_argument("--max-rounds", type=int, default=5)
    sub.add_parser("schema", help="print the team-spec JSON Schema")
    studio_command.add_parser(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
