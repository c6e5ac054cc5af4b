"""The ``agent-client`` command: run a team from a spec or the preset, or print the spec schema.

Unlike the library, the CLI reads the environment: the keys named in a spec, and
``AGENT_SANDBOX_KEY`` / ``OPENAI_API_KEY`` as defaults for the preset's flags.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from rich.console import Console

from agent_client.console import console
from agent_client.errors import AgentClientError, ModelError
from agent_client.executors.remote import RemoteExecutor
from agent_client.models.openai_client import DEFAULT_TIMEOUT_S, OpenAIModelClient
from agent_client.service.client import ExecutionClient
from agent_client.spec import load_spec, preset_style, team_spec_schema
from agent_client.studio import command as studio_command
from agent_client.team_builder import open_team
from agent_client.teams.planner_coder_reviewer import (
    STYLES,
    planner_coder_reviewer,
    style_options,
)


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


LOCAL_MODEL_HINT = "`bash scripts/local-model.sh` starts a local one"
LOCAL_SERVICE_HINT = "`bash scripts/start.sh` starts it"
PREFLIGHT_TIMEOUT_S = 5.0


async def _unanswered(url: str) -> str | None:
    """Why nothing answers at `url`, or None when anything HTTP does (even an error status).

    Asked once before a run, because the model client's retries take ~16 s to report a server
    that is not running, and then only as "Connection error.".
    """
    try:
        async with httpx.AsyncClient(timeout=PREFLIGHT_TIMEOUT_S) as http:
            await http.get(url)
    except httpx.ReadTimeout:
        # It took the connection and is busy (a local model server answers one request at a
        # time, even /models): it is there.
        return None
    except httpx.TransportError as exc:
        return str(exc) or type(exc).__name__
    return None


async def _preflight(out: Console, models: Sequence[str], services: Sequence[str]) -> bool:
    """Name every model server and sandbox service that does not answer; True if all do."""
    asked = [(url, f"{url.rstrip('/')}/models", "model server", LOCAL_MODEL_HINT) for url in models]
    asked += [
        (url, f"{url.rstrip('/')}/healthz", "sandbox service", LOCAL_SERVICE_HINT)
        for url in services
    ]
    reasons = await asyncio.gather(*(_unanswered(probe) for _, probe, _, _ in asked))
    for (url, _, what, hint), reason in zip(asked, reasons, strict=True):
        if reason is not None:
            out.print(
                f"[red]error:[/red] the {what} at {url} did not answer ({reason}); {hint}",
                markup=True,
                highlight=False,
            )
    return all(reason is None for reason in reasons)


async def _run(args: argparse.Namespace, out: Console) -> int:
    if args.spec is not None:
        spec = load_spec(Path(args.spec))
        models = sorted({model.base_url for model in spec.models.values()})
        services = [spec.executor.service_url] if spec.executor is not None else []
        if not await _preflight(out, models, services):
            return 1
        async with open_team(spec, env=os.environ) as team:
            await console(team.run_stream(args.task), output=out)
        return 0
    missing = [
        flag
        for flag, value in (
            ("--model-url", args.base_url),
            ("--model", args.model),
            ("--service-url", args.service_url),
            ("--service-key", args.service_key),
        )
        if not value
    ]
    if missing:
        out.print(f"without a spec, give {', '.join(missing)}", highlight=False)
        return 2
    if not await _preflight(out, [args.base_url], [args.service_url]):
        return 1
    model = OpenAIModelClient(
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        temperature=args.temperature,
        timeout_s=args.timeout_s,
        max_tokens=args.max_tokens,
    )
    try:
        async with (
            ExecutionClient(args.service_url, args.service_key) as client,
            RemoteExecutor(client, policy=args.policy) as executor,
        ):
            options = style_options(
                preset_style(args.style, args.tester), max_rounds=args.max_rounds
            )
            team = planner_coder_reviewer(model, executor, **options)
            await console(team.run_stream(args.task), output=out)
    finally:
        await model.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-client", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a team on a task and stream the conversation")
    run.add_argument("spec", nargs="?", help="team spec YAML; omit to run the preset")
    run.add_argument("--task", required=True)
    run.add_argument(
        "--model-url",
        "--base-url",
        dest="base_url",
        metavar="URL",
        help="the model server's OpenAI-compatible root, e.g. http://localhost:8080/v1 (preset)",
    )
    run.add_argument("--model", help="model name the model server serves (preset)")
    run.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY", "none"),
        help="the model server's key (default: $OPENAI_API_KEY, else 'none' for local servers)",
    )
    run.add_argument("--temperature", type=float, default=None)
    run.add_argument(
        "--service-url",
        metavar="URL",
        default="http://127.0.0.1:8000",
        help="the sandbox service (executor-service) that runs the code (default: %(default)s)",
    )
    run.add_argument(
        "--service-key",
        default=os.environ.get("AGENT_SANDBOX_KEY"),
        help="an API key of the sandbox service (default: $AGENT_SANDBOX_KEY)",
    )
    run.add_argument("--policy", default=None, help="sandbox policy (preset)")
    run.add_argument(
        "--max-rounds",
        type=int,
        default=None,
        help="preset: the coder's programs before it stops (default: the style's, or 5)",
    )
    run.add_argument(
        "--style",
        choices=STYLES,
        default=None,
        help="preset: reviewed (default; a reviewer approves a run that exited 0), tested (a "
        "tester's asserts and the task's >>> examples decide), sampled (the task's examples "
        "decide; after two programs, fresh candidates are sampled and the tests choose: the "
        "style that beats one model call with a small model)",
    )
    run.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="cap on each model answer, every role (preset; a spec sets it per agent). A local "
        "server without one may generate until its context is full",
    )
    run.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="per model call (preset; default %(default)s: a small model on CPU is slow); a "
        "call that times out ends that turn, not the run",
    )
    run.add_argument(
        "--tester",
        action="store_true",
        help="preset: the same as --style tested: a tester writes asserts from the task (and its "
        ">>> examples count as tests); only a program that passes them all counts as verified",
    )
    sub.add_parser("schema", help="print the team-spec JSON Schema")
    studio_command.add_parser(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("agent-sandbox")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree never installed
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
