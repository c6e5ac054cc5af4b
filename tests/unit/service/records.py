"""Small builders of records for the service's unit and contract tests."""

from __future__ import annotations

from executor_service.jobs.execution import Execution, ExecutionRequest
from executor_service.jobs.ids import new_id, utcnow


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
