"""The Piston v2 mapping: requests to ours, records to Piston's answers, its errors and its auth."""

from __future__ import annotations

import base64

import pytest

from executor_service.api.compat.piston import (
    PistonExecute,
    PistonFile,
    to_execution,
    to_stage,
    version_matches,
)
from executor_service.errors import InvalidRequest
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.plan import Planner
from executor_service.jobs.store import Stores
from executor_service.sandbox.spec import RunResult, RunStatus
from executor_service.settings import Settings
from tests.unit.service.compat_app import add_key, app_client
from tests.unit.service.records import execution

pytestmark = pytest.mark.redis


@pytest.fixture
def default_policy(service_settings: Settings) -> Planner:
    return Planner.load(service_settings)


def _finished(status: RunStatus, exit_code: int | None, **fields: object) -> RunResult:
    base: dict[str, object] = {"status": status, "exit_code": exit_code, "wall_time_s": 0.5}
    base |= {"stdout": "out\n", "stderr": "err\n"}
    return RunResult.model_validate(base | fields)


def _record(result: RunResult) -> Execution:
    return execution().model_copy(
        update={"state": ExecutionState.FINISHED, "result": result, "finished_at": utcnow()}
    )


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [("*", True), ("3", True), ("3.x", True), ("3.11", True), ("3.12", False), ("2", False)],
)
def test_versions_match_like_a_semver_range_on_our_version(wanted: str, matches: bool) -> None:
    assert version_matches(wanted, "3.11") is matches


@pytest.mark.parametrize(
    ("status", "exit_code", "code", "signal", "isolate"),
    [
        (RunStatus.OK, 0, 0, None, None),
        (RunStatus.ERROR, 3, 3, None, "RE"),
        (RunStatus.ERROR, 139, None, "SIGSEGV", "SG"),
        (RunStatus.TIMEOUT, None, None, "SIGKILL", "TO"),
        (RunStatus.OUTPUT_LIMIT, None, None, "SIGKILL", "OL"),
        (RunStatus.MEMORY_LIMIT, 137, None, "SIGKILL", "SG"),
    ],
)
def test_a_finished_record_is_pistons_run_stage(
    status: RunStatus, exit_code: int | None, code: int | None, signal: str | None, isolate: str
) -> None:
    record = _record(_finished(status, exit_code, cpu_time_s=0.25, memory_peak_bytes=2048))
    stage = to_stage(record)
    assert (stage.code, stage.signal, stage.status) == (code, signal, isolate)
    assert (stage.stdout, stage.stderr, stage.output) == ("out\n", "err\n", "out\nerr\n")
    assert (stage.cpu_time, stage.wall_time, stage.memory) == (250.0, 500.0, 2048)


def test_a_failed_record_is_an_internal_error_with_its_reason() -> None:
    record = execution().model_copy(
        update={
            "state": ExecutionState.FAILED,
            "error": ExecutionError(code="worker_lost", message="the worker died"),
        }
    )
    stage = to_stage(record)
    assert (stage.status, stage.message, stage.output) == ("XX", "the worker died", "")


def test_the_first_file_is_the_program_and_the_rest_go_beside_it(
    default_policy: Planner,
) -> None:
    body = PistonExecute(
        language="python",
        version="*",
        files=[
            PistonFile(name="main.py", content="import helper"),
            PistonFile(
                name="helper.py", content=base64.b64encode(b"X = 1").decode(), encoding="base64"
            ),
            PistonFile(content=b"\x00\xff".hex(), encoding="hex"),
        ],
        stdin="in",
        args=["a", "b"],
    )
    created = to_execution(body, "python", default_policy.policies["default"])
    assert created.code == "import helper"
    assert [(item.path, item.content) for item in created.files] == [
        ("helper.py", b"X = 1"),
        ("file2.code", b"\x00\xff"),
    ]
    assert (created.stdin, created.args, created.limits) == ("in", ["a", "b"], None)


def test_a_program_that_is_not_text_is_refused(default_policy: Planner) -> None:
    body = PistonExecute(
        language="python",
        version="*",
        files=[PistonFile(content=base64.b64encode(b"\xff\xfe").decode(), encoding="base64")],
    )
    with pytest.raises(InvalidRequest, match="UTF-8"):
        to_execution(body, "python", default_policy.policies["default"])


def test_run_limits_tighten_ours_in_our_units(default_policy: Planner) -> None:
    body = PistonExecute(
        language="python",
        version="*",
        files=[PistonFile(content="print(1)")],
        run_timeout=2500,
        run_cpu_time=1200,
        run_memory_limit=64 * 1024 * 1024 + 5,
        compile_timeout=10**9,  # there is no compile stage: nothing to bound
    )
    limits = to_execution(body, "python", default_policy.policies["default"]).limits
    assert limits is not None
    assert (limits.wall_time_s, limits.cpu_time_s, limits.memory_mb) == (2.5, 2, 64)


def test_a_limit_over_the_policy_is_pistons_error_not_a_silent_raise(
    default_policy: Planner,
) -> None:
    policy = default_policy.policies["default"]
    body = PistonExecute(
        language="python",
        version="*",
        files=[PistonFile(content="print(1)")],
        run_timeout=policy.limits.wall_time_s * 1000 + 1,
    )
    with pytest.raises(InvalidRequest, match="run_timeout cannot exceed the configured limit"):
        to_execution(body, "python", policy)


async def test_runtimes_list_the_default_policys_languages(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        response = await client.get("/api/v2/runtimes", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    python = next(item for item in response.json() if item["language"] == "python")
    assert python == {"language": "python", "version": "3.11", "aliases": ["py", "py3", "python3"]}


async def test_the_key_may_come_as_basic_auth_from_the_base_url(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        as_password = await client.get("/api/v2/runtimes", auth=("key", key))
        as_user = await client.get("/api/v2/runtimes", auth=(key, ""))
        wrong = await client.get("/api/v2/runtimes", auth=("key", "not-a-key"))
        none = await client.get("/api/v2/runtimes")
        # Basic is for Piston's routes only: /v1 still wants a bearer token.
        v1 = await client.get("/v1/runtimes", auth=("key", key))
    assert (as_password.status_code, as_user.status_code) == (200, 200)
    assert (wrong.status_code, wrong.json()) == (401, {"message": "unknown or revoked key"})
    assert none.status_code == 401
    assert list(none.json()) == ["message"]
    assert v1.status_code == 401
    assert v1.json()["error"]["code"] == "unauthorized"


async def test_errors_are_pistons_message_with_400(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        unknown = await client.post(
            "/api/v2/execute",
            json={"language": "cobol", "version": "*", "files": [{"content": "x"}]},
            auth=("key", key),
        )
        wrong_version = await client.post(
            "/api/v2/execute",
            json={"language": "py", "version": "2.7", "files": [{"content": "x"}]},
            auth=("key", key),
        )
        no_files = await client.post(
            "/api/v2/execute", json={"language": "py", "version": "*"}, auth=("key", key)
        )
        not_json = await client.post(
            "/api/v2/execute",
            content=b"{",
            headers={"Content-Type": "application/json"},
            auth=("key", key),
        )
    assert (unknown.status_code, unknown.json()) == (
        400,
        {"message": "cobol-* runtime is unknown"},
    )
    assert wrong_version.json() == {"message": "py-2.7 runtime is unknown"}
    assert no_files.status_code == 400
    assert no_files.json()["message"].startswith("files")
    assert not_json.status_code == 400
    assert list(not_json.json()) == ["message"]


async def test_the_pistonapi_clients_form_body_is_read(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        response = await client.post(
            "/api/v2/execute",
            data={"language": "cobol", "version": "*", "files": "print(1)", "args": ["a"]},
            auth=("key", key),
        )
    # Read and checked field by field: the language is what it refuses, not the form.
    assert (response.status_code, response.json()) == (
        400,
        {"message": "cobol-* runtime is unknown"},
    )


async def test_a_body_over_the_bound_is_refused_before_it_is_read(
    service_settings: Settings, stores: Stores
) -> None:
    settings = service_settings.model_copy(update={"max_request_bytes": 1024})
    key = add_key(stores, "acme")
    async with app_client(settings, stores) as client:
        response = await client.post(
            "/api/v2/execute",
            json={"language": "py", "version": "*", "files": [{"content": "#" * 4096}]},
            auth=("key", key),
        )
    assert (response.status_code, list(response.json())) == (413, ["message"])


async def test_a_run_that_does_not_end_within_the_wait_is_cancelled(
    service_settings: Settings, stores: Stores
) -> None:
    # No worker runs here, so the execution stays queued past the (small) wait bound.
    settings = service_settings.model_copy(update={"max_wait_s": 0.2})
    key = add_key(stores, "acme")
    async with app_client(settings, stores) as client:
        response = await client.post(
            "/api/v2/execute",
            json={"language": "python", "version": "3", "files": [{"content": "print(1)"}]},
            auth=("key", key),
        )
    assert response.status_code == 503
    assert "cancelled" in response.json()["message"]
    (record,) = stores.executions.newest("acme", 10)
    assert record.state is ExecutionState.CANCELLED


async def test_an_argument_our_wire_model_refuses_is_pistons_400(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    async with app_client(service_settings, stores) as client:
        response = await client.post(
            "/api/v2/execute",
            json={"language": "py", "version": "*", "files": [{"content": "x"}], "args": ["a\x00"]},
            auth=("key", key),
        )
    assert response.status_code == 400
    assert response.json()["message"].startswith("args.0:")
    assert stores.executions.newest("acme", 10) == []
