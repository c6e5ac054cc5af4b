"""Accept executions: resolve the policy, check the request in full, then queue it.

Everything a request can get wrong is refused here, before it is stored, so what is accepted
is never lost to a validation error on the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from executor_service.api.services import Services
from executor_service.api.wire.execution_requests import ExecutionCreate, execution_request
from executor_service.errors import InvalidRequest, ServiceError, SessionEnded
from executor_service.jobs.execution import Execution, ExecutionRequest
from executor_service.jobs.ids import new_id, utcnow
from executor_service.jobs.session import SessionKind, SessionState
from executor_service.jobs.tenant import ApiKey


@dataclass(frozen=True)
class Checked:
    """A request that passed every check, and how long its claim may last once a worker runs it."""

    request: ExecutionRequest
    lease_s: float


def build_request(services: Services, key: ApiKey, body: ExecutionCreate) -> Checked:
    """Check `body` in full. In a session it may run any language the session's policy allows
    that the session's image carries (one workspace for all of them); its creation language only
    chose that image."""
    policy_name = body.policy
    sandbox_language = None
    if body.session_id is not None:
        session = services.stores.sessions.get(body.session_id, key.tenant)
        if session.state != SessionState.ACTIVE or utcnow() >= session.expires_at:
            raise SessionEnded(
                f"session {session.id} is {session.state.value}; open a new one",
                field="session_id",
            )
        if policy_name is not None and policy_name != session.policy:
            raise InvalidRequest(
                f"session {session.id} runs under policy {session.policy!r}", field="policy"
            )
        if session.kind == SessionKind.INTERPRETER and body.language != "python":
            # Refused here, not only by the worker: a 422 now rather than a failed execution.
            raise InvalidRequest(
                f"session {session.id} is an interpreter session: it runs Python cells only, "
                f"not {body.language!r}; run it in a plain session",
                field="language",
            )
        policy_name = session.policy
        sandbox_language = session.language
    policy = services.planner.policy_for(key, policy_name)
    request = execution_request(body, policy.name)
    plan = services.planner.plan(request, labels={}, sandbox_language=sandbox_language)
    lease = plan.config.limits.wall_time_s + services.settings.lease_margin_s
    return Checked(request=request, lease_s=lease)


def admit(services: Services, key: ApiKey, checked: Checked) -> Execution:
    """Store the execution and queue its task message, in one step (quota, queue and session
    checks are atomic there): an admitted execution always has its message. A store that cannot
    be reached is answered 503 (error_responses)."""
    execution = Execution(
        id=new_id("ex"),
        tenant=key.tenant,
        request=checked.request,
        created_at=utcnow(),
        lease_s=checked.lease_s,
    )
    services.stores.executions.create(
        execution,
        key=key,
        max_queued=services.settings.max_queue_length,
        message=partial(services.dispatcher.entry, execution.id),
    )
    return execution


def wait_until_final(services: Services, execution_id: str, timeout_s: float) -> Execution:
    """The record at the end (one blocking read, not one per event of the run), or as it is at
    the deadline."""
    executions = services.stores.executions
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        ended = executions.wait_ended(execution_id, remaining)
        if ended is not None:
            return ended
    return executions.get(execution_id)


def with_field_prefix(exc: ServiceError, prefix: str) -> ServiceError:
    """The same error, its field placed under `prefix` (e.g. executions.3.code)."""
    field = f"{prefix}.{exc.field}" if exc.field else prefix
    return type(exc)(exc.message, field=field, retry_after_s=exc.retry_after_s)
