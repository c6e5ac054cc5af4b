"""The `executor-service` command's entry point: says which extra to install when the service's
dependencies are missing (`pip install agent-sandbox` alone is the agent client)."""

from __future__ import annotations

import sys

# Top-level modules of the `service` extra (and what they bring) that executor_service imports.
SERVICE_MODULES = frozenset(
    {
        "anyio",
        "celery",
        "docker",
        "fastapi",
        "fastapi_offline",
        "h11",
        "kombu",
        "mcp",
        "prometheus_client",
        "pydantic_settings",
        "redis",
        "requests",
        "starlette",
        "structlog",
        "uvicorn",
    }
)


def main() -> int:
    """Run `executor-service`, or explain in one line why it cannot run here."""
    try:
        from executor_service.cli import main as cli_main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SERVICE_MODULES:
            raise
        print(
            f"executor-service: the service's dependencies are not installed (no module "
            f"{missing!r}): install the `service` extra, pip install 'agent-sandbox[service]' "
            "(in the checkout: uv sync)",
            file=sys.stderr,
        )
        return 2
    return cli_main()
