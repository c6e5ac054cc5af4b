"""The README's `agent-client run` example, read from the README so the check runs what it shows."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_PROGRAM = ["uv", "run", "agent-client"]


@dataclass(frozen=True)
class ReadmeCommand:
    """The example's arguments after ``uv run agent-client``, as the shell would pass them."""

    args: tuple[str, ...]

    def value(self, flag: str) -> str:
        return self.args[self.args.index(flag) + 1]

    @property
    def base_url(self) -> str:
        return self.value("--base-url").rstrip("/")

    @property
    def model(self) -> str:
        return self.value("--model")

    def with_base_url(self, base_url: str) -> ReadmeCommand:
        """The same command against a model server elsewhere (another port of local-model.sh)."""
        args = list(self.args)
        args[args.index("--base-url") + 1] = base_url
        return ReadmeCommand(tuple(args))

    def against(self, service_url: str, service_key: str) -> list[str]:
        """The same arguments with the service a test started instead of .state/first-key's."""
        args = list(self.args)
        args[args.index("--service-url") + 1] = service_url
        args[args.index("--service-key") + 1] = service_key
        return args


def readme_cli_command(readme: Path = README) -> ReadmeCommand:
    """The first ```sh block in "## Agents" that runs ``uv run agent-client run`` with flags."""
    text = readme.read_text(encoding="utf-8")
    agents = text[text.index("\n## Agents") :]
    for block in re.findall(r"```sh\n(.*?)```", agents, flags=re.DOTALL):
        words = shlex.split(block.replace("\\\n", " "))
        if words[:4] == [*_PROGRAM, "run"] and "--base-url" in words:
            return ReadmeCommand(tuple(words[len(_PROGRAM) :]))
    raise LookupError(f"{readme} has no `uv run agent-client run --base-url ...` block in Agents")
