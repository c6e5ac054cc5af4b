"""`executor-service images build [--force] [NAME...]`: the one command that builds images."""

from __future__ import annotations

from collections.abc import Sequence

from executor_service.images.build import build_images
from executor_service.settings import Settings


def build_command(settings: Settings, names: Sequence[str], *, force: bool) -> int:
    """Build, printing the builder's progress as it comes and a summary line at the end.

    Failures are ServiceErrors (ConfigError, SandboxError) for the CLI to print with their code.
    """

    def log(line: str) -> None:
        print(line, flush=True)

    built = build_images(settings, names, force=force, log=log)
    print(f"built: {', '.join(built) if built else 'nothing, all up to date'}", flush=True)
    return 0
