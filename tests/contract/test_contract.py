"""The wire contract (v1): auth, isolation, refusals in one error shape, listings, OpenAPI."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from executor_service.jobs.store import Stores
from tests.contract.conftest import Tenants, session_record

pytestmark = pytest.mark.redis

PRINT = {"language": "python", "code": "print(1)"}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    detail: dict[str, Any] = body["error"]
    return detail


def session_of(store: Stores, tenant: str, ident: str = "se_contract") -> str:
    return session_record(store, tenant, ident)


async def test_every_v1_route_needs_a_key(api: httpx.AsyncClient) -> None:
    error_of(await api.post("/v1/executions", json=PRINT), 401, "unauthorized")
    error_of(
        await api.get("/v1/executions", headers={"Authorization": "Bearer nope"}),
        401,
        "unauthorized",
    )
    error_of(await api.get("/v1/policies"), 401, "unauthorized")
    error_of(await api.get("/v1/sessions"), 401, "unauthorized")
    assert (await api.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_says_what_is_missing(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "redis": True,
        "persistence": True,
        "worker": False,
        "images": False,
        "draining": False,
    }


async def test_submit_read_list_and_cancel(api: httpx.AsyncClient, tenants: Tenants) -> None:
    submitted = await api.post("/v1/executions", json=PRINT, headers=tenants.acme)
    assert submitted.status_code == 202
    body = submitted.json()
    assert body["id"].startswith("ex_")
    assert body["state"] == "queued"
    assert body["policy"] == "default"
    assert body["result"] is None
    assert body["error"] is None
    fetched = await api.get(f"/v1/executions/{body['id']}", headers=tenants.acme)
    assert fetched.json() == body
    listed = await api.get("/v1/executions?limit=5", headers=tenants.acme)
    assert [item["id"] for item in listed.json()["executions"]] == [body["id"]]
    cancelled = await api.post(f"/v1/executions/{body['id']}/cancel", headers=tenants.acme)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = await api.post(f"/v1/executions/{body['id']}/cancel", headers=tenants.acme)
    assert again.json()["state"] == "cancelled"


async def test_a_tenant_never_sees_another_tenants_ids(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    ident = (await api.post("/v1/executions", json=PRINT, headers=tenants.acme)).json()["id"]
    for response in (
        await api.get(f"/v1/executions/{ident}", headers=tenants.other),
        await api.post(f"/v1/executions/{ident}/cancel", headers=tenants.other),
        await api.get(f"/v1/executions/{ident}/events", headers=tenants.other),
    ):
        error_of(response, 404, "not_found")
    assert (await api.get("/v1/executions", headers=tenants.other)).json() == {"executions": []}
    session = session_of(store, "acme")
    error_of(await api.get(f"/v1/sessions/{session}", headers=tenants.other), 404, "not_found")
    error_of(await api.delete(f"/v1/sessions/{session}", headers=tenants.other), 404, "not_found")
    error_of(
        await api.get(f"/v1/sessions/{session}/files", headers=tenants.other), 404, "not_found"
    )
    strict_run = {**PRINT, "policy": "strict", "session_id": session}
    error_of(
        await api.post("/v1/executions", json=strict_run, headers=tenants.other), 404, "not_found"
    )
    assert (await api.get("/v1/sessions", headers=tenants.other)).json() == {"sessions": []}
    assert store.executions.get(ident).state == "queued"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "print(1)"}, "language"),
        ({**PRINT, "limits": {"wall_time_s": "soon"}}, "limits.wall_time_s"),
        ({**PRINT, "limits": {"gpus": 1}}, "limits.gpus"),
        ({**PRINT, "files": [{"path": "a", "content": "not base64!"}]}, "files.0.content"),
        ({**PRINT, "surprise": True}, "surprise"),
        ({**PRINT, "wait_timeout_s": -1}, "wait_timeout_s"),
        ({**PRINT, "args": ["ok", "a\x00b"]}, "args.1"),
    ],
)
async def test_schema_errors_are_422_with_the_field(
    api: httpx.AsyncClient, tenants: Tenants, body: dict[str, Any], field: str
) -> None:
    detail = error_of(
        await api.post("/v1/executions", json=body, headers=tenants.acme), 422, "validation_error"
    )
    assert detail["field"] == field


async def test_a_body_that_is_not_json_is_422(api: httpx.AsyncClient, tenants: Tenants) -> None:
    response = await api.post(
        "/v1/executions",
        content=b"{nope",
        headers={**tenants.acme, "Content-Type": "application/json"},
    )
    error_of(response, 422, "validation_error")


async def test_refusals_by_policy(api: httpx.AsyncClient, tenants: Tenants) -> None:
    above = await api.post(
        "/v1/executions", json={**PRINT, "limits": {"memory_mb": 100_000}}, headers=tenants.acme
    )
    assert error_of(above, 422, "limit_above_ceiling")["field"] == "limits.memory_mb"
    unknown = await api.post(
        "/v1/executions", json={"language": "cobol", "code": "x"}, headers=tenants.acme
    )
    assert error_of(unknown, 422, "unknown_language")["field"] == "language"
    forbidden = await api.post(
        "/v1/executions", json={**PRINT, "policy": "default"}, headers=tenants.other
    )
    assert error_of(forbidden, 403, "policy_not_allowed")["field"] == "policy"
    no_policy = await api.post(
        "/v1/executions", json={**PRINT, "policy": "nope"}, headers=tenants.acme
    )
    assert error_of(no_policy, 422, "invalid_request")["field"] == "policy"
    nothing = await api.post("/v1/executions", json={"language": "python"}, headers=tenants.acme)
    assert error_of(nothing, 422, "invalid_request")["field"] == "code"


async def test_sizes_over_the_policy_are_413(api: httpx.AsyncClient, tenants: Tenants) -> None:
    strict = {"language": "python", "policy": "strict"}
    code = await api.post(
        "/v1/executions", json={**strict, "code": "#" * 70_000}, headers=tenants.other
    )
    assert error_of(code, 413, "payload_too_large")["field"] == "code"
    stdin = await api.post(
        "/v1/executions", json={**PRINT, **strict, "stdin": "x" * 70_000}, headers=tenants.other
    )
    assert error_of(stdin, 413, "payload_too_large")["field"] == "stdin"
    many = [{"path": f"f{n}", "content": ""} for n in range(9)]
    files = await api.post(
        "/v1/executions", json={**PRINT, **strict, "files": many}, headers=tenants.other
    )
    assert error_of(files, 413, "payload_too_large")["field"] == "files"
    huge = await api.post(
        "/v1/executions", json={**PRINT, "stdin": "x" * (3 * 1024 * 1024)}, headers=tenants.acme
    )
    error_of(huge, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a\\b", "a/../../b", "a\x00b"])
async def test_unsafe_paths_are_refused(
    api: httpx.AsyncClient, tenants: Tenants, path: str
) -> None:
    body = {**PRINT, "files": [{"path": path, "content": base64.b64encode(b"x").decode()}]}
    response = await api.post("/v1/executions", json=body, headers=tenants.acme)
    assert error_of(response, 422, "unsafe_path")["field"] == "files.0.path"
    collect = await api.post(
        "/v1/executions", json={**PRINT, "collect": [path]}, headers=tenants.acme
    )
    assert error_of(collect, 422, "unsafe_path")["field"] == "collect.0"


async def test_unsafe_session_file_paths_are_refused(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    session = session_of(store, "acme")
    for raw in ("..%2F..%2Fetc%2Fpasswd", "a%5Cb", "sub%2F..%2F..%2Fx", "%2Fetc%2Fpasswd"):
        response = await api.put(
            f"/v1/sessions/{session}/files/{raw}", content=b"x", headers=tenants.acme
        )
        error_of(response, 422, "unsafe_path")
        read = await api.get(f"/v1/sessions/{session}/files/{raw}", headers=tenants.acme)
        error_of(read, 422, "unsafe_path")


async def test_quota_is_429_with_retry_after(api: httpx.AsyncClient, tenants: Tenants) -> None:
    for _ in range(3):
        assert (
            await api.post("/v1/executions", json=PRINT, headers=tenants.acme)
        ).status_code == 202
    refused = await api.post("/v1/executions", json=PRINT, headers=tenants.acme)
    error_of(refused, 429, "quota_exceeded")
    assert int(refused.headers["Retry-After"]) > 0
    strict = {**PRINT, "policy": "strict"}
    assert (await api.post("/v1/executions", json=strict, headers=tenants.other)).status_code == 202


async def test_a_busy_session_is_409(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    session = session_of(store, "acme")
    run = {**PRINT, "session_id": session}
    first = await api.post("/v1/executions", json=run, headers=tenants.acme)
    assert first.status_code == 202
    assert first.json()["session_id"] == session
    error_of(await api.post("/v1/executions", json=run, headers=tenants.acme), 409, "session_busy")
    await api.post(f"/v1/executions/{first.json()['id']}/cancel", headers=tenants.acme)
    assert (await api.post("/v1/executions", json=run, headers=tenants.acme)).status_code == 202


async def test_batch_is_in_order_and_refused_as_a_whole(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    bad = {"executions": [PRINT, {"language": "cobol", "code": "x"}]}
    refused = await api.post("/v1/executions/batch", json=bad, headers=tenants.acme)
    assert error_of(refused, 422, "unknown_language")["field"] == "executions.1.language"
    assert store.executions.active_count("acme") == 0
    good = {"executions": [PRINT, {"language": "bash", "code": "echo 2"}]}
    accepted = await api.post("/v1/executions/batch", json=good, headers=tenants.acme)
    assert accepted.status_code == 202
    assert [item["language"] for item in accepted.json()["executions"]] == ["python", "bash"]
    too_many = {"executions": [PRINT, PRINT]}
    error_of(
        await api.post("/v1/executions/batch", json=too_many, headers=tenants.acme),
        429,
        "quota_exceeded",
    )


async def test_wait_returns_202_when_the_run_does_not_end_in_time(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    response = await api.post(
        "/v1/executions", json={**PRINT, "wait": True, "wait_timeout_s": 0.3}, headers=tenants.acme
    )
    assert response.status_code == 202
    assert response.json()["state"] == "queued"


def sse_events(text: str) -> list[tuple[str | None, str, str]]:
    """(id, event, data) of each event block of an SSE body; comments are skipped."""
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        if "event" in fields:
            found.append((fields.get("id"), fields["event"], fields["data"]))
    return found


async def test_a_late_subscriber_gets_the_state_and_the_result(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    ident = (await api.post("/v1/executions", json=PRINT, headers=tenants.acme)).json()["id"]
    await api.post(f"/v1/executions/{ident}/cancel", headers=tenants.acme)
    response = await api.get(f"/v1/executions/{ident}/events", headers=tenants.acme)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [name for _, name, _ in events] == ["state", "state", "result"]
    assert json.loads(events[0][2]) == {"state": "queued"}
    assert json.loads(events[1][2]) == {"state": "cancelled"}
    assert json.loads(events[2][2])["id"] == ident
    assert all(event_id for event_id, _, _ in events)


async def test_events_resume_after_the_last_event_id(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    ident = (await api.post("/v1/executions", json=PRINT, headers=tenants.acme)).json()["id"]
    await api.post(f"/v1/executions/{ident}/cancel", headers=tenants.acme)
    url = f"/v1/executions/{ident}/events"
    first = sse_events((await api.get(url, headers=tenants.acme)).text)
    resumed = await api.get(url, headers={**tenants.acme, "Last-Event-ID": str(first[0][0])})
    assert sse_events(resumed.text) == first[1:]


async def test_event_streams_are_bounded_per_key(
    api: httpx.AsyncClient, store: Stores, tenants: Tenants
) -> None:
    ident = (await api.post("/v1/executions", json=PRINT, headers=tenants.acme)).json()["id"]
    acme = store.keys.all()[0].tenant
    for n in range(32):  # the key's default max_event_streams; held as an API would hold them
        assert store.executions.open_stream(acme, f"held-{n}", limit=32, ttl_s=60)
    refused = await api.get(f"/v1/executions/{ident}/events", headers=tenants.acme)
    assert error_of(refused, 429, "quota_exceeded")["message"]
    assert refused.headers["Retry-After"]
    store.executions.close_stream(acme, "held-0")
    await api.post(f"/v1/executions/{ident}/cancel", headers=tenants.acme)
    assert (await api.get(f"/v1/executions/{ident}/events", headers=tenants.acme)).is_success


async def test_sessions_refuse_bad_bounds_and_report_a_missing_worker(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    above = await api.post("/v1/sessions", json={"idle_timeout_s": 10**9}, headers=tenants.acme)
    assert error_of(above, 422, "limit_above_ceiling")["field"] == "idle_timeout_s"
    unknown = await api.post("/v1/sessions", json={"language": "cobol"}, headers=tenants.acme)
    error_of(unknown, 422, "unknown_language")
    # No worker runs here: the API withdraws the start at its bound instead of hanging.
    refused = await api.post("/v1/sessions", json={}, headers=tenants.acme)
    assert "did not happen" in error_of(refused, 503, "overloaded")["message"]
    assert refused.headers["Retry-After"]
    listed = (await api.get("/v1/sessions", headers=tenants.acme)).json()["sessions"]
    assert [item["state"] for item in listed] == ["deleted"]


async def test_policies_are_those_of_the_key_without_host_paths(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    mine = (await api.get("/v1/policies", headers=tenants.acme)).json()["policies"]
    assert [item["name"] for item in mine] == [
        "data-readonly",
        "default",
        "github-api",
        "pypi",
        "strict",
        "strict-gvisor",
    ]
    readonly = next(item for item in mine if item["name"] == "data-readonly")
    assert readonly["mounts"] == [{"sandbox_path": "/data"}]
    assert "/srv/agent-sandbox" not in json.dumps(mine)
    default = next(item for item in mine if item["name"] == "default")
    assert default["languages"]["python"] == "python"
    assert default["network"]["mode"] == "none"
    assert default["network"]["allow"] == []
    pypi = next(item for item in mine if item["name"] == "pypi")
    assert pypi["network"]["mode"] == "allowlist"
    assert pypi["network"]["allow"] == [
        {"host": "pypi.org", "ports": [443]},
        {"host": "files.pythonhosted.org", "ports": [443]},
    ]
    assert default["limits"]["wall_time_s"] == 30
    assert default["files"]["max_code_bytes"] == 262144
    theirs = (await api.get("/v1/policies", headers=tenants.other)).json()["policies"]
    assert [item["name"] for item in theirs] == ["strict"]


async def test_runtimes_report_what_the_workers_saw(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    before = (await api.get("/v1/runtimes", headers=tenants.acme)).json()["runtimes"]
    python = next(item for item in before if item["image"].startswith("agent-sandbox/python:"))
    assert python["present"] is False
    store.workers.set_images_present({"python": True, "shell": False})
    after = (await api.get("/v1/runtimes", headers=tenants.acme)).json()["runtimes"]
    assert {(item["language"], item["image"], item["present"]) for item in after} >= {
        ("python", "agent-sandbox/python:1", True),
        ("bash", "agent-sandbox/shell:1", False),
    }
    assert next(item for item in after if item["language"] == "python")["version"] == "3.11"


async def test_openapi_documents_examples_errors_and_auth(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["ExecutionCreate"]["examples"][0] == PRINT
    assert "examples" in schemas["SessionCreate"]
    # Responses keep their examples now that the API, not the records, defines them.
    assert schemas["ExecutionView"]["properties"]["id"]["examples"] == [
        "ex_5f0c6a1d2b3e4f5a6b7c8d9e0f1a2b3c"
    ]
    assert schemas["SessionView"]["properties"]["idle_timeout_s"]["examples"] == [600]
    assert schemas["InputFile"]["properties"]["path"]["examples"] == ["data/in.csv"]
    assert "ErrorBody" in schemas
    submit = spec["paths"]["/v1/executions"]["post"]
    assert {"202", "401", "413", "422", "429"} <= set(submit["responses"])
    assert any("HTTPBearer" in scheme for scheme in spec["components"]["securitySchemes"])


async def test_metrics_need_a_key_and_unknown_routes_are_404(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    error_of(await api.get("/metrics"), 401, "unauthorized")
    text = (await api.get("/metrics", headers=tenants.acme)).text
    assert "agent_sandbox_queue_length" in text
    assert "agent_sandbox_run_seconds_bucket" in text
    error_of(await api.get("/v1/nothing-here"), 404, "not_found")


async def test_a_wrong_method_says_which_are_allowed(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    response = await api.delete("/v1/policies", headers=tenants.acme)
    error_of(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"
