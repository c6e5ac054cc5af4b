"""RemoteExecutor on the real service: bash, Python and JavaScript blocks of a run share a file."""

from __future__ import annotations

import pytest

from agent_client.executors import RemoteExecutor
from agent_client.messages import CodeBlock
from agent_client.service import ExecutionClient

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]


async def test_blocks_of_three_languages_share_one_sessions_workspace(
    service: tuple[str, str],
) -> None:
    base_url, api_key = service
    blocks = [
        CodeBlock(code="echo from-bash > notes.txt", language="bash"),
        CodeBlock(code="open('notes.txt', 'a').write('from-python\\n')", language="python"),
        CodeBlock(
            code="const fs = require('fs');\n"
            "fs.appendFileSync('notes.txt', 'from-node\\n');\n"
            "process.stdout.write(fs.readFileSync('notes.txt', 'utf8'));",
            language="javascript",
        ),
    ]
    async with ExecutionClient(base_url, api_key) as client:
        async with RemoteExecutor(client) as executor:
            result = await executor.execute_code_blocks(blocks)
            sessions = executor.session_ids
        states = {s.id: s.state for s in await client.list_sessions()}
    assert result.exit_code == 0, result.output
    assert result.output == "from-bash\nfrom-python\nfrom-node"
    assert list(sessions) == ["python"]
    assert states[sessions["python"]] == "deleted"
