"""The studio app in-process over httpx.ASGITransport: guards, keys never sent back, specs
checked by field, refused runs, and the settings that refuse an unsafe bind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from agent_client.studio.app import create_app
from agent_client.studio.settings import StudioSettings
from agent_client.studio.store import sql_stores

HEADERS = {"X-Studio-Request": "1"}
KEY = "sk-very-secret-value-0123"
TOKEN = "a-token-of-enough-length"


def app_for(tmp_path: Path, **settings: Any) -> Any:
    config = StudioSettings(database_url=f"sqlite:///{tmp_path / 's.db'}", **settings)
    runs, connections = sql_stores(config.database_url)
    return create_app(config, run_store=runs, connection_store=connections, tools={})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


def spec(model_url: str = "http://127.0.0.1:9/v1") -> dict[str, Any]:
    return {
        "models": {"main": {"base_url": model_url, "model": "m", "api_key_env": "STUDIO_MAIN_KEY"}},
        "agents": [{"type": "assistant", "name": "a", "model": "main"}],
        "team": {"type": "round_robin"},
        "termination": {"type": "max_messages", "max_messages": 2},
    }


async def test_a_saved_key_never_comes_back(client: httpx.AsyncClient) -> None:
    saved = await client.put(
        "/api/connections/main",
        json={"kind": "model", "base_url": "http://127.0.0.1:9/v1", "model": "m", "key": KEY},
        headers=HEADERS,
    )
    assert saved.status_code == 200
    assert saved.json()["has_key"] is True
    bodies = [saved.text]
    for path in ("/api/connections", "/api/info", "/api/gallery", "/api/runs", "/"):
        response = await client.get(path)
        assert response.status_code == 200
        bodies.append(response.text)
    assert all(KEY not in body for body in bodies)


async def test_a_key_is_only_sent_where_it_was_saved_for(client: httpx.AsyncClient) -> None:
    await client.put(
        "/api/connections/main",
        json={"kind": "model", "base_url": "http://127.0.0.1:9/v1", "model": "m", "key": KEY},
        headers=HEADERS,
    )
    response = await client.post(
        "/api/runs",
        json={"spec": spec("http://attacker.example/v1"), "task": "hi"},
        headers=HEADERS,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unbound_key"
    assert "attacker.example" in error["message"]
    assert (await client.get("/api/runs")).json() == []  # a refused run leaves no history


async def test_only_registered_tools(client: httpx.AsyncClient) -> None:
    bad = spec()
    bad["agents"][0]["tools"] = ["os:system"]
    response = await client.post("/api/runs", json={"spec": bad, "task": "x"}, headers=HEADERS)
    assert response.status_code == 422
    problems = response.json()["error"]["problems"]
    assert problems[0]["path"] == "agents.0.tools"
    assert "not registered" in problems[0]["message"]


async def test_spec_check_reports_fields_and_both_views(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/specs/check",
        json={"text": "models: {}\nteam: {type: selector}\n", "format": "yaml"},
        headers=HEADERS,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["valid"] is False
    assert {p["path"] for p in body["problems"]} == {"agents", "team.model", "termination"}
    ok = (await client.post("/api/specs/check", json={"spec": spec()}, headers=HEADERS)).json()
    assert ok["valid"] is True
    assert "max_messages: 2" in ok["yaml_text"]
    broken = await client.post(
        "/api/specs/check", json={"text": "{", "format": "json"}, headers=HEADERS
    )
    assert broken.json()["problems"][0]["message"].startswith("not valid JSON")


async def test_changes_need_the_studio_header_and_bad_bodies_get_a_4xx(
    client: httpx.AsyncClient,
) -> None:
    no_header = await client.post("/api/runs", json={"spec": spec(), "task": "x"})
    assert no_header.status_code == 403
    assert no_header.json()["error"]["code"] == "missing_header"
    bad = await client.post("/api/runs", json={"task": ""}, headers=HEADERS)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_request"
    assert (await client.get("/api/runs/nope")).status_code == 404
    stop = await client.post("/api/runs/nope/stop", headers=HEADERS)
    assert stop.status_code == 409


async def test_a_foreign_host_name_is_refused_on_loopback(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/runs", headers={"Host": "rebound.example"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_host"


async def test_token_moves_to_a_cookie_and_guards_everything(tmp_path: Path) -> None:
    app = app_for(tmp_path, host="0.0.0.0", token=TOKEN)  # noqa: S104 - the case under test
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.lan") as c:
        assert (await c.get("/api/runs")).status_code == 401
        assert (await c.get("/")).status_code == 401
        assert (await c.get("/?token=wrong-token-wrong-token")).status_code == 401
        first = await c.get(f"/?token={TOKEN}")
        assert first.status_code == 303
        assert "httponly" in first.headers["set-cookie"].lower()
        assert (await c.get("/api/runs")).status_code == 200  # the cookie now
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.lan") as c:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await c.get("/api/runs", headers=bearer)).status_code == 200


def test_binding_off_loopback_needs_a_token() -> None:
    with pytest.raises(ValidationError, match="give a token"):
        StudioSettings(host="0.0.0.0")  # noqa: S104 - the case under test
    with pytest.raises(ValidationError, match="16 characters"):
        StudioSettings(token="short")
    assert StudioSettings(host="::1").token is None
