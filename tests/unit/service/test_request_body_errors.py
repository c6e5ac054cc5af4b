"""A body the API cannot read as JSON gets an answer that says what to fix (issue 11): no JSON
content type is 415 with the header to send, a JSON syntax error names its line and column. The
foreign protocols keep their own error shapes for the same mistakes, and /mcp its own answers."""

from __future__ import annotations

import httpx
import pytest

from executor_service.api.app import create_app
from executor_service.jobs.store import Stores
from executor_service.settings import Settings
from tests.unit.service.compat_app import add_key, app_client

pytestmark = pytest.mark.redis

CODE = b'{"language": "python", "code": "print(1)"}'


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        ({}, "no Content-Type"),
        ({"Content-Type": "text/plain"}, "Content-Type 'text/plain'"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "application/x-www-form"),
    ],
)
async def test_a_body_without_a_json_content_type_is_415_with_the_header_to_send(
    service_settings: Settings, stores: Stores, headers: dict[str, str], sent: str
) -> None:
    auth = {"Authorization": f"Bearer {add_key(stores, 'acme')}"}
    async with app_client(service_settings, stores) as client:
        response = await client.post("/v1/executions", content=CODE, headers=auth | headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert sent in error["message"]
    assert "Content-Type: application/json" in error["message"]
    assert stores.executions.newest("acme", 10) == []


async def test_invalid_json_names_its_line_and_column_not_a_field(
    service_settings: Settings, stores: Stores
) -> None:
    auth = {"Authorization": f"Bearer {add_key(stores, 'acme')}"}
    body = b'{"language": "python",\n  "code" "print(1)"}'  # the colon after "code" is missing
    async with app_client(service_settings, stores) as client:
        response = await client.post(
            "/v1/sessions", content=body, headers=auth | {"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "the body is not valid JSON: Expecting ':' delimiter at line 2, column 10",
            "field": None,
        }
    }


async def test_an_empty_body_says_to_send_json_and_a_wrong_field_still_names_the_field(
    service_settings: Settings, stores: Stores
) -> None:
    auth = {"Authorization": f"Bearer {add_key(stores, 'acme')}"}
    json_type = {"Content-Type": "application/json"}
    async with app_client(service_settings, stores) as client:
        empty = await client.post("/v1/executions", content=b"", headers=auth | json_type)
        wrong = await client.post("/v1/executions", json={"language": 3}, headers=auth)
    assert empty.status_code == 422
    assert "no body" in empty.json()["error"]["message"]
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "language"


async def test_judge0_and_piston_keep_their_own_shapes_for_the_same_mistakes(
    service_settings: Settings, stores: Stores
) -> None:
    key = add_key(stores, "acme")
    json_type = {"Content-Type": "application/json"}
    async with app_client(service_settings, stores) as client:
        judge0_bad = await client.post(
            "/judge0/submissions",
            content=b'{"language_id": 71',
            headers={"X-Auth-Token": key} | json_type,
        )
        judge0_untyped = await client.post(
            "/judge0/submissions",
            content=b'{"language_id": 71, "source_code": "print(1)"}',
            headers={"X-Auth-Token": key},
        )
        piston_bad = await client.post(
            "/api/v2/execute",
            content=b'{"language": "py"',
            headers={"Authorization": f"Bearer {key}"} | json_type,
        )
    assert judge0_bad.status_code == 400
    assert list(judge0_bad.json()) == ["error"]
    assert "line 1, column 19" in judge0_bad.json()["error"]
    assert judge0_untyped.status_code == 415
    assert list(judge0_untyped.json()) == ["error"]
    assert piston_bad.status_code == 400
    assert list(piston_bad.json()) == ["message"]
    assert stores.executions.newest("acme", 10) == []


async def test_mcp_answers_a_body_without_a_json_content_type_itself(
    service_settings: Settings, stores: Stores
) -> None:
    # The MCP SDK's transport owns /mcp's answers; the API's handlers never reshape them.
    headers = {
        "Authorization": f"Bearer {add_key(stores, 'acme')}",
        "Accept": "application/json, text/event-stream",
    }
    app = create_app(service_settings, stores=stores)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service") as client,
    ):
        response = await client.post("/mcp", content=b"{}", headers=headers)
    assert response.status_code == 400
    assert "Content-Type" in response.text
    assert not response.text.startswith('{"error"')
