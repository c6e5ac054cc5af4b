"""The MCP server with the `mcp` SDK's own client, over streamable HTTP (/mcp) and stdio."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]

TOOLS = {
    "run_code",
    "create_session",
    "run_in_session",
    "write_file",
    "read_file",
    "list_files",
    "close_session",
}


@asynccontextmanager
async def http_client(
    stack: ServiceStack, headers: dict[str, str], mode: str = "auto"
) -> AsyncIterator[Client]:
    """The SDK's client on the SDK's streamable HTTP transport, sending `headers` each time."""
    timeout = httpx2.Timeout(30, read=300)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        transport = streamable_http_client(f"{stack.url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
            yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def test_tools_are_listed_with_the_callers_limits(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-list")) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(tool.description for tool in tools.values())
    run_code = tools["run_code"]
    assert run_code.description is not None
    assert "No network" in run_code.description
    assert "policy 'default'" in run_code.description
    assert "30 s wall time" in run_code.description
    assert run_code.output_schema is not None
    assert "timed_out" in run_code.output_schema["properties"]

    # A key limited to `strict` reads strict's limits, not the service's default.
    async with http_client(stack, stack.key("mcp-strict", policies=("strict",))) as client:  # type: ignore[arg-type]
        strict = {tool.name: tool for tool in (await client.list_tools()).tools}
    description = strict["run_code"].description or ""
    assert "policy 'strict'" in description
    assert "5 s wall time" in description


async def test_run_code_answers_output_and_status(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-run")) as client:
        result = await client.call_tool(
            "run_code",
            {
                "language": "python",
                "code": "import sys\nprint(open('data/in.txt').read() + sys.stdin.read())",
                "stdin": " world",
                "files": {"data/in.txt": "hello"},
            },
        )
    output = structured(result)
    assert output["status"] == "ok"
    assert output["exit_code"] == 0
    assert output["stdout"] == "hello world\n"
    assert output["timed_out"] is False
    assert output["stdout_truncated"] is False
    assert output["execution_id"].startswith("ex_")
    assert "hello world" in text_of(result)
    assert "status: ok" in text_of(result)


async def test_a_non_zero_exit_is_a_normal_result(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-exit")) as client:
        result = await client.call_tool(
            "run_code",
            {
                "language": "python",
                "code": "import sys\nprint('to stderr', file=sys.stderr)\nsys.exit(3)",
            },
        )
    output = structured(result)
    assert output["status"] == "error"
    assert output["exit_code"] == 3
    assert output["stderr"] == "to stderr\n"
    assert "exit code 3" in text_of(result)


async def test_a_timeout_is_a_normal_result_with_its_flag(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-timeout")) as client:
        result = await client.call_tool(
            "run_code", {"language": "python", "code": "while True:\n    pass", "timeout_s": 1}
        )
    output = structured(result)
    assert output["status"] == "timeout"
    assert output["timed_out"] is True


async def test_bad_input_is_a_tool_error_with_the_services_message(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-bad")) as client:
        language = await client.call_tool("run_code", {"language": "cobol", "code": "x"})
        above = await client.call_tool(
            "run_code", {"language": "python", "code": "print(1)", "timeout_s": 10_000}
        )
        policy = await client.call_tool(
            "run_code", {"language": "python", "code": "print(1)", "policy": "no-such-policy"}
        )
        # default's max_code_bytes is 256 KiB.
        oversize = await client.call_tool(
            "run_code", {"language": "python", "code": "#" * (300 * 1024)}
        )
    assert language.is_error
    assert "unknown_language" in text_of(language)
    assert "'cobol'" in text_of(language)
    assert above.is_error
    assert "limit_above_ceiling" in text_of(above)
    assert policy.is_error
    assert oversize.is_error
    assert "payload_too_large" in text_of(oversize)
    assert "no-such-policy" in text_of(policy)


async def test_a_session_keeps_files_between_calls(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-session")) as client:
        session = structured(await client.call_tool("create_session", {"language": "python"}))
        sid = session["session_id"]
        assert session["policy"] == "default"
        assert session["language"] == "python"
        written = structured(
            await client.call_tool(
                "write_file", {"session_id": sid, "path": "notes/a.txt", "content": "héllo"}
            )
        )
        assert written == {"path": "notes/a.txt", "size_bytes": len("héllo".encode())}
        run = structured(
            await client.call_tool(
                "run_in_session",
                {
                    "session_id": sid,
                    "code": "print(open('notes/a.txt').read())\nopen('out.txt', 'w').write('done')",
                },
            )
        )
        assert run["stdout"] == "héllo\n"
        assert run["session_id"] == sid
        listing = structured(await client.call_tool("list_files", {"session_id": sid}))
        paths = {entry["path"] for entry in listing["files"]}
        assert {"notes/a.txt", "out.txt"} <= paths
        under = structured(
            await client.call_tool("list_files", {"session_id": sid, "path": "notes"})
        )
        assert [entry["path"] for entry in under["files"]] == ["notes/a.txt"]
        read = structured(
            await client.call_tool("read_file", {"session_id": sid, "path": "out.txt"})
        )
        assert read["content"] == "done"
        assert read["encoding"] == "utf-8"
        closed = structured(await client.call_tool("close_session", {"session_id": sid}))
        assert closed == {"session_id": sid, "closed": True}
        after = await client.call_tool("run_in_session", {"session_id": sid, "code": "print(1)"})
    assert after.is_error
    assert "session_ended" in text_of(after)


async def test_another_tenants_session_is_not_found(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-owner")) as owner:
        sid = structured(await owner.call_tool("create_session", {"language": "python"}))[
            "session_id"
        ]
        async with http_client(stack, stack.key("mcp-stranger")) as stranger:
            attempts = [
                await stranger.call_tool("read_file", {"session_id": sid, "path": "x"}),
                await stranger.call_tool("list_files", {"session_id": sid}),
                await stranger.call_tool("run_in_session", {"session_id": sid, "code": "1"}),
                await stranger.call_tool(
                    "write_file", {"session_id": sid, "path": "x", "content": "y"}
                ),
                await stranger.call_tool("close_session", {"session_id": sid}),
            ]
        for attempt in attempts:
            assert attempt.is_error
            assert "not_found" in text_of(attempt), text_of(attempt)
        # The stranger's close did nothing: the owner's session still runs code.
        still = structured(
            await owner.call_tool("run_in_session", {"session_id": sid, "code": "print(2)"})
        )
        assert still["stdout"] == "2\n"
        structured(await owner.call_tool("close_session", {"session_id": sid}))


async def test_without_a_valid_key_mcp_answers_401(stack: ServiceStack) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer ask_nope_nope"}, {"Authorization": "Basic x"}):
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{stack.url}/mcp", json=request, headers={**headers, **auth}
            )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # The SDK's client, sent no key, fails at connecting: it never reaches a tool.
    with pytest.raises(ExceptionGroup) as refused:
        async with http_client(stack, {}) as client:
            await client.list_tools()
    assert refused.group_contains(MCPError)


async def test_a_handshake_era_client_runs_code_too(stack: ServiceStack) -> None:
    async with http_client(stack, stack.key("mcp-legacy"), mode="legacy") as client:
        assert client.protocol_version.startswith("2025")
        output = structured(
            await client.call_tool("run_code", {"language": "bash", "code": "echo $((6 * 7))"})
        )
    assert output["stdout"] == "42\n"


def stdio_server(stack: ServiceStack, key: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "executor_service.cli", "mcp"],
        env={**stack.env, "EXECUTOR_MCP_API_KEY": key},
    )


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_stdio_runs_code_as_the_configured_key(stack: ServiceStack) -> None:
    key = bearer(stack.key("mcp-stdio"))
    async with Client(stdio_server(stack, key)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("run_code", {"language": "python", "code": "print(6 * 7)"})
        failed = await client.call_tool("run_code", {"language": "python", "code": "1/0"})
    assert tools == TOOLS
    output = structured(result)
    assert output["stdout"] == "42\n"
    assert output["status"] == "ok"
    assert structured(failed)["status"] == "error"
    assert "ZeroDivisionError" in structured(failed)["stderr"]
    # The run is the key's tenant's, as any REST execution is.
    async with httpx.AsyncClient(timeout=30) as http:
        listed = await http.get(
            f"{stack.url}/v1/executions/{output['execution_id']}",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert listed.status_code == 200
    assert listed.json()["state"] == "finished"


def test_stdio_refuses_to_start_with_an_unknown_key(stack: ServiceStack) -> None:
    env = {**stack.env, "EXECUTOR_MCP_API_KEY": "ask_nope_nope"}
    done = subprocess.run(
        [sys.executable, "-m", "executor_service.cli", "mcp"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unauthorized" in done.stderr


async def newest_execution(stack: ServiceStack, headers: dict[str, str], state: str) -> str:
    """The id of the tenant's newest execution once it is in `state` (a deadline, not a timing)."""
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as http:
        with anyio.fail_after(120):
            while True:
                found = (await http.get("/v1/executions", params={"limit": 1})).json()
                if found["executions"] and found["executions"][0]["state"] == state:
                    return str(found["executions"][0]["id"])
                await anyio.sleep(0.1)


async def final_state(stack: ServiceStack, headers: dict[str, str], execution_id: str) -> str:
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as http:
        with anyio.fail_after(120):
            while True:
                state = (await http.get(f"/v1/executions/{execution_id}")).json()["state"]
                if state in {"finished", "cancelled", "failed"}:
                    return str(state)
                await anyio.sleep(0.1)


SLEEPER = {"language": "python", "code": "import time\nwhile True:\n    time.sleep(1)"}


async def test_a_call_the_client_gives_up_on_cancels_its_run(stack: ServiceStack) -> None:
    # Without the cancellation the run would end at its 30 s wall time as `finished` (timeout).
    headers = stack.key("mcp-leaver")
    async with (
        Client(stdio_server(stack, bearer(headers))) as client,
        anyio.create_task_group() as calls,
    ):
        calls.start_soon(client.call_tool, "run_code", SLEEPER)
        running = await newest_execution(stack, headers, "running")
        calls.cancel_scope.cancel()
    assert await final_state(stack, headers, running) == "cancelled"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_http_call_the_client_gives_up_on_cancels_its_run(
    stack: ServiceStack, mode: str
) -> None:
    headers = stack.key(f"mcp-http-leaver-{mode}")
    async with http_client(stack, headers, mode=mode) as client, anyio.create_task_group() as calls:
        calls.start_soon(client.call_tool, "run_code", SLEEPER)
        running = await newest_execution(stack, headers, "running")
        calls.cancel_scope.cancel()
    assert await final_state(stack, headers, running) == "cancelled"
