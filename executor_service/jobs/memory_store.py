"""Every store in this process's memory: the shared state of unit tests, with no server.

Each store keeps the Redis store's semantics (checks, errors, ordering, expiry), so a test that
passes against these holds against Redis; tests/unit/service/test_store_behaviour.py runs one
suite against both. Where the Redis store departs from its own contract, these keep the contract
(memory/executions.py lists where) and the suite marks the Redis side.
"""

from __future__ import annotations

from executor_service.jobs.memory.base import Shared
from executor_service.jobs.memory.executions import MemoryExecutionStore
from executor_service.jobs.memory.keys import MemoryKeyStore
from executor_service.jobs.memory.session_ops import MemorySessionOpQueue
from executor_service.jobs.memory.sessions import MemorySessionStore
from executor_service.jobs.memory.workers import MemoryHealth, MemoryWorkerRegistry
from executor_service.jobs.store import Stores
from executor_service.settings import Settings


def memory_stores(settings: Settings) -> Stores:
    """Fresh, empty stores that share one lock, as the Redis stores share one server."""
    shared = Shared()
    return Stores(
        keys=MemoryKeyStore(shared),
        executions=MemoryExecutionStore(shared, settings),
        sessions=MemorySessionStore(shared, settings),
        session_ops=MemorySessionOpQueue(shared),
        workers=MemoryWorkerRegistry(shared, settings),
        health=MemoryHealth(),
    )
