"""The session record: a long-lived workspace container that runs one execution at a time."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    DELETED = "deleted"


class SessionView(BaseModel):
    """The wire form of a session; the container id stays server-side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(examples=["se_0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"])]
    policy: Annotated[str, Field(examples=["default"])]
    language: Annotated[str, Field(examples=["python"])]
    state: SessionState
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    idle_timeout_s: Annotated[int, Field(examples=[600])]
    max_lifetime_s: Annotated[int, Field(examples=[3600])]


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    tenant: str
    policy: str
    language: str
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

    def view(self) -> SessionView:
        return SessionView(
            id=self.id,
            policy=self.policy,
            language=self.language,
            state=self.state,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            expires_at=self.expires_at,
            idle_timeout_s=self.idle_timeout_s,
            max_lifetime_s=self.max_lifetime_s,
        )
