"""The client knows every error code the service can put on the wire, with the same status.

The service's codes are read from its exception tree at test time, not copied here, so a code
added to the service later fails this test until the client learns it (an unknown code would
reach callers as a bare ServiceError they cannot catch by meaning).
"""

from __future__ import annotations

import httpx
import pytest

import agent_client.errors as client_errors
from agent_client.errors import SERVICE_ERRORS_BY_CODE
from executor_service import errors as service_errors
from executor_service.api.error_responses import HTTP_CODES
from executor_service.settings import Settings
from tests.contract.conftest import Tenants

# Not a ServiceError subclass: the handler of request-schema errors writes this code itself
# (executor_service/api/error_responses.py, RequestValidationError -> 422 validation_error).
SCHEMA_ERROR = ("validation_error", 422)
# Starlette's own refusals (no route, wrong method, body too large) take their code from the
# app's status -> code table, HTTP_CODES, beside the tree.

# ConfigError only stops the service at start-up (bad settings or policy file); no request can
# ever be answered with it, so the client has nothing to map it to.
NEVER_ON_THE_WIRE = {"config_error"}


def service_tree() -> list[type[service_errors.ServiceError]]:
    """ServiceError and all its subclasses, however deep."""
    found: list[type[service_errors.ServiceError]] = []
    pending = [service_errors.ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def service_statuses() -> dict[str, set[int]]:
    statuses: dict[str, set[int]] = {SCHEMA_ERROR[0]: {SCHEMA_ERROR[1]}}
    for cls in service_tree():
        statuses.setdefault(cls.code, set()).add(cls.status_code)
    for status, code in HTTP_CODES.items():
        statuses.setdefault(code, set()).add(status)
    return statuses


def wire_codes() -> dict[str, int]:
    """Code -> HTTP status of everything the service can answer a request with."""
    statuses = service_statuses()
    ambiguous = {code: found for code, found in statuses.items() if len(found) > 1}
    assert not ambiguous, f"one code, several statuses: {ambiguous}"
    return {
        code: next(iter(found)) for code, found in statuses.items() if code not in NEVER_ON_THE_WIRE
    }


def test_the_derivation_sees_the_whole_service_tree() -> None:
    # Guards the walk itself: a grandchild (two levels down) and the base class are found.
    codes = wire_codes()
    assert codes["session_ended"] == 409
    assert codes["image_missing"] == 503
    assert codes["internal_error"] == 500
    assert codes["validation_error"] == 422
    assert codes["method_not_allowed"] == 405
    assert "config_error" in service_statuses()


def test_the_client_maps_every_service_code_with_the_same_status() -> None:
    expected = wire_codes()
    client = {code: cls.default_status for code, cls in SERVICE_ERRORS_BY_CODE.items()}
    missing = sorted(set(expected) - set(client))
    assert not missing, f"codes the service emits that the client does not know: {missing}"
    assert client == expected


def test_the_client_classes_nest_as_the_services_do() -> None:
    # A caller catching Conflict or InvalidRequest must catch the same refusals on both sides.
    root = service_errors.ServiceError
    for cls in service_tree():
        parent = cls.__mro__[1]
        if cls is root or parent is root or cls.code in NEVER_ON_THE_WIRE:
            continue
        assert issubclass(SERVICE_ERRORS_BY_CODE[cls.code], SERVICE_ERRORS_BY_CODE[parent.code])


def test_every_code_is_in_the_clients_drawn_tree() -> None:
    tree = client_errors.__doc__ or ""
    absent = sorted(code for code in wire_codes() if code not in tree)
    assert not absent, f"add these to the tree in agent_client/errors.py's docstring: {absent}"


@pytest.mark.redis
async def test_codes_written_outside_the_tree_are_known_to_the_client(
    api: httpx.AsyncClient, contract_settings: Settings, tenants: Tenants
) -> None:
    # Refusals the app writes outside the tree (no route, wrong method, a body over the bound,
    # a schema error), asked of the real app: the table above could miss a code written inline.
    # Their status is Starlette's, so only the code is checked here.
    over = b"x" * (contract_settings.max_request_bytes + 1)
    answers = [
        await api.get("/v1/nothing-here"),
        await api.put("/v1/executions", headers=tenants.acme),
        await api.post("/v1/executions", content=over),
        await api.post("/v1/executions", json={"language": 3}, headers=tenants.acme),
    ]
    codes = {response.status_code: response.json()["error"]["code"] for response in answers}
    assert set(codes) == {404, 405, 413, 422}
    unknown = {status: code for status, code in codes.items() if code not in SERVICE_ERRORS_BY_CODE}
    assert not unknown, f"codes the client does not know: {unknown}"
