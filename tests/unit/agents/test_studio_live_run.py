"""A live run's event log: numbered and stored in order even when emitted concurrently,
followed to its end, and a user proxy's question answered from outside."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_client.studio.runs import LiveRun
from agent_client.studio.store import SqlRunStore, open_engine


def live_run(tmp_path: Path) -> tuple[LiveRun, SqlRunStore]:
    store = SqlRunStore(open_engine(f"sqlite:///{tmp_path / 's.db'}"))
    return LiveRun(store.create_run("task", {}), store), store


async def test_concurrent_events_get_distinct_numbers_in_store_and_memory(
    tmp_path: Path,
) -> None:
    run, store = live_run(tmp_path)
    await asyncio.gather(*(run.emit({"kind": "message", "n": n}) for n in range(20)))
    assert [e["seq"] for e in run.events] == list(range(20))
    assert [e["seq"] for e in store.events(run.id)] == list(range(20))


async def test_followers_get_everything_from_where_they_start_until_the_end(
    tmp_path: Path,
) -> None:
    run, _ = live_run(tmp_path)
    await run.emit({"kind": "message", "n": 0})

    async def collect(start: int) -> list[int]:
        return [e["seq"] async for e in run.follow(start)]

    early, late = asyncio.create_task(collect(0)), asyncio.create_task(collect(1))
    await run.emit({"kind": "message", "n": 1})
    await run.emit({"kind": "end", "status": "finished"})
    await run.finish()
    assert await early == [0, 1, 2]
    assert await late == [1, 2]


async def test_a_question_waits_for_its_answer(tmp_path: Path) -> None:
    run, _ = live_run(tmp_path)
    asked = asyncio.create_task(run.ask("Your reply: "))
    request = await anext(e async for e in run.follow() if e["kind"] == "input_request")
    assert not run.answer("not-the-id", "no")
    assert run.answer(request["request_id"], "Ada")
    assert await asked == "Ada"
    assert run.events[-1] == {**run.events[-1], "kind": "input_answered"}
    assert not run.answer(request["request_id"], "again")  # answered once only
