"""The session record: a long-lived workspace container that runs one execution at a time."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    DELETED = "deleted"


class SessionKind(enum.StrEnum):
    """What runs an execution: a new process each time (plain), or a cell in the session's one
    Jupyter kernel, which keeps variables and imports between executions (interpreter)."""

    PLAIN = "plain"
    INTERPRETER = "interpreter"


class Session(BaseModel):
    """The stored record; callers see it through the API's mapping, never as stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    tenant: str
    policy: str
    language: str
    kind: SessionKind = SessionKind.PLAIN
    state: SessionState = SessionState.ACTIVE
    created_at: datetime
    last_used_at: datetime
    idle_timeout_s: int
    max_lifetime_s: int
    container_id: str | None = None  # set by the worker once the sandbox runs

    @property
    def expires_at(self) -> datetime:
        """The earlier of the idle deadline and the end of its lifetime."""
        return min(
            self.last_used_at + timedelta(seconds=self.idle_timeout_s),
            self.created_at + timedelta(seconds=self.max_lifetime_s),
        )
