"""Small builders of records for the service's unit and contract tests."""

from __future__ import annotations

from executor_service.jobs.execution import Execution, ExecutionRequest
from executor_service.jobs.ids import new_id, utcnow
from executor_service.jobs.session import Session, SessionState


def execution(
    tenant: str = "acme", session_id: str | None = None, code: str = "print(1)"
) -> Execution:
    return Execution(
        id=new_id("ex"),
        tenant=tenant,
        request=ExecutionRequest(
            language="python", code=code, policy="default", session_id=session_id
        ),
        created_at=utcnow(),
    )


def session(
    ident: str,
    tenant: str = "acme",
    state: SessionState = SessionState.ACTIVE,
    container_id: str | None = None,
) -> Session:
    """A python session on the default policy, used just now."""
    now = utcnow()
    return Session(
        id=ident,
        tenant=tenant,
        policy="default",
        language="python",
        state=state,
        container_id=container_id,
        created_at=now,
        last_used_at=now,
        idle_timeout_s=60,
        max_lifetime_s=600,
    )
