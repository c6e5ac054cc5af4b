"""The real app in-process over httpx.ASGITransport, with a real Redis and no worker.

Without a worker, submitted executions stay queued and session operations time out, which is
what lets these tests pin the contract's refusals, shapes and isolation exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from executor_service.api.app import create_app
from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.session import SessionState
from executor_service.jobs.store import Stores
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.settings import Settings
from tests.unit.service.records import session
from tests.unit.service.redis_server import redis_server


@dataclass(frozen=True)
class Tenants:
    acme: dict[str, str]  # headers
    other: dict[str, str]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def contract_settings(redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        redis_url=redis_url,
        state_dir=tmp_path,
        session_op_claim_s=0.5,
        max_request_bytes=2 * 1024 * 1024,
    )
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def store(contract_settings: Settings) -> Stores:
    return redis_stores(contract_settings)[0]


def _key(store: Stores, tenant: str, **fields: object) -> dict[str, str]:
    key_id, key = new_key()
    store.keys.add(
        key,
        ApiKey.model_validate(
            {"key_id": key_id, "tenant": tenant, "created_at": utcnow()} | fields
        ),
    )
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def tenants(store: Stores) -> Tenants:
    return Tenants(
        acme=_key(store, "acme", max_concurrency=3),
        other=_key(store, "other", policies=["strict"], max_concurrency=3),
    )


@pytest.fixture
async def api(contract_settings: Settings, store: Stores) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(contract_settings, stores=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


def session_record(
    store: Stores,
    tenant: str,
    ident: str,
    state: SessionState = SessionState.ACTIVE,
) -> str:
    """A session as the worker leaves it, written straight to the store (no worker runs here);
    an ended one is ended through the store's own transition, as the janitor or a delete does."""
    store.sessions.create(session(ident, tenant, container_id="not-a-container"), limit=10)
    if state != SessionState.ACTIVE:
        store.sessions.update(ident, lambda current: current.model_copy(update={"state": state}))
    return ident
