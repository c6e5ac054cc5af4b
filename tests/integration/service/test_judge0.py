"""The real judge0 SDK, unchanged but for its endpoint and auth header, against the whole service.

The SDK always sends base64_encoded=true and polls GET /submissions(/batch) until each
submission is done; a list of test cases goes through the batch routes.
"""

from __future__ import annotations

import httpx
import judge0
import pytest
from judge0 import LanguageAlias, Status

from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]


def _client(stack: ServiceStack, tenant: str) -> judge0.Client:
    key = stack.key(tenant)["Authorization"].removeprefix("Bearer ")
    return judge0.Client(f"{stack.url}/judge0", {"X-Auth-Token": key})


@pytest.fixture(scope="module")
def client(stack: ServiceStack) -> judge0.Client:
    return _client(stack, "judge0-a")


def test_hello_world_is_accepted(client: judge0.Client) -> None:
    result = judge0.run(client=client, source_code='print("hello")', language=LanguageAlias.PYTHON)
    assert (result.status, result.stdout, result.exit_code) == (Status.ACCEPTED, "hello\n", 0)
    assert result.time is not None
    assert result.wall_time is not None


def test_stdin_reaches_the_program(client: judge0.Client) -> None:
    result = judge0.run(client=client, source_code="print(input()[::-1])", language=71, stdin="abc")
    assert result.stdout == "cba\n"


def test_expected_output_is_judged_accepted_or_wrong_answer(client: judge0.Client) -> None:
    results = judge0.run(
        client=client,
        source_code="print(int(input()) * 2)",
        language=71,
        test_cases=[("2", "4  \n\n"), ("3", "7"), ("5", "10")],
    )
    assert [result.status for result in results] == [
        Status.ACCEPTED,
        Status.WRONG_ANSWER,
        Status.ACCEPTED,
    ]


def test_a_non_zero_exit_is_nzec(client: judge0.Client) -> None:
    result = judge0.run(
        client=client, source_code="echo oops >&2\nexit 3", language=LanguageAlias.BASH
    )
    assert (result.status, result.exit_code, result.stderr) == (
        Status.RUNTIME_ERROR_NZEC,
        3,
        "oops\n",
    )


def test_a_run_over_its_wall_time_limit_is_tle(client: judge0.Client) -> None:
    result = judge0.run(
        client=client,
        source_code="import time\ntime.sleep(30)",
        language=71,
        wall_time_limit=1,
    )
    assert result.status == Status.TIME_LIMIT_EXCEEDED


def test_text_that_is_not_ascii_survives_base64_both_ways(client: judge0.Client) -> None:
    result = judge0.run(
        client=client,
        source_code="print(input() + ' ✓')",
        language=71,
        stdin="héllo",
        expected_output="héllo ✓",
    )
    assert (result.status, result.stdout) == (Status.ACCEPTED, "héllo ✓\n")


def test_a_bad_language_is_judge0s_422(stack: ServiceStack) -> None:
    response = httpx.post(
        f"{stack.url}/judge0/submissions",
        json={"source_code": "print(1)", "language_id": 62},
        headers={"X-Auth-Token": stack.key("judge0-b")["Authorization"].removeprefix("Bearer ")},
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json() == {"language_id": ["language with id 62 doesn't exist"]}


def test_another_tenants_token_is_404(stack: ServiceStack, client: judge0.Client) -> None:
    mine = judge0.async_run(client=client, source_code="print(1)", language=71)
    assert client.get_submission(mine).status is not None  # the owner sees it
    stranger = _client(stack, "judge0-c")
    with pytest.raises(httpx.HTTPStatusError) as refused:
        stranger.get_submission(mine)
    assert refused.value.response.status_code == 404
    assert list(refused.value.response.json()) == ["error"]


def test_wait_true_answers_with_the_finished_submission(stack: ServiceStack) -> None:
    response = httpx.post(
        f"{stack.url}/judge0/submissions",
        params={"wait": "true", "fields": "stdout,status,exit_code"},
        json={"source_code": "echo $((6 * 7))", "language_id": 46, "expected_output": "42"},
        headers={"X-Auth-Token": stack.key("judge0-d")["Authorization"].removeprefix("Bearer ")},
        timeout=120,
    )
    assert response.status_code == 201
    assert response.json() == {
        "stdout": "42\n",
        "status": {"id": 3, "description": "Accepted"},
        "exit_code": 0,
    }
