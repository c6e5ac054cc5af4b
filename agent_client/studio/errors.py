"""What the studio refuses, each with a stable code and HTTP status; one handler writes the body."""

from __future__ import annotations

from collections.abc import Sequence

from agent_client.errors import AgentClientError
from agent_client.spec import SpecProblem


class StudioError(AgentClientError):
    """A request the studio cannot serve; ``message`` says what is wrong and how to fix it."""

    code = "studio_error"
    status = 400

    def __init__(self, message: str, problems: Sequence[SpecProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class InvalidSpec(StudioError):
    code = "invalid_spec"
    status = 422


class UnboundKey(StudioError):
    """A spec names a key for another endpoint than the one the key was saved for."""

    code = "unbound_key"
    status = 422


class RunNotFound(StudioError):
    code = "run_not_found"
    status = 404


class RunNotActive(StudioError):
    code = "run_not_active"
    status = 409


class EndpointNotFound(StudioError):
    code = "endpoint_not_found"
    status = 404
