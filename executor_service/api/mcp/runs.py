"""A tool's run from admission to its end, and what happens to it when the caller leaves.

An MCP call is synchronous from the model's side: the tool waits for the run. If the client
gives up first (it cancels the call, or closes the request), the run is cancelled as
`POST /v1/executions/{id}/cancel` would, instead of holding a sandbox for a reader that is gone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import anyio
import anyio.to_thread
from redis import RedisError

from executor_service.api.admission import admit, build_request, wait_until_final
from executor_service.api.mcp.results import is_answer
from executor_service.api.schemas import ExecutionCreate
from executor_service.api.services import Services
from executor_service.errors import Overloaded, ServiceError, error_for_code
from executor_service.jobs.execution import Execution, ExecutionState
from executor_service.jobs.store_rules import RETRY_AFTER_S
from executor_service.jobs.tenant import ApiKey


def cancel_run(services: Services, execution_id: str, tenant: str) -> Execution:
    """Cancel unless it already ended, counted as the REST route counts it."""
    execution, changed = services.stores.executions.cancel(execution_id, tenant)
    if changed:
        services.metrics.count_outcome("cancelled")
    return execution


class CallerWatch:
    """Who cancels a run whose caller left: the handler if the run was already admitted, the
    thread itself if it admits the run only after the caller left."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: tuple[str, str] | None = None
        self._left = False

    def admitted(self, execution_id: str, tenant: str) -> bool:
        """Record the run; False if the caller already left (the thread then cancels it)."""
        with self._lock:
            self._admitted = (execution_id, tenant)
            return not self._left

    def caller_left(self) -> tuple[str, str] | None:
        """Mark the caller gone; the run to cancel, if one was admitted."""
        with self._lock:
            self._left = True
            return self._admitted


def run_to_end(
    services: Services, key: ApiKey, body: ExecutionCreate, watch: CallerWatch | None = None
) -> Execution:
    """Admit the run as the REST API does, then wait for as long as it may legitimately take.

    The wait is the run's lease (its wall time plus the service's margin): a run not ended by
    then is stuck behind others, so it is cancelled rather than left to finish unread.
    """
    checked = build_request(services, key, body)
    execution = admit(services, key, checked)
    if watch is not None and not watch.admitted(execution.id, key.tenant):
        return cancel_run(services, execution.id, key.tenant)
    final = wait_until_final(services, execution.id, checked.lease_s)
    if not final.state.final:
        final = cancel_run(services, execution.id, key.tenant)
        if final.state == ExecutionState.CANCELLED:
            raise Overloaded(
                f"the run did not end within {checked.lease_s:g} s (the queue is busy); it was "
                "cancelled",
                retry_after_s=RETRY_AFTER_S,
            )
    if final.state == ExecutionState.FAILED and final.error is not None:
        raise error_for_code(final.error.code, final.error.message)
    if not is_answer(final):
        raise ServiceError(f"the run ended {final.state.value} without a result")
    return final


async def run_for_caller(services: Services, work: Callable[[CallerWatch], Execution]) -> Execution:
    """`work` in a thread; if the caller leaves meanwhile, cancel the run it admitted.

    The thread is abandoned at once (it cannot be interrupted); the cancellation ends the run,
    and with it the thread's wait.
    """
    watch = CallerWatch()
    try:
        return await anyio.to_thread.run_sync(work, watch, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        admitted = watch.caller_left()
        # A store that does not answer cannot cancel: the run then ends at its wall time.
        if admitted is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(RedisError, ServiceError):
                await anyio.to_thread.run_sync(cancel_run, services, *admitted)
        raise
