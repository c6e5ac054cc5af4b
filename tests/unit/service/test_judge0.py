"""The Judge0 CE mapping: verdicts as Judge0 judges, tokens, wire forms, its errors and its auth."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest

from executor_service.api.compat.judge0_verdict import (
    Judge0Status,
    judge,
    output_digest,
    parse_token,
    strip_output,
    token_for,
)
from executor_service.api.compat.judge0_wire import FIELDS, submission_view
from executor_service.errors import NotFound
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.store import Stores
from executor_service.sandbox.spec import Limits, RunResult, RunStatus
from executor_service.settings import Settings
from tests.unit.service.compat_app import add_key, app_client, finish
from tests.unit.service.records import execution

pytestmark = pytest.mark.redis


def _ended(status: RunStatus, exit_code: int | None, stdout: str = "", **fields: Any) -> Execution:
    result = RunResult.model_validate(
        {"status": status, "exit_code": exit_code, "stdout": stdout, "stderr": "", "wall_time_s": 1}
        | fields
    )
    return execution().model_copy(
        update={"state": ExecutionState.FINISHED, "result": result, "finished_at": utcnow()}
    )


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("a  \nb\t\r\n\n\n", "a\nb"),
        ("x\0 ", "x"),
        ("\n", ""),
        (" lead stays", " lead stays"),
        (None, None),
    ],
)
def test_outputs_are_stripped_as_judge0s_ruby_does(text: str | None, stripped: str | None) -> None:
    assert strip_output(text) == stripped


@pytest.mark.parametrize(
    ("record", "expected", "status", "exit_code", "exit_signal"),
    [
        (_ended(RunStatus.OK, 0, "hello  \n"), None, Judge0Status.ACCEPTED, 0, None),
        (_ended(RunStatus.OK, 0, "hello  \n\n"), "hello", Judge0Status.ACCEPTED, 0, None),
        (_ended(RunStatus.OK, 0, "hello\n"), "Hello", Judge0Status.WRONG_ANSWER, 0, None),
        # Judge0 keeps an empty stdout as nil, which never equals an expected output, even "".
        (_ended(RunStatus.OK, 0, ""), "", Judge0Status.WRONG_ANSWER, 0, None),
        (_ended(RunStatus.TIMEOUT, None), None, Judge0Status.TIME_LIMIT_EXCEEDED, 0, 9),
        (_ended(RunStatus.ERROR, 3), "x", Judge0Status.RUNTIME_ERROR_NZEC, 3, None),
        (_ended(RunStatus.ERROR, 139), None, Judge0Status.RUNTIME_ERROR_SIGSEGV, 0, 11),
        (_ended(RunStatus.ERROR, 136), None, Judge0Status.RUNTIME_ERROR_SIGFPE, 0, 8),
        (_ended(RunStatus.ERROR, 134), None, Judge0Status.RUNTIME_ERROR_SIGABRT, 0, 6),
        (_ended(RunStatus.ERROR, 137), None, Judge0Status.RUNTIME_ERROR_OTHER, 0, 9),
        (_ended(RunStatus.MEMORY_LIMIT, 137), None, Judge0Status.RUNTIME_ERROR_OTHER, 0, 9),
        (_ended(RunStatus.OUTPUT_LIMIT, None), None, Judge0Status.RUNTIME_ERROR_SIGXFSZ, 0, 25),
    ],
)
def test_a_finished_record_is_judged_as_judge0_judges(
    record: Execution,
    expected: str | None,
    status: Judge0Status,
    exit_code: int | None,
    exit_signal: int | None,
) -> None:
    digest = None if expected is None else output_digest(expected)
    verdict = judge(record, digest)
    assert (verdict.status, verdict.exit_code, verdict.exit_signal) == (
        status,
        exit_code,
        exit_signal,
    )


def test_queued_running_failed_and_cancelled_records() -> None:
    queued = execution()
    running = queued.model_copy(update={"state": ExecutionState.RUNNING})
    failed = queued.model_copy(
        update={
            "state": ExecutionState.FAILED,
            "error": ExecutionError(code="worker_lost", message="the worker died"),
        }
    )
    cancelled = queued.model_copy(update={"state": ExecutionState.CANCELLED})
    assert judge(queued, None).status is Judge0Status.IN_QUEUE
    assert judge(running, None).status is Judge0Status.PROCESSING
    assert (judge(failed, None).status, judge(failed, None).message) == (
        Judge0Status.INTERNAL_ERROR,
        "the worker died",
    )
    assert judge(cancelled, None).status is Judge0Status.INTERNAL_ERROR


def test_a_token_carries_the_execution_and_the_expected_outputs_digest() -> None:
    ident = execution().id
    plain = token_for(ident, None)
    assert len(plain) == 36
    assert plain.count("-") == 4
    assert parse_token(plain) == (ident, None)
    judged = token_for(ident, "42\n")
    assert parse_token(judged) == (ident, output_digest("42"))
    assert parse_token(judged.upper()) == (ident, output_digest("42"))
    for bad in ("nope", plain[:-1], plain + "-xyz", ident):
        with pytest.raises(NotFound):
            parse_token(bad)


def test_a_submission_shows_the_fields_asked_for_base64_when_asked() -> None:
    record = _ended(RunStatus.ERROR, 2, "héllo\n", message="exited with code 2", cpu_time_s=0.5)
    view = submission_view(
        record,
        judge(record, None),
        Limits(),
        language=None,
        network=False,
        expected_digest=None,
        fields=FIELDS,
        base64_encoded=True,
    )
    assert base64.b64decode(view["stdout"]).decode() == "héllo\n"
    assert base64.b64decode(view["source_code"]).decode() == "print(1)"
    assert view["status"] == {"id": 11, "description": "Runtime Error (NZEC)"}
    assert (view["exit_code"], view["time"], view["language_id"]) == (2, "0.5", 71)
    # The judge0 SDK parses times with this format.
    datetime.strptime(view["finished_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    few = submission_view(
        record,
        judge(record, None),
        Limits(),
        language=None,
        network=False,
        expected_digest=None,
        fields=("stdout", "status_id"),
        base64_encoded=False,
    )
    assert few == {"stdout": "héllo\n", "status_id": 11}


async def test_x_auth_token_is_a_key_on_judge0s_routes_only(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        languages = await client.get("/judge0/languages", headers={"X-Auth-Token": key})
        bearer = await client.get("/judge0/languages", headers={"Authorization": f"Bearer {key}"})
        none = await client.get("/judge0/languages")
        unknown = await client.get("/judge0/languages", headers={"X-Auth-Token": "nope"})
        v1 = await client.get("/v1/runtimes", headers={"X-Auth-Token": key})
    assert languages.json() == [
        {"id": 46, "name": "Bash (5.2)"},
        {"id": 71, "name": "Python (3.11)"},
    ]
    assert bearer.status_code == 200
    assert none.status_code == 401
    assert list(none.json()) == ["error"]
    assert unknown.json() == {"error": "unknown or revoked key"}
    assert v1.status_code == 401


async def test_a_refused_submission_is_422_field_by_field(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        response = await client.post(
            "/judge0/submissions",
            json={
                "language_id": 9999,
                "wall_time_limit": 1000,
                "memory_limit": 2048,
                "callback_url": "http://example.invalid/",
            },
            headers={"X-Auth-Token": key},
        )
    assert response.status_code == 422
    assert response.json() == {
        "source_code": ["can't be blank"],
        "language_id": ["language with id 9999 doesn't exist"],
        "callback_url": ["setting callback is not allowed"],
        "wall_time_limit": ["must be less than or equal to 30"],
        "memory_limit": ["must be greater than or equal to 16384"],
    }
    assert stores.executions.newest("acme", 10) == []


async def test_submit_then_get_judged_against_the_expected_output(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    other = add_key(stores, "other")
    headers = {"X-Auth-Token": key}
    source = base64.b64encode(b"print(input())").decode()
    async with app_client(service_settings, stores) as client:
        created = await client.post(
            "/judge0/submissions",
            params={"base64_encoded": "true"},
            json={
                "language_id": 71,
                "source_code": source,
                "stdin": base64.b64encode(b"hi").decode(),
                "expected_output": base64.b64encode(b"hi").decode(),
                "cpu_time_limit": 1.5,
                "command_line_arguments": "a 'b c'",
            },
            headers=headers,
        )
        assert created.status_code == 201
        token = created.json()["token"]
        queued = await client.get(f"/judge0/submissions/{token}", headers=headers)
        (record,) = stores.executions.newest("acme", 10)
        assert (record.request.code, record.request.stdin) == ("print(input())", "hi")
        assert record.request.args == ("a", "b c")
        assert record.request.limits is not None
        assert record.request.limits.cpu_time_s == 2
        finish(stores, record.id, stdout="hi   \n\n")
        judged = await client.get(
            f"/judge0/submissions/{token}", params={"fields": "*"}, headers=headers
        )
        theirs = await client.get(f"/judge0/submissions/{token}", headers={"X-Auth-Token": other})
    assert queued.json()["status"] == {"id": 1, "description": "In Queue"}
    assert judged.json()["status"] == {"id": 3, "description": "Accepted"}
    assert judged.json()["cpu_time_limit"] == "2"
    assert judged.json()["language"] == {"id": 71, "name": "Python (3.11)"}
    assert (theirs.status_code, list(theirs.json())) == (404, ["error"])


async def test_batches_answer_item_by_item(service_settings: Settings, stores: Stores) -> None:
    key = add_key(stores, "acme")
    headers = {"X-Auth-Token": key}
    async with app_client(service_settings, stores) as client:
        created = await client.post(
            "/judge0/submissions/batch",
            json={
                "submissions": [
                    {"language_id": 71, "source_code": "print(1)", "expected_output": "2"},
                    {"language_id": 12345, "source_code": "x"},
                    {"language_id": 46, "source_code": "echo 1"},
                ]
            },
            headers=headers,
        )
        assert created.status_code == 201
        first, refused, third = created.json()
        assert refused == {"language_id": ["language with id 12345 doesn't exist"]}
        for record in stores.executions.newest("acme", 10):
            finish(stores, record.id, stdout="1\n")
        tokens = ",".join([first["token"], "0" * 8 + "-0000-0000-0000-" + "0" * 12, third["token"]])
        found = await client.get(
            "/judge0/submissions/batch",
            params={"tokens": tokens, "fields": "status_id,stdout"},
            headers=headers,
        )
        empty = await client.post("/judge0/submissions/batch", json={}, headers=headers)
        bad_fields = await client.get(
            f"/judge0/submissions/{first['token']}", params={"fields": "nope"}, headers=headers
        )
    assert found.json() == {
        "submissions": [
            {"status_id": 4, "stdout": "1\n"},
            None,
            {"status_id": 3, "stdout": "1\n"},
        ]
    }
    assert (empty.status_code, empty.json()) == (
        400,
        {"error": "there should be at least one submission in a batch"},
    )
    assert (bad_fields.status_code, bad_fields.json()) == (400, {"error": "invalid fields: [nope]"})


async def test_config_info_is_the_default_policy_in_judge0s_units(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        config = (await client.get("/judge0/config_info", headers={"X-Auth-Token": key})).json()
        about = (await client.get("/judge0/about", headers={"X-Auth-Token": key})).json()
    assert (config["max_wall_time_limit"], config["max_memory_limit"]) == (30.0, 256 * 1024)
    assert config["enable_callbacks"] is False
    assert about["version"] == "1.13.1"


async def test_a_body_judge0_cannot_read_is_400_and_a_bad_field_422(
    service_settings: Settings, stores: Stores
) -> None:
    headers = {"X-Auth-Token": add_key(stores, "acme"), "Content-Type": "application/json"}
    async with app_client(service_settings, stores) as client:
        not_json = await client.post("/judge0/submissions", content=b"{", headers=headers)
        not_a_number = await client.post(
            "/judge0/submissions",
            json={"language_id": "python", "source_code": "print(1)"},
            headers=headers,
        )
        bad_query = await client.post(
            "/judge0/submissions",
            params={"wait": "perhaps"},
            json={"language_id": 71, "source_code": "print(1)"},
            headers=headers,
        )
    assert not_json.status_code == 400
    assert list(not_json.json()) == ["error"]
    assert not_a_number.status_code == 422
    assert list(not_a_number.json()) == ["language_id"]
    assert bad_query.status_code == 400
    assert list(bad_query.json()) == ["error"]
    assert stores.executions.newest("acme", 10) == []


async def test_an_argument_our_wire_model_refuses_is_judge0s_422(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        response = await client.post(
            "/judge0/submissions",
            json={"language_id": 71, "source_code": "print(1)", "command_line_arguments": "a\x00b"},
            headers={"X-Auth-Token": key},
        )
    assert response.status_code == 422
    assert list(response.json()) == ["command_line_arguments"]
    assert stores.executions.newest("acme", 10) == []
