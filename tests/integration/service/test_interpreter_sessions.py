"""Interpreter sessions over real HTTP: cells keep state, plots come back, SSE shows displays."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]


def run_cell(stack: ServiceStack, key: dict[str, str], session: str, code: str) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.url}/v1/executions",
        json={"language": "python", "code": code, "session_id": session, "wait": True},
        headers=key,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "finished", body
    return body


def test_an_interpreter_session_keeps_variables_and_returns_plots(stack: ServiceStack) -> None:
    acme = stack.key("acme")
    base = f"{stack.url}/v1/sessions"
    created = httpx.post(base, json={"kind": "interpreter"}, headers=acme, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "interpreter"
    session = created.json()["id"]
    first = run_cell(
        stack, acme, session, "import pandas as pd\nframe = pd.DataFrame({'y': [1, 4]})"
    )
    assert first["result"]["status"] == "ok", first["result"]
    plot = "ax = frame.plot()\nprint(int(frame['y'].sum()))"
    second = run_cell(stack, acme, session, plot)
    assert second["result"]["status"] == "ok", second["result"]
    assert second["result"]["stdout"] == "5\n"
    [png] = [o for o in second["result"]["outputs"] if o["mime_type"] == "image/png"]
    image = base64.urlsafe_b64decode(png["data"])  # pydantic's base64 is the URL-safe alphabet
    assert image.startswith(b"\x89PNG")
    assert len(image) == png["size_bytes"]

    events: list[tuple[str, Any]] = []
    url = f"{stack.url}/v1/executions/{second['id']}/events"
    with httpx.stream("GET", url, headers=acme, timeout=60) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line.removeprefix("data: "))))
    displays = [data for kind, data in events if kind == "display"]
    assert [d["mime_type"] for d in displays] == [
        o["mime_type"] for o in second["result"]["outputs"]
    ]
    assert events[-1][0] == "result"
    httpx.delete(f"{base}/{session}", headers=acme, timeout=60)


def test_an_interpreter_session_interrupts_a_cell_over_its_wall_time(stack: ServiceStack) -> None:
    acme = stack.key("acme")
    base = f"{stack.url}/v1/sessions"
    session = httpx.post(base, json={"kind": "interpreter"}, headers=acme, timeout=60).json()["id"]
    assert run_cell(stack, acme, session, "kept = 7")["result"]["status"] == "ok"
    stuck = httpx.post(
        f"{stack.url}/v1/executions",
        json={
            "language": "python",
            "code": "while True:\n    pass",
            "session_id": session,
            "wait": True,
            "limits": {"wall_time_s": 2},
        },
        headers=acme,
        timeout=120,
    ).json()
    assert stuck["result"]["status"] == "timeout", stuck
    assert "interrupted" in stuck["result"]["message"]
    after = run_cell(stack, acme, session, "print(kept * 6)")
    assert after["result"]["stdout"] == "42\n"
    httpx.delete(f"{base}/{session}", headers=acme, timeout=60)


def test_an_interpreter_session_is_python_only(stack: ServiceStack) -> None:
    acme = stack.key("acme")
    refused = httpx.post(
        f"{stack.url}/v1/sessions",
        json={"kind": "interpreter", "language": "bash"},
        headers=acme,
        timeout=60,
    )
    assert refused.status_code == 422, refused.text
    assert "Python only" in refused.text
