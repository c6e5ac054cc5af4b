"""The one shape of every error response: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: Annotated[str, Field(examples=["validation_error"])]
    message: Annotated[str, Field(examples=["Field required"])]
    field: Annotated[str | None, Field(examples=["language"])] = None


class ErrorBody(BaseModel):
    """The one shape of every error response."""

    error: ErrorDetail
