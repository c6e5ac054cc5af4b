"""The SDK's own SandboxAgent, with our sandbox client as its backend, on the real service.

The scripted model calls the SDK's own shell tool (``exec_command``); the SDK runs the commands
through ``AgentSandboxSession`` in a service session, and the final answer quotes the output.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import OpenAIChatCompletionsModel, RunConfig, Runner, set_tracing_disabled
from agents.sandbox import Manifest, SandboxAgent, SandboxRunConfig
from agents.sandbox.capabilities import Shell
from agents.sandbox.entries import File
from agents.sandbox.errors import ExecTimeoutError, WorkspaceReadNotFoundError
from agents.sandbox.manifest import Environment
from openai import AsyncOpenAI

from agent_client.adapters.openai_agents_sandbox import (
    AgentSandboxClient,
    AgentSandboxClientOptions,
)
from agent_client.service import ExecutionClient
from tests.support.scripted_openai import ScriptedOpenAI, call

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

MODEL = "dev"


@pytest.fixture(autouse=True)
def no_trace_export() -> None:
    """The SDK exports traces to OpenAI by default: no packet may leave this machine."""
    set_tracing_disabled(True)


@pytest.fixture
async def model(llm: ScriptedOpenAI) -> AsyncIterator[OpenAIChatCompletionsModel]:
    client = AsyncOpenAI(base_url=llm.url, api_key="scripted", max_retries=0)
    yield OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    await client.close()


def quote_tool_output(body: dict[str, Any]) -> str:
    tool_messages = [m for m in body["messages"] if m.get("role") == "tool"]
    return f"The sandbox said: {tool_messages[-1]['content']}"


async def active_sessions(base_url: str, api_key: str) -> set[str]:
    async with ExecutionClient(base_url, api_key) as client:
        return {s.id for s in await client.list_sessions() if s.state == "active"}


async def test_sandbox_agent_runs_its_shell_tool_in_a_service_session(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, api_key = service
    llm.script(
        MODEL,
        [
            call("exec_command", {"cmd": "cat notes.txt; id -u; python3 -c 'print(6 * 7)'"}),
            quote_tool_output,
        ],
    )
    agent = SandboxAgent(
        name="dev",
        instructions="Work in the sandbox.",
        model=model,
        # The default capabilities add apply_patch, a Responses-only (freeform) tool; a Chat
        # Completions model gets the shell alone.
        capabilities=[Shell()],
        default_manifest=Manifest(entries={"notes.txt": File(content=b"from the manifest\n")}),
    )
    before = await active_sessions(base_url, api_key)
    run_config = RunConfig(
        sandbox=SandboxRunConfig(
            client=AgentSandboxClient(base_url, api_key), options=AgentSandboxClientOptions()
        )
    )

    result = await Runner.run(agent, "Read the notes.", run_config=run_config)

    assert "from the manifest" in result.final_output
    assert "42" in result.final_output
    assert "\n0\n" not in result.final_output  # not root
    assert await active_sessions(base_url, api_key) == before  # the session was deleted


async def test_session_operations_against_the_service(service: tuple[str, str]) -> None:
    base_url, api_key = service
    client = AgentSandboxClient(base_url, api_key)
    session = await client.create(options=AgentSandboxClientOptions(exec_timeout_s=3))
    try:
        async with session:
            await session.write(Path("dir/data.bin"), io.BytesIO(bytes(range(256))))
            assert (await session.read(Path("/workspace/dir/data.bin"))).read() == bytes(range(256))
            listed = await session.exec("ls dir && exit 5")
            assert (listed.stdout, listed.exit_code) == (b"data.bin\n", 5)
            with pytest.raises(WorkspaceReadNotFoundError):
                await session.read(Path("missing.txt"))
            with pytest.raises(ExecTimeoutError):
                await session.exec("sleep 30", timeout=1)

            archive = await session.persist_workspace()
            await session.exec("rm -rf dir")
            await session.hydrate_workspace(archive)
            restored = await session.read(Path("dir/data.bin"))
            assert restored.read() == bytes(range(256))
            listing = (await session.exec("ls -A")).stdout.split()
            assert b"dir" in listing
            assert not [name for name in listing if name.endswith(b".tar")]
            assert await session.running()
    finally:
        await client.delete(session)
    assert not await session.running()


async def test_what_the_service_cannot_give_is_refused_at_create(
    service: tuple[str, str],
) -> None:
    base_url, api_key = service
    client = AgentSandboxClient(base_url, api_key)

    with pytest.raises(ValueError, match="/workspace"):
        await client.create(manifest=Manifest(root="/home/agent"))


async def test_resume_reattaches_or_replaces_an_ended_session(service: tuple[str, str]) -> None:
    base_url, api_key = service
    client = AgentSandboxClient(base_url, api_key)
    session = await client.create()
    await session.start()
    await session.write(Path("kept.txt"), io.BytesIO(b"still here"))
    payload = client.serialize_session_state(session.state)
    first_id = session.state.service_session_id

    reattached = await client.resume(client.deserialize_session_state(dict(payload)))
    assert reattached.state.service_session_id == first_id
    assert (await reattached.read(Path("kept.txt"))).read() == b"still here"

    await client.delete(session)
    replaced = await client.resume(client.deserialize_session_state(dict(payload)))
    try:
        assert replaced.state.service_session_id != first_id
        assert await replaced.running()
        with pytest.raises(WorkspaceReadNotFoundError):
            await replaced.read(Path("kept.txt"))
    finally:
        await client.delete(replaced)


async def test_bash_sessions_and_manifest_environment(service: tuple[str, str]) -> None:
    base_url, api_key = service
    client = AgentSandboxClient(base_url, api_key)
    manifest = Manifest(environment=Environment(value={"GREETING": "it's a 'quoted' value"}))
    for language in ("bash", "python"):
        session = await client.create(
            manifest=manifest, options=AgentSandboxClientOptions(language=language)
        )
        try:
            result = await session.exec('printf %s "$GREETING"')
        finally:
            await client.delete(session)
        assert result.stdout == b"it's a 'quoted' value", language


async def test_commands_as_another_user_are_refused(service: tuple[str, str]) -> None:
    base_url, api_key = service
    client = AgentSandboxClient(base_url, api_key)
    session = await client.create()
    try:
        with pytest.raises(ValueError, match="non-root user"):
            await session.exec("id", user="root")
    finally:
        await client.delete(session)
