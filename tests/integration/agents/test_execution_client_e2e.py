"""ExecutionClient against the real service: every route of the contract it wraps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent_client.errors import Conflict, NotFound, SessionBusy, Unauthorized, ValidationFailed
from agent_client.service import (
    ExecutionClient,
    ExecutionCreate,
    OutputEvent,
    ResultEvent,
    StateEvent,
)

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]


@pytest.fixture
async def client(service: tuple[str, str]) -> AsyncIterator[ExecutionClient]:
    base_url, api_key = service
    async with ExecutionClient(base_url, api_key, poll_interval_s=0.1) as opened:
        yield opened


async def test_run_with_files_and_collect(client: ExecutionClient) -> None:
    execution = await client.run(
        "python",
        "import pathlib\n"
        "data = pathlib.Path('data/in.csv').read_text()\n"
        "pathlib.Path('out').mkdir()\n"
        "pathlib.Path('out/n.txt').write_text(str(len(data.splitlines())))\n"
        "print('rows', len(data.splitlines()))",
        files={"data/in.csv": b"a,b\n1,2\n3,4\n"},
        collect=["out/*.txt"],
        timeout_s=60,
    )
    assert execution.state == "finished"
    assert execution.result is not None
    assert execution.result.stdout == "rows 3\n"
    assert [(f.path, f.data) for f in execution.result.files] == [("out/n.txt", b"3")]


async def test_stream_gives_state_output_and_result(client: ExecutionClient) -> None:
    execution = await client.submit(
        "python", "import time\nprint('one', flush=True)\ntime.sleep(1)\nprint('two')"
    )
    events = [event async for event in client.stream(execution.id)]
    assert any(isinstance(e, StateEvent) for e in events)
    output = "".join(e.data for e in events if isinstance(e, OutputEvent))
    assert "one" in output
    last = events[-1]
    assert isinstance(last, ResultEvent)
    assert last.execution.result is not None
    assert last.execution.result.stdout == "one\ntwo\n"


async def test_batch_list_and_cancel(client: ExecutionClient) -> None:
    made = await client.batch(
        [
            ExecutionCreate(code="print('first')"),
            ExecutionCreate(code="import time; time.sleep(60)"),
        ]
    )
    assert len(made) == 2
    cancelled = await client.cancel(made[1].id)
    final = await client.wait(cancelled.id, timeout_s=60)
    assert final.state == "cancelled"
    first = await client.wait(made[0].id, timeout_s=60)
    assert first.result is not None
    assert first.result.stdout == "first\n"
    listed = [e.id for e in await client.list(limit=50)]
    assert made[0].id in listed
    assert made[1].id in listed


async def test_session_files_busy_and_delete(client: ExecutionClient) -> None:
    session = await client.create_session(language="python")
    await client.upload(session.id, "in/data.txt", b"hello")
    long_run = await client.submit("python", "import time; time.sleep(30)", session_id=session.id)
    with pytest.raises(SessionBusy):
        await client.submit("python", "print(1)", session_id=session.id)
    await client.cancel(long_run.id)
    await client.wait(long_run.id, timeout_s=60)
    done = await client.run(
        "python",
        "open('out.txt', 'w').write(open('in/data.txt').read().upper())",
        session_id=session.id,
        timeout_s=60,
    )
    assert done.result is not None
    assert done.result.exit_code == 0
    paths = {f.path for f in await client.list_files(session.id)}
    assert {"in/data.txt", "out.txt"} <= paths
    assert await client.download(session.id, "out.txt") == b"HELLO"
    await client.delete_session(session.id)
    # The contract leaves the status of a deleted session's files open: gone or in the wrong state.
    with pytest.raises((NotFound, Conflict)):
        await client.list_files(session.id)


async def test_errors_arrive_typed(client: ExecutionClient, service: tuple[str, str]) -> None:
    with pytest.raises(NotFound):
        await client.get("ex_does_not_exist")
    with pytest.raises(ValidationFailed) as caught:
        await client.submit("python", "print(1)", wait_timeout_s=-1, wait=True)
    assert caught.value.field is not None
    async with ExecutionClient(service[0], "not-a-key") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list()
