"""Opt-in: the agent half against the real local model (scripts/local-model.sh), not a script.

Deselected by scripts/test.sh (marker ``llm``): a 0.5B model on 2 CPU cores takes minutes per team
run. Run it with the model server up:

    bash scripts/local-model.sh && AGENT_SANDBOX_REQUIRE_LLM=1 uv run pytest -m llm tests/llm
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from agent_client.models.base import UserMessage
from agent_client.models.openai_client import OpenAIModelClient
from tests.llm.readme_command import ReadmeCommand

pytestmark = pytest.mark.llm

# A CPU model answers in seconds to a couple of minutes; these bound a hung server, not speed.
COMPLETION_TIMEOUT_S = 300
TEAM_RUN_TIMEOUT_S = 1500


async def test_the_readme_model_answers_a_chat_completion(local_model: ReadmeCommand) -> None:
    model = OpenAIModelClient(
        model=local_model.model,
        base_url=local_model.base_url,
        api_key=local_model.value("--api-key"),
        timeout_s=COMPLETION_TIMEOUT_S,
        max_retries=0,
        temperature=0,
    )
    try:
        result = await model.create(
            [UserMessage(content="Write a Python function add(a, b) that returns a + b.")]
        )
    finally:
        await model.close()
    assert "def add" in result.content
    assert result.usage.completion_tokens > 0


@pytest.mark.e2e
@pytest.mark.docker
@pytest.mark.redis
@pytest.mark.timeout(TEAM_RUN_TIMEOUT_S + 120)
def test_the_readme_cli_command_runs_the_models_code_in_the_sandbox(
    local_model: ReadmeCommand, service: tuple[str, str]
) -> None:
    service_url, service_key = service
    finished = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", *local_model.against(service_url, service_key)],
        capture_output=True,
        text=True,
        timeout=TEAM_RUN_TIMEOUT_S,
        check=False,
    )
    transcript = finished.stdout + finished.stderr
    assert finished.returncode == 0, transcript
    executions = httpx.get(
        f"{service_url}/v1/executions",
        headers={"Authorization": f"Bearer {service_key}"},
        timeout=30,
    ).json()["executions"]
    ran = [e for e in executions if e["state"] == "finished" and e["result"] is not None]
    assert ran, f"the team ran no code in the sandbox; its transcript:\n{transcript}"
    # What the sandbox returned is what the team was shown.
    codes = {e["result"]["exit_code"] for e in ran}
    assert any(f"exit code {code}" in transcript for code in codes), (codes, transcript)
