"""Typed session operations (API -> worker) and their replies (worker -> API).

File contents never sit in these models: they travel beside them as bytes (see SessionOpQueue).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartSandbox(_Model):
    kind: Literal["start"] = "start"


class EndSession(_Model):
    kind: Literal["end"] = "end"


class WriteFile(_Model):
    """The file's bytes are the command's blob."""

    kind: Literal["write"] = "write"
    path: str


class ListFiles(_Model):
    kind: Literal["list"] = "list"
    max_entries: int


class ReadFile(_Model):
    kind: Literal["read"] = "read"
    path: str
    max_bytes: int


SessionOperation = Annotated[
    StartSandbox | EndSession | WriteFile | ListFiles | ReadFile, Field(discriminator="kind")
]


class SessionCommand(_Model):
    """One operation on one session; a worker that takes it after `claim_by` leaves it alone."""

    id: str
    session_id: str
    claim_by: float  # epoch seconds
    operation: SessionOperation


class FileEntry(_Model):
    path: str
    size_bytes: int


class Done(_Model):
    kind: Literal["done"] = "done"


class Listing(_Model):
    kind: Literal["listing"] = "listing"
    files: tuple[FileEntry, ...]
    truncated: bool


class Content(_Model):
    """The file's bytes are the reply's blob."""

    kind: Literal["content"] = "content"


class Refused(_Model):
    """A service error the worker raised, rebuilt with the same code on the API side."""

    kind: Literal["refused"] = "refused"
    code: str
    message: str
    field: str | None = None


SessionReply = Annotated[Done | Listing | Content | Refused, Field(discriminator="kind")]
