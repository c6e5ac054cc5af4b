"""The README's examples run as written against a live service, so they cannot rot (issue 11).

Each `sh` and `python` block carries a mark (see readme_blocks). The shell blocks marked `run` go
through one bash, in order, as a reader pastes them into one terminal (`export KEY=...` first);
each Python block runs on its own. Both run in a directory whose `.state` is the live service's
state directory, with the README's port replaced by the service's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.docs.readme_blocks import README, Block, readme_blocks
from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

ROOT = README.parent
README_ADDRESSES = ("localhost:8000", "127.0.0.1:8000")
BLOCK_TIMEOUT_S = 120  # a hung example fails instead of stalling the suite
_SEPARATOR = "@@readme-block {line}@@"


def _for(stack: ServiceStack, code: str) -> str:
    address = stack.url.removeprefix("http://")
    for written in README_ADDRESSES:
        code = code.replace(written, address)
    return code


@pytest.fixture
def checkout(tmp_path: Path, stack: ServiceStack) -> Path:
    """Where the examples run: `.state` is the service's state directory (its first key)."""
    (tmp_path / ".state").symlink_to(stack.state_dir)
    return tmp_path


@pytest.fixture
def env(stack: ServiceStack) -> dict[str, str]:
    return {
        **os.environ,
        "EXECUTOR_REDIS_URL": stack.redis.url,  # `executor-service keys` reach this service's keys
        "UV_PROJECT": str(ROOT),  # `uv run` from the checkout, though the cwd is elsewhere
        "UV_NO_SYNC": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _missing(block: Block, printed: str) -> list[str]:
    return [text for text in block.expect if text not in printed]


def test_every_sh_and_python_block_is_marked_run_or_skip_with_a_reason() -> None:
    blocks = readme_blocks()
    assert any(block.run for block in blocks)
    assert all(block.reason for block in blocks if not block.run)


def test_the_shell_examples_run_in_one_terminal(
    stack: ServiceStack, checkout: Path, env: dict[str, str]
) -> None:
    blocks = [block for block in readme_blocks() if block.run and block.language == "sh"]
    script = "set -eo pipefail\n" + "".join(
        f"echo '{_SEPARATOR.format(line=block.line)}'\n{_for(stack, block.code)}"
        for block in blocks
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S * len(blocks),
        check=False,
    )
    printed = {}
    for block in blocks:
        marker = _SEPARATOR.format(line=block.line) + "\n"
        _, found, rest = done.stdout.partition(marker)
        printed[block.line] = rest.split("@@readme-block ", 1)[0] if found else None
    unrun = [str(block) for block in blocks if printed[block.line] is None]
    assert done.returncode == 0, f"stopped in {unrun[:1] or 'the last block'}:\n{done.stderr}"
    for block in blocks:
        assert not _missing(block, printed[block.line] or ""), (
            f"{block} printed:\n{printed[block.line]}\nstderr:\n{done.stderr}"
        )


PYTHON_BLOCKS = [block for block in readme_blocks() if block.run and block.language == "python"]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"line{b.line}" for b in PYTHON_BLOCKS])
def test_a_python_example_runs_as_written(
    block: Block, stack: ServiceStack, checkout: Path, env: dict[str, str]
) -> None:
    program = checkout / f"readme_{block.line}.py"
    program.write_text(_for(stack, block.code))
    done = subprocess.run(
        [sys.executable, program.name],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stderr}"
    assert not _missing(block, done.stdout), f"{block} printed:\n{done.stdout}\n{done.stderr}"
