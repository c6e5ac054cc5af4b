"""JavaScript over the real API, and one session's workspace shared by bash, Python and Node."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]


def run(stack: ServiceStack, language: str, code: str, **fields: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/executions",
        json={"language": language, "code": code, "wait": True, "wait_timeout_s": 60, **fields},
        headers=stack.key("acme"),
        timeout=90,
    )


def result_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "finished", body
    result: dict[str, Any] = body["result"]
    return result


def refusal(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return error


def test_javascript_prints_reads_stdin_and_reports_exit_codes_errors_and_timeouts(
    stack: ServiceStack,
) -> None:
    hello = result_of(run(stack, "javascript", "console.log(`hello from ${process.release.name}`)"))
    assert (hello["status"], hello["exit_code"], hello["stdout"]) == ("ok", 0, "hello from node\n")

    upper = "console.log(require('fs').readFileSync(0, 'utf8').toUpperCase())"
    echoed = result_of(run(stack, "javascript", upper, stdin="abc"))
    assert echoed["stdout"] == "ABC\n"

    exited = result_of(run(stack, "javascript", "console.error('bad');\nprocess.exit(3);"))
    assert (exited["status"], exited["exit_code"], exited["stderr"]) == ("error", 3, "bad\n")

    thrown = result_of(run(stack, "javascript", "throw new Error('boom');"))
    assert (thrown["status"], thrown["exit_code"]) == ("error", 1)
    assert "Error: boom" in thrown["stderr"]

    spun = result_of(run(stack, "javascript", "for (;;) {}", limits={"wall_time_s": 2}))
    assert (spun["status"], spun["exit_code"]) == ("timeout", None)


def test_bash_python_and_javascript_blocks_share_one_sessions_workspace(
    stack: ServiceStack,
) -> None:
    acme = stack.key("acme")
    base = f"{stack.url}/v1/sessions"
    created = httpx.post(base, json={"language": "python"}, headers=acme, timeout=60)
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    try:
        steps = [
            ("bash", "echo from-bash > shared.txt"),
            ("python", "open('shared.txt', 'a').write('from-python\\n')"),
            (
                "javascript",
                "const fs = require('fs');\n"
                "fs.appendFileSync('shared.txt', 'from-node\\n');\n"
                "process.stdout.write(fs.readFileSync('shared.txt', 'utf8'));",
            ),
        ]
        outputs = [
            result_of(run(stack, language, code, session_id=session)) for language, code in steps
        ]
        assert [output["status"] for output in outputs] == ["ok", "ok", "ok"], outputs
        assert outputs[-1]["stdout"] == "from-bash\nfrom-python\nfrom-node\n"
        # Back to bash: the same workspace, with each language's own program file beside it.
        listed = result_of(run(stack, "bash", "ls main.* shared.txt", session_id=session))
        assert listed["stdout"].split() == ["main.js", "main.py", "main.sh", "shared.txt"]
        # The record keeps the language it was opened for.
        assert httpx.get(f"{base}/{session}", headers=acme).json()["language"] == "python"
    finally:
        httpx.delete(f"{base}/{session}", headers=acme, timeout=60)


def test_a_language_the_sessions_image_lacks_is_refused_naming_what_it_runs(
    stack: ServiceStack,
) -> None:
    acme = stack.key("acme")
    base = f"{stack.url}/v1/sessions"
    # Under default, a bash session is the small shell image: no Python or Node in it.
    created = httpx.post(base, json={"language": "bash"}, headers=acme, timeout=60)
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    try:
        error = refusal(run(stack, "python", "print(1)", session_id=session))
        assert (error["code"], error["field"]) == ("unknown_language", "language")
        assert "(image 'shell') runs bash, sh, not 'python'" in error["message"]
        assert "open a session with language 'python'" in error["message"]
        assert result_of(run(stack, "sh", "echo still here", session_id=session))["stdout"] == (
            "still here\n"
        )
    finally:
        httpx.delete(f"{base}/{session}", headers=acme, timeout=60)
    # JavaScript has one name on the service; "node" is refused with the names there are.
    error = refusal(run(stack, "node", "console.log(1)"))
    assert error["code"] == "unknown_language"
    assert "runs bash, javascript, python, sh, not 'node'" in error["message"]
