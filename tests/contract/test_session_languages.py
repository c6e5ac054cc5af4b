"""Which languages a session admits: those its policy allows that its image carries; an
interpreter session, Python cells only. Each refusal is a 422 saying what the session runs."""

from __future__ import annotations

import httpx
import pytest

from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionKind
from executor_service.jobs.store import Stores
from tests.contract.conftest import Tenants

pytestmark = pytest.mark.redis


def session(store: Stores, ident: str, language: str, kind: SessionKind) -> str:
    """A session as the worker leaves it, written straight to the store (no worker runs here)."""
    now = utcnow()
    store.sessions.create(
        Session(
            id=ident,
            tenant="acme",
            policy="default",
            language=language,
            kind=kind,
            created_at=now,
            last_used_at=now,
            idle_timeout_s=60,
            max_lifetime_s=600,
            container_id="not-a-container",
        ),
        limit=10,
    )
    return ident


async def submit(
    api: httpx.AsyncClient, tenants: Tenants, ident: str, language: str
) -> httpx.Response:
    body = {"language": language, "code": "x", "session_id": ident}
    return await api.post("/v1/executions", json=body, headers=tenants.acme)


async def cancel(api: httpx.AsyncClient, tenants: Tenants, response: httpx.Response) -> None:
    """Free the session for the next submit (one execution at a time, and no worker here)."""
    await api.post(f"/v1/executions/{response.json()['id']}/cancel", headers=tenants.acme)


async def test_a_python_session_admits_bash_sh_and_javascript(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    ident = session(store, "se_python", "python", SessionKind.PLAIN)
    for language in ("bash", "sh", "javascript", "python"):
        accepted = await submit(api, tenants, ident, language)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["language"] == language
        await cancel(api, tenants, accepted)


async def test_a_bash_session_refuses_what_its_shell_image_lacks(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    ident = session(store, "se_bash", "bash", SessionKind.PLAIN)
    refused = await submit(api, tenants, ident, "javascript")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_language", "language")
    assert "runs bash, sh, not 'javascript'" in error["message"]
    accepted = await submit(api, tenants, ident, "sh")
    assert accepted.status_code == 202, accepted.text


async def test_an_interpreter_session_refuses_other_languages_before_queueing(
    api: httpx.AsyncClient, tenants: Tenants, store: Stores
) -> None:
    ident = session(store, "se_kernel", "python", SessionKind.INTERPRETER)
    refused = await submit(api, tenants, ident, "bash")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "language")
    assert "runs Python cells only, not 'bash'" in error["message"]
    listed = await api.get("/v1/executions", headers=tenants.acme)
    assert listed.json()["executions"] == []  # nothing was stored or queued
