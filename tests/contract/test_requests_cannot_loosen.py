"""A request can only tighten the sandbox: every setting that would loosen it is refused.

Looser isolation exists only where a policy names it (the data-readonly mount, the pypi
allowlist); the request schema has no field for mounts, runtime, image, user or privileges, limits
above the policy's ceiling are refused, and a request's network may only narrow the policy's, so
the default policy (no network) refuses them all.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.conftest import Tenants

pytestmark = pytest.mark.redis

PRINT = {"language": "python", "code": "print(1)"}


@pytest.mark.parametrize(
    "loosening",
    [
        {"mounts": [{"host_path": "/", "sandbox_path": "/host"}]},
        {"runtime": "runc"},
        {"image": "debian:bookworm"},
        {"user": "root"},
        {"privileged": True},
        {"cap_add": ["SYS_ADMIN"]},
        {"security_opt": ["seccomp=unconfined"]},
        {"env": {"LD_PRELOAD": "/workspace/x.so"}},
    ],
    ids=lambda value: next(iter(value)),
)
async def test_isolation_fields_do_not_exist_in_a_request(
    api: httpx.AsyncClient, tenants: Tenants, loosening: dict[str, Any]
) -> None:
    response = await api.post("/v1/executions", json={**PRINT, **loosening}, headers=tenants.acme)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == next(iter(loosening))


@pytest.mark.parametrize(
    ("policy", "network", "code", "field"),
    [
        (
            "default",
            {"mode": "allowlist", "allow": [{"host": "example.org"}]},
            "limit_above_ceiling",
            "network",
        ),
        ("default", {"allow": [{"host": "pypi.org"}]}, "limit_above_ceiling", "network"),
        ("default", {"mode": "host"}, "validation_error", "network.mode"),
        ("pypi", {"allow": [{"host": "example.org"}]}, "limit_above_ceiling", "network.allow.0"),
        (
            "pypi",
            {"allow": [{"host": "pypi.org", "ports": [80]}]},
            "limit_above_ceiling",
            "network.allow.0",
        ),
        ("pypi", {"allow": [{"host": "*.pypi.org"}]}, "limit_above_ceiling", "network.allow.0"),
        ("pypi", {"allow": [{"cidr": "0.0.0.0/0"}]}, "limit_above_ceiling", "network.allow.0"),
        ("pypi", {"max_bytes": 10**12}, "limit_above_ceiling", "network.max_bytes"),
        ("pypi", {"max_connections": 10**6}, "limit_above_ceiling", "network.max_connections"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_a_request_cannot_widen_the_allowlist(
    api: httpx.AsyncClient, tenants: Tenants, policy: str, network: Any, code: str, field: str
) -> None:
    body = {**PRINT, "policy": policy, "network": network}
    response = await api.post("/v1/executions", json=body, headers=tenants.acme)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert "policy" in error["message"] or code == "validation_error"


@pytest.mark.parametrize(
    "network",
    [
        {"mode": "none"},
        {"allow": [{"host": "pypi.org", "ports": [443]}]},
        {"max_bytes": 1024, "max_connections": 1},
    ],
)
async def test_a_request_may_narrow_the_allowlist(
    api: httpx.AsyncClient, tenants: Tenants, network: Any
) -> None:
    body = {**PRINT, "policy": "pypi", "network": network}
    response = await api.post("/v1/executions", json=body, headers=tenants.acme)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("limit", "value"),
    [("memory_mb", 257), ("wall_time_s", 31), ("pids", 65), ("output_bytes", 1048577)],
)
async def test_limits_above_the_default_policy_are_refused(
    api: httpx.AsyncClient, tenants: Tenants, limit: str, value: float
) -> None:
    body = {**PRINT, "policy": "default", "limits": {limit: value}}
    response = await api.post("/v1/executions", json=body, headers=tenants.acme)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "limit_above_ceiling"
    assert error["field"] == f"limits.{limit}"


async def test_a_session_cannot_ask_for_what_its_policy_does_not_allow(
    api: httpx.AsyncClient, tenants: Tenants
) -> None:
    body = {"policy": "default", "language": "python", "mounts": [{"host_path": "/"}]}
    response = await api.post("/v1/sessions", json=body, headers=tenants.acme)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "mounts"
