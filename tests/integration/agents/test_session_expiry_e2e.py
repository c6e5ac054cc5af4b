"""A session that the real service expires between two code blocks is replaced, and the agent told.

The stack's janitor sweeps every 0.5 s, so a session with a 2 s idle timeout really ends while
the model "thinks"; each test waits until the service reports it expired, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent_client.agents import AssistantAgent, CodeExecutorAgent
from agent_client.conditions import MaxMessageTermination, TextMentionTermination
from agent_client.executors import RemoteExecutor
from agent_client.executors.remote import SESSION_RENEWED_NOTICE
from agent_client.messages import CodeBlock, CodeExecutionEvent
from agent_client.models import OpenAIModelClient
from agent_client.service import ExecutionClient
from agent_client.teams import SelectorGroupChat
from tests.support.scripted_openai import ScriptedOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

IDLE_TIMEOUT_S = 2
EXPIRY_BOUND_S = 30.0

WRITE = "open('notes.txt', 'w').write('42')\nprint('saved')\n"
READ_BACK = (
    "try:\n"
    "    print('still here:', open('notes.txt').read())\n"
    "except FileNotFoundError:\n"
    "    print('notes.txt is gone')\n"
)


@pytest.fixture
async def sandbox(service: tuple[str, str]) -> AsyncIterator[ExecutionClient]:
    base_url, api_key = service
    async with ExecutionClient(base_url, api_key, poll_interval_s=0.1) as client:
        yield client


async def until_expired(client: ExecutionClient, session_id: str) -> str:
    """The session's state once the service has ended it, or the last state seen at the bound."""
    deadline = time.monotonic() + EXPIRY_BOUND_S
    state = (await client.get_session(session_id)).state
    while state == "active" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        state = (await client.get_session(session_id)).state
    return state


async def test_an_expired_session_is_replaced_and_its_files_are_gone(
    sandbox: ExecutionClient,
) -> None:
    executor = RemoteExecutor(sandbox, idle_timeout_s=IDLE_TIMEOUT_S)
    try:
        first = await executor.execute_code_blocks([CodeBlock(code=WRITE, language="python")])
        old = executor.session_id
        assert old is not None
        assert await until_expired(sandbox, old) == "expired"
        second = await executor.execute_code_blocks([CodeBlock(code=READ_BACK, language="python")])
        new = executor.session_id
    finally:
        await executor.stop()
    assert (first.exit_code, first.output) == (0, "saved")
    assert second.exit_code == 0, second.output
    assert second.output == f"{SESSION_RENEWED_NOTICE}\nnotes.txt is gone"
    assert new is not None
    assert new != old
    assert (await sandbox.get_session(old)).state == "expired"
    assert (await sandbox.get_session(new)).state == "deleted"  # by stop(), not by expiry


async def test_a_team_whose_model_outlasts_the_idle_timeout_completes(
    llm: ScriptedOpenAI, sandbox: ExecutionClient, service: tuple[str, str]
) -> None:
    base_url, api_key = service
    executor = RemoteExecutor(sandbox, idle_timeout_s=IDLE_TIMEOUT_S)
    seen: dict[str, str] = {}

    def slow_second_block(_body: dict[str, Any]) -> str:
        # The model "thinks" (in the scripted server's thread) until the service has really
        # ended the session that the first block wrote its file in.
        session_id = executor.session_id
        assert session_id is not None
        seen["session"] = session_id
        headers = {"Authorization": f"Bearer {api_key}"}
        deadline = time.monotonic() + EXPIRY_BOUND_S
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
            while time.monotonic() < deadline:
                seen["state"] = http.get(f"/v1/sessions/{session_id}").json()["state"]
                if seen["state"] != "active":
                    break
                time.sleep(0.2)
        return f"Now reading it back:\n```python\n{READ_BACK}```"

    llm.script(
        "writer",
        [
            f"Saving a note:\n```python\n{WRITE}```",
            slow_second_block,
            "The sandbox was replaced and the note is gone, as reported. DONE",
        ],
    )
    # The model's timeout is above the bound on its "thinking" above.
    model = OpenAIModelClient(
        model="writer", base_url=llm.url, api_key="k", max_retries=0, timeout_s=60
    )
    team = SelectorGroupChat(
        [AssistantAgent("writer", model), CodeExecutorAgent("executor", executor)],
        selector_func=lambda thread: "executor" if thread[-1].source == "writer" else "writer",
        termination_condition=(
            TextMentionTermination("DONE", sources=["writer"]) | MaxMessageTermination(8)
        ),
    )
    try:
        result = await team.run("Save a note, then read it back.")
    finally:
        await model.close()

    assert seen.get("state") == "expired", seen
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.exit_code for r in runs] == [0, 0], [r.output for r in runs]
    assert runs[0].output == "saved"
    assert runs[1].output == f"{SESSION_RENEWED_NOTICE}\nnotes.txt is gone"
    assert result.stop_reason is not None
    assert "DONE" in result.stop_reason
    # The model's next request carried the notice, so it can recreate what it needs.
    last_request = llm.requests_for("writer")[-1]["messages"]
    assert any(SESSION_RENEWED_NOTICE in str(m["content"]) for m in last_request)
    assert llm.remaining("writer") == 0
    assert executor.session_ids == {}
    assert (await sandbox.get_session(seen["session"])).state == "expired"
