"""Live runs: a team driven in a task of its own, its events stored and fanned out to pages.

One ``LiveRun`` per run in progress: it numbers and stores each event, wakes the pages that
follow it, holds the questions a user proxy waits on, and owns the CancellationToken the Stop
button cancels (which cancels the sandbox execution in flight). ``RunManager`` starts, finds,
stops and answers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from agent_client.cancellation import CancellationToken
from agent_client.errors import AgentClientError
from agent_client.messages import TaskResult
from agent_client.service.client import ExecutionClient
from agent_client.service.models import Execution
from agent_client.spec import AssistantSpec, SpecProblem, TeamSpec
from agent_client.studio.errors import InvalidSpec, RunNotActive, RunNotFound
from agent_client.studio.events import (
    end_event,
    execution_cancel_event,
    execution_event,
    input_answered_event,
    input_request_event,
    message_event,
)
from agent_client.studio.keys import bound_keys
from agent_client.studio.recording import RecordingExecutionClient
from agent_client.studio.store import ConnectionStore, RunRecord, RunStatus, RunStore
from agent_client.team_builder import ToolRegistry, open_team

logger = logging.getLogger(__name__)

STOPPED_REASON = "Stopped from the studio."


class LiveRun:
    """One run in progress and every event it has produced so far."""

    def __init__(self, record: RunRecord, store: RunStore) -> None:
        self.record = record
        self.token = CancellationToken()
        self.events: list[dict[str, Any]] = []
        self.done = False
        self._store = store
        self._changed = asyncio.Condition()
        self._emitting = asyncio.Lock()
        self._last = time.monotonic()
        self._questions: dict[str, asyncio.Future[str]] = {}
        self.task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.record.id

    async def emit(self, event: dict[str, Any]) -> None:
        # One at a time: a cancelled turn's execution is still being cancelled (shielded, in
        # its own task) while the run records its end, and each event needs its own seq.
        async with self._emitting:
            now = time.monotonic()
            stamped = {
                "seq": len(self.events),
                **event,
                "at": datetime.now(UTC).isoformat(),
                "elapsed_s": round(now - self._last, 3),
            }
            self._last = now
            await asyncio.to_thread(self._store.append_event, self.id, stamped["seq"], stamped)
            async with self._changed:
                self.events.append(stamped)
                self._changed.notify_all()

    async def finish(self) -> None:
        async with self._changed:
            self.done = True
            self._changed.notify_all()

    async def follow(self, start: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Every event from ``start`` on, waiting for new ones until the run ends."""
        index = start
        while True:
            async with self._changed:
                await self._changed.wait_for(partial(self._news_after, index))
                batch = self.events[index:]
                ended = self.done
            for event in batch:
                yield event
            index += len(batch)
            if ended and index >= len(self.events):
                return

    def _news_after(self, index: int) -> bool:
        return len(self.events) > index or self.done

    async def ask(self, prompt: str) -> str:
        """The user proxy's input function: wait for the page to answer."""
        request_id = uuid.uuid4().hex[:12]
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._questions[request_id] = answer
        await self.emit(input_request_event(request_id, prompt))
        try:
            text = await answer
        finally:
            self._questions.pop(request_id, None)
        await self.emit(input_answered_event(request_id))
        return text

    def answer(self, request_id: str, text: str) -> bool:
        question = self._questions.get(request_id)
        if question is None or question.done():
            return False
        question.set_result(text)
        return True

    def execution_client(self, base_url: str, api_key: str) -> ExecutionClient:
        return RecordingExecutionClient(
            base_url, api_key, on_execution=self._on_execution, on_cancel=self._on_cancel
        )

    async def _on_execution(self, execution: Execution) -> None:
        file_ids: list[str | None] = []
        if execution.result is not None:
            for file in execution.result.files:
                if file.error is not None:
                    file_ids.append(None)
                    continue
                file_ids.append(
                    await asyncio.to_thread(self._store.add_file, self.id, file.path, file.data)
                )
        await self.emit(execution_event(execution, file_ids))

    async def _on_cancel(self, execution_id: str) -> None:
        await self.emit(execution_cancel_event(execution_id))


class RunManager:
    """Starts runs from specs and keeps the live ones reachable by id."""

    def __init__(self, runs: RunStore, connections: ConnectionStore, tools: ToolRegistry) -> None:
        self._runs = runs
        self._connections = connections
        self._tools = tools
        self._live: dict[str, LiveRun] = {}

    def get(self, run_id: str) -> LiveRun | None:
        return self._live.get(run_id)

    async def start(self, spec: TeamSpec, task: str) -> LiveRun:
        """Begin a run; the keys are bound first so a refused spec leaves no history entry.

        Raises:
            InvalidSpec: an agent names a tool that is not registered.
            UnboundKey: the spec names a key it may not use.
        """
        problems = [
            SpecProblem(
                path=f"agents.{index}.tools",
                message=f"tool {name!r} is not registered with this studio "
                f"(registered: {', '.join(sorted(self._tools)) or 'none'}); "
                "start the studio with --tool module:function to add one",
            )
            for index, agent in enumerate(spec.agents)
            if isinstance(agent, AssistantSpec)
            for name in agent.tools
            if name not in self._tools
        ]
        if problems:
            raise InvalidSpec("the spec names tools this studio does not offer", problems)
        endpoints = await asyncio.to_thread(self._connections.endpoints)
        secrets = await asyncio.to_thread(self._connections.secrets)
        env = bound_keys(spec, endpoints, secrets)
        record = await asyncio.to_thread(
            self._runs.create_run, task, spec.model_dump(mode="json", exclude_none=True)
        )
        run = LiveRun(record, self._runs)
        self._live[run.id] = run
        run.task = asyncio.create_task(self._drive(run, spec, task, env), name=f"run-{run.id}")
        return run

    def stop(self, run_id: str) -> None:
        run = self._live.get(run_id)
        if run is None or run.done:
            raise RunNotActive(f"run {run_id} is not running; only a live run can be stopped")
        run.token.cancel()

    def answer(self, run_id: str, request_id: str, text: str) -> None:
        run = self._live.get(run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} is not running here")
        if not run.answer(request_id, text):
            raise RunNotActive(f"run {run_id} is not waiting for input {request_id}")

    async def close(self) -> None:
        """Stop every live run (the studio is shutting down) and wait for them to record it."""
        runs = [r for r in self._live.values() if r.task is not None and not r.done]
        for run in runs:
            run.token.cancel()
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)

    async def _drive(self, run: LiveRun, spec: TeamSpec, task: str, env: Mapping[str, str]) -> None:
        status: RunStatus = "failed"
        stop_reason: str | None = None
        error: str | None = None
        try:
            async with open_team(
                spec,
                env=env,
                input_func=run.ask,
                tools=self._tools,
                execution_client=run.execution_client,
            ) as team:
                async for item in team.run_stream(task, cancellation=run.token):
                    if isinstance(item, TaskResult):
                        status, stop_reason = "finished", item.stop_reason
                    else:
                        await run.emit(message_event(item))
        except asyncio.CancelledError:
            if not run.token.cancelled:
                raise  # the studio itself is being cancelled, not this run
            status, stop_reason = "stopped", STOPPED_REASON
        except AgentClientError as exc:
            error = str(exc)
        except Exception as exc:
            logger.exception("run %s failed", run.id)
            error = f"{type(exc).__name__}: {exc}"
        try:
            await run.emit(end_event(status, stop_reason, error))
            await asyncio.to_thread(self._runs.finish_run, run.id, status, stop_reason, error)
        finally:
            await run.finish()
            self._live.pop(run.id, None)
