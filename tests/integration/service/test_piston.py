"""The real pistonapi client, unchanged but for its base URL, against the whole running service.

pistonapi takes nothing but an endpoint and sends no headers of its own; requests turns the
URL's `key:<key>@` into HTTP Basic, which the service accepts on Piston's routes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from pistonapi import PistonAPI, PistonError

from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]


def _key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _piston(stack: ServiceStack, key: str) -> PistonAPI:
    url = urlsplit(stack.url)
    return PistonAPI(endpoint=f"{url.scheme}://key:{key}@{url.netloc}/api/v2")


def _execute(stack: ServiceStack, headers: dict[str, str], **body: object) -> httpx.Response:
    return httpx.post(f"{stack.url}/api/v2/execute", json=body, headers=headers, timeout=120)


def test_runtimes_and_hello_world_through_the_client(stack: ServiceStack) -> None:
    piston = _piston(stack, _key(stack.key("piston-a")))
    runtimes = piston.runtimes
    assert runtimes["python"]["version"] == "3.11"
    assert "py" in runtimes["python"]["aliases"]
    assert piston.execute(language="py", version="3", code='print("hello")') == "hello\n"


def test_stdin_and_args_reach_the_program(stack: ServiceStack) -> None:
    piston = _piston(stack, _key(stack.key("piston-b")))
    code = "import sys\nprint(input()[::-1], *sys.argv[1:])"
    assert piston.execute("python", "*", code, stdin="abc", args=["x", "y"]) == "cba x y\n"


def test_a_non_zero_exit_is_pistons_code_and_output(stack: ServiceStack) -> None:
    headers = stack.key("piston-c")
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
    assert _piston(stack, _key(headers)).execute("python", "*", code) == "out\nerr\n"
    run = _execute(
        stack, headers, language="python", version="*", files=[{"content": code}]
    ).json()["run"]
    assert (run["code"], run["signal"], run["status"]) == (3, None, "RE")
    assert (run["stdout"], run["stderr"]) == ("out\n", "err\n")


def test_a_run_over_its_timeout_is_killed(stack: ServiceStack) -> None:
    response = _execute(
        stack,
        stack.key("piston-d"),
        language="python",
        version="*",
        files=[
            {
                "name": "slow.py",
                "content": "import time\nprint('start', flush=True)\ntime.sleep(30)",
            }
        ],
        run_timeout=1500,
    )
    assert response.status_code == 200
    run = response.json()["run"]
    assert (run["status"], run["signal"], run["code"]) == ("TO", "SIGKILL", None)
    assert run["stdout"] == "start\n"


def test_other_files_sit_beside_the_program(stack: ServiceStack) -> None:
    response = _execute(
        stack,
        stack.key("piston-e"),
        language="python3",
        version="3.11",
        files=[
            {"name": "main.py", "content": "import helper\nprint(helper.VALUE)"},
            {"name": "helper.py", "content": "VALUE = 42"},
        ],
    )
    assert response.json()["run"]["stdout"] == "42\n"
    assert response.json()["language"] == "python"


def test_errors_reach_the_client_as_piston_errors(stack: ServiceStack) -> None:
    piston = _piston(stack, _key(stack.key("piston-f")))
    with pytest.raises(PistonError, match="cobol-\\* runtime is unknown"):
        piston.execute("cobol", "*", "DISPLAY 'HI'.")
    with pytest.raises(PistonError, match="unknown or revoked key"):
        _piston(stack, "not-a-key").execute("python", "*", "print(1)")
    over = _execute(
        stack,
        stack.key("piston-f"),
        language="python",
        version="*",
        files=[{"content": "print(1)"}],
        run_memory_limit=64 * 1024**3,
    )
    assert over.status_code == 400
    assert over.json() == {
        "message": "run_memory_limit cannot exceed the configured limit of 268435456"
    }
