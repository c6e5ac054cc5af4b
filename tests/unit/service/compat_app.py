"""The real app in-process (httpx.ASGITransport) on a real Redis, no worker: for the Piston and
Judge0 mappings' unit tests. Executions stay queued unless a test moves them through the store
as a worker would (claim, then finish)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from executor_service.api.app import create_app
from executor_service.jobs.ids import utcnow
from executor_service.jobs.store import Stores
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.sandbox.spec import RunResult, RunStatus
from executor_service.settings import Settings


def add_key(stores: Stores, tenant: str, **fields: object) -> str:
    key_id, key = new_key()
    stores.keys.add(
        key,
        ApiKey.model_validate(
            {"key_id": key_id, "tenant": tenant, "created_at": utcnow()} | fields
        ),
    )
    return key


@asynccontextmanager
async def app_client(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, stores=stores)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


def finish(stores: Stores, execution_id: str, **result: object) -> None:
    """Move a queued execution to finished with `result`, the way a worker does."""
    claimed = stores.executions.claim(execution_id, "test-worker")
    assert claimed is not None
    fields: dict[str, object] = {
        "status": RunStatus.OK,
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
        "wall_time_s": 0.25,
        "cpu_time_s": 0.125,
        "memory_peak_bytes": 4 * 1024 * 1024,
    }
    stores.executions.finish(execution_id, RunResult.model_validate(fields | result))
