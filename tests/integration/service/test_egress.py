"""Egress over the real API: an allowlist policy installs a package in a session and keeps it, a
denial reaches the result, the event stream and /metrics, and `default` reaches nothing.

The service runs as real processes with the only test-specific settings egress has: a name for
this module's own server (EXECUTOR_EGRESS_EXTRA_HOSTS) and its address let through the
always-deny list (EXECUTOR_EGRESS_UNSAFE_TEST_NETWORKS); tests/security/test_egress.py shows the
same server denied without the latter.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from agent_client.errors import LimitAboveCeiling
from agent_client.service import (
    Destination,
    EgressEvent,
    ExecutionClient,
    NetworkOverride,
    ResultEvent,
)
from tests.conftest import missing
from tests.integration.service.stack import ServiceStack, service_stack
from tests.integration.service.test_service import eventually
from tests.support.egress_server import HELLO, NAME, PACKAGE, PORT, EgressServer, egress_server

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[3]
POLICY = """schema_version: 1
name: {name}
description: The test's own package index, for tests/integration/service/test_egress.py.
runtime: {runtime}
languages: {{python: python, bash: python}}
limits: {{wall_time_s: 60, cpu_time_s: 60, memory_mb: 512, pids: {pids}, workspace_mb: 128}}
network:
  mode: allowlist
  allow:
    - host: {host}
      ports: [{port}]
"""


@pytest.fixture(scope="module")
def server(
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EgressServer]:
    root = tmp_path_factory.mktemp("egress-www")
    with egress_server(docker_client, built_images["python"], root) as running:
        yield running


@pytest.fixture(scope="module")
def stack(server: EgressServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    policies = tmp_path_factory.mktemp("policies")
    for shipped in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(shipped, policies)
    for name, runtime, pids in [("test-index", "runc", 64), ("test-index-gvisor", "runsc", 128)]:
        text = POLICY.format(name=name, runtime=runtime, pids=pids, host=NAME, port=PORT)
        (policies / f"{name}.yaml").write_text(text)
    with service_stack(
        tmp_path_factory.mktemp("service"),
        EXECUTOR_POLICIES_DIR=str(policies),
        EXECUTOR_EGRESS_EXTRA_HOSTS=json.dumps({NAME: server.address}),
        EXECUTOR_EGRESS_UNSAFE_TEST_NETWORKS=json.dumps([f"{server.address}/32"]),
    ) as running:
        yield running


def execute(stack: ServiceStack, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.url}/v1/executions", json={"wait": True, **body}, headers=headers, timeout=120
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


PIP = (
    f"pip install --retries 0 --timeout 10 --index-url {{url}}/simple/ --trusted-host {NAME} "
    f"{PACKAGE} >/dev/null && echo installed"
)
IMPORT = f"python -c 'import {PACKAGE}; print({PACKAGE}.VALUE)'"


def test_a_session_installs_a_package_and_keeps_it(
    stack: ServiceStack, server: EgressServer
) -> None:
    headers = stack.key("acme")
    created = httpx.post(
        f"{stack.url}/v1/sessions",
        json={"policy": "test-index", "language": "bash"},
        headers=headers,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    try:
        installed = execute(
            stack, headers, language="bash", code=PIP.format(url=server.url), session_id=session
        )["result"]
        assert (installed["status"], installed["stdout"]) == ("ok", "installed\n"), installed
        assert {(r["host"], r["port"], r["allowed"]) for r in installed["egress"]} == {
            (NAME, PORT, True)
        }
        assert all(r["bytes_received"] > 0 for r in installed["egress"])
        # The next run finds it (the user site lives in the workspace); it needs no network.
        later = execute(
            stack,
            headers,
            language="bash",
            code=IMPORT,
            session_id=session,
            network={"mode": "none"},
        )["result"]
        assert (later["status"], later["stdout"]) == ("ok", "42\n"), later
        assert later["egress"] == []
    finally:
        httpx.delete(f"{stack.url}/v1/sessions/{session}", headers=headers, timeout=60)


FETCH = """
import sys, urllib.error, urllib.request
for url in sys.argv[1:]:
    try:
        print(url, urllib.request.urlopen(url, timeout=10).read().decode().strip())
    except urllib.error.HTTPError as exc:
        print(url, exc.code, exc.headers.get('X-Egress-Denied'))
    except OSError as exc:
        print(url, 'unreachable', type(exc).__name__)
"""


def test_a_denial_reaches_the_result_the_events_and_the_metrics(
    stack: ServiceStack, server: EgressServer
) -> None:
    headers = stack.key("acme")
    urls = [f"{server.url}/hello", "http://denied.test/"]
    done = execute(stack, headers, language="python", code=FETCH, args=urls, policy="test-index")
    result = done["result"]
    assert result["stdout"].splitlines() == [
        f"{urls[0]} {HELLO.decode().strip()}",
        f"{urls[1]} 403 not_allowlisted",
    ], result
    assert [(r["host"], r["allowed"], r["reason"]) for r in result["egress"]] == [
        (NAME, True, ""),
        ("denied.test", False, "not_allowlisted"),
    ]
    with httpx.stream(
        "GET", f"{stack.url}/v1/executions/{done['id']}/events", headers=headers, timeout=30
    ) as events:
        text = "".join(events.iter_text())
    denial = text.split("event: egress\n", 1)[1].split("\n", 1)[0]
    assert json.loads(denial.removeprefix("data: "))["host"] == "denied.test"
    denied = 'agent_sandbox_egress_connections_total{outcome="denied",reason="not_allowlisted"}'
    allowed = 'agent_sandbox_egress_connections_total{outcome="allowed",reason=""}'

    def counted() -> bool:  # the worker writes its runs' numbers once a second
        metrics = httpx.get(f"{stack.url}/metrics", headers=headers, timeout=10).text
        return denied in metrics and allowed in metrics

    eventually(counted, "the connections to be counted")


def test_default_reaches_nothing_and_a_request_may_close_the_allowlist(
    stack: ServiceStack, server: EgressServer
) -> None:
    headers = stack.key("acme")
    url = f"{server.url}/hello"
    for extra in [{"policy": "default"}, {"policy": "test-index", "network": {"mode": "none"}}]:
        result = execute(stack, headers, language="python", code=FETCH, args=[url], **extra)[
            "result"
        ]
        assert result["stdout"].split()[1] == "unreachable", (extra, result)
        assert result["egress"] == []


def test_egress_works_under_gvisor_through_the_api(
    stack: ServiceStack, server: EgressServer, docker_client: docker.DockerClient
) -> None:
    if "runsc" not in docker_client.info().get("Runtimes", {}):
        missing("the engine has no runtime runsc (run scripts/setup.sh as root)")
    headers = stack.key("acme")
    url = f"{server.url}/hello"
    code = "import os\nprint(os.uname().release)\n" + FETCH
    result = execute(
        stack, headers, language="python", code=code, args=[url], policy="test-index-gvisor"
    )["result"]
    release, fetched = result["stdout"].splitlines()
    assert release != os.uname().release  # gVisor's kernel, not the host's
    assert fetched == f"{url} {HELLO.decode().strip()}", result


async def test_the_client_narrows_the_allowlist_and_follows_denials(
    stack: ServiceStack, server: EgressServer
) -> None:
    """Our own client against the real service: the typed network field, refusal and events."""
    key = stack.key("acme")["Authorization"].removeprefix("Bearer ")
    async with ExecutionClient(stack.url, key, timeout=60) as client:
        info = {policy.name: policy for policy in await client.policies()}
        assert info["test-index"].network["allow"] == [{"host": NAME, "ports": [PORT]}]
        with pytest.raises(LimitAboveCeiling) as refused:
            await client.submit(
                "python",
                "print(1)",
                policy="test-index",
                network=NetworkOverride(allow=[Destination(host=NAME, ports=[PORT, 443])]),
            )
        assert refused.value.field == "network.allow.0"
        urls = [f"{server.url}/hello", "http://other.test/"]
        execution = await client.submit(
            "python",
            FETCH,
            args=urls,
            policy="test-index",
            network=NetworkOverride(
                allow=[Destination(host=NAME, ports=[PORT])], max_connections=4
            ),
        )
        events = [event async for event in client.stream(execution.id)]
    denials = [event.record for event in events if isinstance(event, EgressEvent)]
    assert [(record.host, record.reason) for record in denials] == [
        ("other.test", "not_allowlisted")
    ], events
    final = events[-1]
    assert isinstance(final, ResultEvent)
    result = final.execution.result
    assert result is not None
    assert [(record.host, record.allowed) for record in result.egress] == [
        (NAME, True),
        ("other.test", False),
    ]
