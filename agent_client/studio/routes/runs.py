"""Runs: start one, follow its events (SSE), stop it, answer its user proxy, read history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent_client.studio.deps import Manager, Runs
from agent_client.studio.errors import RunNotFound
from agent_client.studio.routes.specs import SpecText, checked_spec
from agent_client.studio.store import RunRecord

router = APIRouter(prefix="/api/runs")


class RunIn(SpecText):
    task: str = Field(min_length=1)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str
    text: str


class RunOut(BaseModel):
    run: RunRecord
    events: list[dict[str, Any]]


@router.get("")
def list_runs(runs: Runs) -> list[RunRecord]:
    return runs.list_runs()


@router.post("", status_code=201)
async def start_run(body: RunIn, manager: Manager) -> RunRecord:
    spec = checked_spec(body)
    live = await manager.start(spec, body.task)
    return live.record


def _record(runs: Runs, run_id: str) -> RunRecord:
    record = runs.get_run(run_id)
    if record is None:
        raise RunNotFound(f"no run {run_id}; GET /api/runs lists them")
    return record


@router.get("/{run_id}")
def get_run(run_id: str, runs: Runs) -> RunOut:
    return RunOut(run=_record(runs, run_id), events=runs.events(run_id))


@router.get("/{run_id}/export")
def export_run(run_id: str, runs: Runs) -> Response:
    out = get_run(run_id, runs)
    return Response(
        out.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.json"'},
    )


@router.get("/{run_id}/events")
async def follow_run(run_id: str, runs: Runs, manager: Manager) -> StreamingResponse:
    """Server-sent events: everything so far, then live ones until the run's ``end``."""
    live = manager.get(run_id)
    stored: list[dict[str, Any]] = []
    if live is None:
        _record(runs, run_id)
        stored = runs.events(run_id)

    async def stream() -> AsyncIterator[str]:
        source = live.follow() if live is not None else _replay(stored)
        async for event in source:
            yield f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def _replay(events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for event in events:
        yield event


@router.post("/{run_id}/stop", status_code=202)
def stop_run(run_id: str, manager: Manager) -> dict[str, str]:
    manager.stop(run_id)
    return {"status": "stopping"}


@router.post("/{run_id}/input", status_code=202)
def answer(run_id: str, body: AnswerIn, manager: Manager) -> dict[str, str]:
    manager.answer(run_id, body.request_id, body.text)
    return {"status": "answered"}


@router.get("/{run_id}/files/{file_id}")
def download(run_id: str, file_id: str, runs: Runs) -> Response:
    stored = runs.get_file(run_id, file_id)
    if stored is None:
        raise RunNotFound(f"run {run_id} has no file {file_id}")
    name = stored.path.rsplit("/", 1)[-1].replace('"', "")
    return Response(
        stored.content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
