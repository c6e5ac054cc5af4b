"""Judge0 CE 1.13.1 under /judge0: languages, statuses, and submissions (one or a batch).

A thin mapping: a submission becomes an ExecutionCreate under the key's default policy and goes
through /v1's admission path; its token is the execution's id in UUID form (plus the expected
output's digest, see judge0_verdict), and a GET judges the stored record the way Judge0 does.
Errors take Judge0's shapes: a refused submission is 422 {field: [messages]}; a bad query or
batch is 400 {"error": ...}; 401 and 404 are {"error": ...}.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError

from executor_service.api.admission import admit, build_request, wait_until_final
from executor_service.api.compat import JUDGE0_PREFIX
from executor_service.api.compat.judge0_request import to_execution
from executor_service.api.compat.judge0_verdict import (
    DESCRIPTIONS,
    judge,
    output_digest,
    parse_token,
    token_for,
)
from executor_service.api.compat.judge0_wire import (
    DEFAULT_FIELDS,
    FIELDS,
    JUDGE0_VERSION,
    LANGUAGE_IDS,
    MAX_BATCH,
    LanguageView,
    StatusView,
    SubmissionBatch,
    SubmissionCreate,
    config_info,
    language_view,
    languages_of,
    submission_view,
)
from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ErrorShape
from executor_service.api.services import Services
from executor_service.errors import InvalidRequest, NotFound, ServiceError
from executor_service.jobs.execution import Execution
from executor_service.jobs.tenant import ApiKey
from executor_service.policy.model import Policy
from executor_service.sandbox.spec import Limits

# Our request's fields by Judge0's names, for errors the shared admission path raises.
JUDGE0_FIELDS = {
    "code": "source_code",
    "language": "language_id",
    "args": "command_line_arguments",
    "limits.wall_time_s": "wall_time_limit",
    "limits.cpu_time_s": "cpu_time_limit",
    "limits.memory_mb": "memory_limit",
    "limits.pids": "max_processes_and_or_threads",
    "limits.output_bytes": "max_file_size",
}
SUBMISSION_FIELDS = frozenset(SubmissionCreate.model_fields)


def _render_error(status: int, _code: str, message: str, field: str | None) -> tuple[int, Any]:
    """A submission's field Judge0's way, {field: [messages]} (422); anything else about the
    request (query, batch, a body that is not JSON) {"error": ...} with 400."""
    name = JUDGE0_FIELDS.get(field, field) if field else None
    if status == 422 and name in SUBMISSION_FIELDS:
        return 422, {name: [message]}
    return (400 if status == 422 else status), {"error": message}


ERROR_SHAPE = ErrorShape(prefix=JUDGE0_PREFIX, render=_render_error)

_auth_token = APIKeyHeader(
    name="X-Auth-Token", auto_error=False, description="An API key, as Judge0 clients send it"
)
router = APIRouter(
    prefix=JUDGE0_PREFIX,
    tags=["judge0"],
    dependencies=[Security(_auth_token)],  # shown on the OpenAPI page; deps reads the header
    responses={
        401: {"description": '{"error": "..."}: no key, or an unknown one'},
        404: {"description": '{"error": "..."}: unknown token or language, or another tenant\'s'},
        422: {"description": "{field: [messages]}: a submission that cannot run as asked"},
    },
)

Base64Param = Annotated[bool, Query(description="text fields in and out are Base64")]
FieldsParam = Annotated[str | None, Query(description="comma-separated fields, or *")]


def _policy(services: Services, key: ApiKey) -> Policy:
    return services.planner.policy_for(key, None)


@router.get("/languages")
def list_languages(key: CurrentKey, services: ServicesDep) -> list[dict[str, Any]]:
    """The key's default policy's languages, by Judge0 CE's ids (Python 3 = 71, Bash = 46)."""
    policy = _policy(services, key)
    views = [
        language_view(name, services.planner.runtime(policy, name)[1])
        for name in languages_of(policy).values()
    ]
    return [{"id": view.id, "name": view.name} for view in sorted(views, key=lambda v: v.name)]


@router.get("/languages/all")
def list_all_languages(key: CurrentKey, services: ServicesDep) -> list[dict[str, Any]]:
    return [{**language, "is_archived": False} for language in list_languages(key, services)]


@router.get("/languages/{language_id}")
def get_language(language_id: int, key: CurrentKey, services: ServicesDep) -> LanguageView:
    policy = _policy(services, key)
    name = languages_of(policy).get(language_id)
    if name is None:
        raise NotFound(f"language with id {language_id} doesn't exist")
    return language_view(name, services.planner.runtime(policy, name)[1])


@router.get("/statuses")
def list_statuses(_key: CurrentKey) -> list[StatusView]:
    return [StatusView(id=int(status), description=text) for status, text in DESCRIPTIONS.items()]


@router.get("/about")
def about(_key: CurrentKey) -> dict[str, str]:
    """The Judge0 version whose API this is (the judge0 SDK picks its language ids by it)."""
    return {
        "version": JUDGE0_VERSION,
        "homepage": "https://judge0.com",
        "source_code": "https://github.com/judge0/judge0",
        "maintainer": "agent-sandbox (a Judge0 CE compatible API)",
    }


@router.get("/config_info")
def get_config_info(key: CurrentKey, services: ServicesDep) -> dict[str, Any]:
    """The key's default policy as Judge0's configuration: its limits are default and maximum."""
    return config_info(_policy(services, key), services.settings)


def requested_fields(fields: str | None) -> tuple[str, ...]:
    names = [name.strip() for name in (fields or "").split(",") if name.strip()]
    invalid = [name for name in names if name != "*" and name not in FIELDS]
    if invalid:
        raise InvalidRequest(f"invalid fields: [{', '.join(invalid)}]", field="fields")
    if "*" in names:
        return FIELDS
    return tuple(dict.fromkeys(names)) or DEFAULT_FIELDS


@router.post("/submissions", status_code=201)
def create_submission(
    body: SubmissionCreate,
    key: CurrentKey,
    services: ServicesDep,
    base64_encoded: Base64Param = False,
    wait: Annotated[bool, Query(description="answer when the run has ended")] = False,
    fields: FieldsParam = None,
) -> JSONResponse:
    """Queue a submission: 201 {token}; with wait=true, 201 with the submission once it ended."""
    shown = requested_fields(fields)
    errors, request = to_execution(body, base64_encoded, _policy(services, key))
    if request is None:
        return JSONResponse(errors, status_code=422)
    execution = admit(services, key, build_request(services, key, request.create))
    if not wait:
        return JSONResponse({"token": token_for(execution.id, request.expected_output)}, 201)
    execution = wait_until_final(services, execution.id, services.settings.max_wait_s)
    digest = None if request.expected_output is None else output_digest(request.expected_output)
    return JSONResponse(_view(services, execution, digest, shown, base64_encoded), 201)


@router.post("/submissions/batch", status_code=201)
def create_batch(
    body: SubmissionBatch,
    key: CurrentKey,
    services: ServicesDep,
    base64_encoded: Base64Param = False,
) -> JSONResponse:
    """Queue each submission on its own: [{token} or {field: [messages]}], in order."""
    _check_batch_size(len(body.submissions), "submissions")
    answers: list[dict[str, Any]] = []
    for item in body.submissions:
        try:
            submission = SubmissionCreate.model_validate(item)
        except ValidationError as exc:
            answers.append(_validation_errors(exc))
            continue
        errors, request = to_execution(submission, base64_encoded, _policy(services, key))
        if request is None:
            answers.append(errors)
            continue
        try:
            execution = admit(services, key, build_request(services, key, request.create))
        except ServiceError as exc:
            if exc.status_code >= 500:
                raise
            answers.append(_render_error(422, exc.code, exc.message, exc.field)[1])
            continue
        answers.append({"token": token_for(execution.id, request.expected_output)})
    accepted = any("token" in answer for answer in answers)
    return JSONResponse(answers, status_code=201 if accepted else 422)


@router.get("/submissions/batch")
def get_batch(
    key: CurrentKey,
    services: ServicesDep,
    tokens: Annotated[str, Query(description="comma-separated tokens")] = "",
    base64_encoded: Base64Param = False,
    fields: FieldsParam = None,
) -> JSONResponse:
    """{"submissions": [...]} in the tokens' order; null for a token not found (or not yours)."""
    shown = requested_fields(fields)
    wanted = [token for token in tokens.strip().split(",") if token]
    _check_batch_size(len(wanted), "tokens")
    found: list[dict[str, Any] | None] = []
    for token in wanted:
        try:
            execution_id, digest = parse_token(token)
            execution = services.stores.executions.get(execution_id, key.tenant)
        except NotFound:
            found.append(None)
            continue
        found.append(_view(services, execution, digest, shown, base64_encoded))
    return JSONResponse({"submissions": found})


@router.get("/submissions/{token}")
def get_submission(
    token: str,
    key: CurrentKey,
    services: ServicesDep,
    base64_encoded: Base64Param = False,
    fields: FieldsParam = None,
) -> JSONResponse:
    """One submission, judged now from the stored record; another tenant's token is 404."""
    shown = requested_fields(fields)
    execution_id, digest = parse_token(token)
    execution = services.stores.executions.get(execution_id, key.tenant)
    return JSONResponse(_view(services, execution, digest, shown, base64_encoded))


def _check_batch_size(count: int, field: str) -> None:
    if count > MAX_BATCH:
        raise InvalidRequest(
            f"number of submissions in a batch should be less than or equal to {MAX_BATCH}",
            field=field,
        )
    if count == 0:
        raise InvalidRequest("there should be at least one submission in a batch", field=field)


def _validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = defaultdict(list)
    for error in exc.errors():
        errors[".".join(str(part) for part in error["loc"]) or "base"].append(error["msg"])
    return dict(errors)


def _view(
    services: Services,
    execution: Execution,
    digest: str | None,
    fields: tuple[str, ...],
    base64_encoded: bool,
) -> dict[str, Any]:
    # The policy as loaded now: one removed since the run shows default limits, one lowered
    # under the run's own limits shows its new ones (a read never fails on an old record).
    request = execution.request
    policy = services.planner.policies.get(request.policy)
    limits = Limits() if policy is None else policy.limits
    if policy is not None:
        with contextlib.suppress(InvalidRequest):
            limits = services.planner.effective_limits(policy, request.limits)
    image = None if policy is None else policy.languages.get(request.language)
    runtime = None if image is None else services.planner.catalogue.runtime(image, request.language)
    language = None
    if runtime is not None and request.language in LANGUAGE_IDS:
        language = language_view(request.language, runtime)
    return submission_view(
        execution,
        judge(execution, digest),
        limits,
        language=language,
        network=policy is not None and policy.network.mode != "none",
        expected_digest=digest,
        fields=fields,
        base64_encoded=base64_encoded,
    )
