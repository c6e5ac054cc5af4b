"""How sessions and their workspace files look to a caller (/v1/sessions), and the mappers from
the session record and a worker's file listing onto it. The container id stays server-side."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from executor_service.jobs import session as records
from executor_service.jobs.session_commands import Listing


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    DELETED = "deleted"


class SessionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policy": "default",
                    "language": "python",
                    "kind": "interpreter",
                    "idle_timeout_s": 600,
                    "max_lifetime_s": 3600,
                }
            ]
        },
    )

    policy: Annotated[str | None, Field(max_length=64)] = None
    language: Annotated[str, Field(min_length=1, max_length=64)] = "python"
    # "interpreter": each execution runs as a cell of one Jupyter kernel (Python only), so
    # variables and imports persist and displays (plots, HTML) come back in `result.outputs`.
    kind: Literal["plain", "interpreter"] = "plain"
    idle_timeout_s: Annotated[int | None, Field(gt=0)] = None
    max_lifetime_s: Annotated[int | None, Field(gt=0)] = None


class SessionView(BaseModel):
    """The wire form of a session; the container id stays server-side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(examples=["se_0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"])]
    policy: Annotated[str, Field(examples=["default"])]
    language: Annotated[str, Field(examples=["python"])]
    kind: Literal["plain", "interpreter"] = "plain"
    state: SessionState
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    idle_timeout_s: Annotated[int, Field(examples=[600])]
    max_lifetime_s: Annotated[int, Field(examples=[3600])]


class SessionList(BaseModel):
    sessions: list[SessionView]


class WorkspaceFileView(BaseModel):
    path: Annotated[str, Field(examples=["a/b.txt"])]
    size_bytes: Annotated[int, Field(examples=[3])]


class FileList(BaseModel):
    files: list[WorkspaceFileView]
    truncated: bool = False  # more files exist than one listing returns (max_listed_files)


# mappers: record -> wire ------------------------------------------------------------------------


def session_view(session: records.Session) -> SessionView:
    return SessionView(
        id=session.id,
        policy=session.policy,
        language=session.language,
        kind=session.kind.value,
        state=SessionState(session.state.value),
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        expires_at=session.expires_at,
        idle_timeout_s=session.idle_timeout_s,
        max_lifetime_s=session.max_lifetime_s,
    )


def session_list(sessions: Iterable[records.Session]) -> SessionList:
    return SessionList(sessions=[session_view(session) for session in sessions])


def file_list(listing: Listing) -> FileList:
    return FileList(
        files=[WorkspaceFileView(path=f.path, size_bytes=f.size_bytes) for f in listing.files],
        truncated=listing.truncated,
    )
