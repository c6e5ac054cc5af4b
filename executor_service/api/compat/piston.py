"""Piston v2 (engineer-man/piston): GET /api/v2/runtimes and POST /api/v2/execute.

A thin mapping: a Piston request becomes an ExecutionCreate under the key's default policy, goes
through the same admission as /v1, and the stored record becomes Piston's answer. Piston runs
synchronously, so execute waits for the end (bounded by EXECUTOR_MAX_WAIT_S).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import signal
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from executor_service.api.admission import admit, build_request, wait_until_final
from executor_service.api.compat import PISTON_PREFIX
from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ErrorShape
from executor_service.api.schemas import ExecutionCreate
from executor_service.errors import InvalidRequest, Overloaded
from executor_service.jobs.execution import Execution, ExecutionState
from executor_service.jobs.plan import Planner
from executor_service.jobs.store_rules import RETRY_AFTER_S
from executor_service.policy.model import Policy
from executor_service.sandbox.spec import RunStatus

# Piston's own names for our languages, beside the language itself.
ALIASES: dict[str, tuple[str, ...]] = {
    "python": ("py", "py3", "python3"),
    "bash": (),
    "sh": (),
}
MIB = 1024 * 1024
SIGKILL = "SIGKILL"


class PistonMessage(BaseModel):
    """Piston's one error shape; its clients raise when a body is exactly {"message": ...}."""

    message: str


def _render_error(status: int, _code: str, message: str, _field: str | None) -> tuple[int, Any]:
    # Piston answers every refusal of a request with 400; auth, sizes and load keep their status.
    return (400 if status == 422 else status), PistonMessage(message=message).model_dump()


ERROR_SHAPE = ErrorShape(prefix=PISTON_PREFIX, render=_render_error)

router = APIRouter(
    prefix=PISTON_PREFIX,
    tags=["piston"],
    responses={
        400: {"model": PistonMessage, "description": "A field is malformed or not acceptable"},
        401: {"model": PistonMessage, "description": "No key, or an unknown one"},
    },
)


class PistonRuntime(BaseModel):
    language: Annotated[str, Field(examples=["python"])]
    version: Annotated[str, Field(examples=["3.11"])]
    aliases: Annotated[list[str], Field(examples=[["py", "py3", "python3"]])]


class PistonFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str | None, Field(max_length=1024)] = None
    content: str
    encoding: Literal["utf8", "base64", "hex"] = "utf8"


class PistonExecute(BaseModel):
    """Piston's request; unknown fields are ignored, as Piston does."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "language": "python",
                    "version": "*",
                    "files": [{"name": "main.py", "content": "print(input())"}],
                    "stdin": "hello",
                    "run_timeout": 3000,
                }
            ]
        },
    )

    language: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(min_length=1, max_length=64)]
    files: Annotated[list[PistonFile], Field(min_length=1, max_length=1000)]
    stdin: str = ""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=256)] = []
    run_timeout: float | None = None  # ms
    run_cpu_time: float | None = None  # ms
    run_memory_limit: int | None = None  # bytes; -1 is Piston's "no limit of mine"
    # There is no compile stage here: these are accepted and have nothing to bound.
    compile_timeout: float | None = None
    compile_cpu_time: float | None = None
    compile_memory_limit: int | None = None


class PistonStage(BaseModel):
    stdout: str
    stderr: str
    output: str  # stdout, then stderr (Piston interleaves them; the runner keeps them apart)
    code: int | None
    signal: str | None
    message: str | None
    status: str | None  # isolate's: RE, SG, TO, OL, XX; null when the program exited 0
    cpu_time: float | None  # ms
    wall_time: float | None  # ms
    memory: int | None  # bytes


class PistonResult(BaseModel):
    language: str
    version: str
    run: PistonStage


@router.get("/runtimes")
def list_runtimes(key: CurrentKey, services: ServicesDep) -> list[PistonRuntime]:
    """The languages of the key's default policy, with their versions and Piston's aliases."""
    policy = services.planner.policy_for(key, None)
    return [
        PistonRuntime(
            language=language,
            version=services.planner.runtime(policy, language)[1].version,
            aliases=list(ALIASES.get(language, ())),
        )
        for language in sorted(policy.languages)
    ]


async def _piston_body(request: Request) -> PistonExecute:
    """JSON as Piston takes it, or the form the pistonapi client sends (Piston answers that 415).

    The form carries each file's content as a `files` value, the first the main program.
    """
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            data = _form_fields(raw)
        else:
            data = json.loads(raw or b"null")
        return PistonExecute.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}", field=where) from exc


def _form_fields(raw: bytes) -> dict[str, Any]:
    fields = parse_qs(raw.decode(), keep_blank_values=True)
    data: dict[str, Any] = {
        name: values[0] for name, values in fields.items() if name not in {"files", "args"}
    }
    data["files"] = [{"content": content} for content in fields.get("files", [])]
    data["args"] = fields.get("args", [])
    return data


PistonBody = Annotated[PistonExecute, Depends(_piston_body)]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its $defs put in place, to stand alone in the OpenAPI page."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {name: inline(value) for name, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return dict(inline(schema))


EXECUTE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(PistonExecute.model_json_schema())},
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "description": "the pistonapi client's form"}
            },
        },
    }
}


@router.post("/execute", openapi_extra=EXECUTE_BODY)
def execute(body: PistonBody, key: CurrentKey, services: ServicesDep) -> PistonResult:
    """Run the files (the first is the main program) and answer when the run has ended."""
    policy = services.planner.policy_for(key, None)
    language = resolve_language(policy, body.language, body.version, services.planner)
    version = services.planner.runtime(policy, language)[1].version
    checked = build_request(services, key, to_execution(body, language, policy))
    execution = admit(services, key, checked)
    execution = wait_until_final(services, execution.id, services.settings.max_wait_s)
    if not execution.state.final:
        services.stores.executions.cancel(execution.id, key.tenant)
        raise Overloaded(
            f"the run did not end within {services.settings.max_wait_s:.15g} s of waiting and "
            "was cancelled; retry, or ask for a shorter run_timeout",
            retry_after_s=RETRY_AFTER_S,
        )
    return PistonResult(language=language, version=version, run=to_stage(execution))


def resolve_language(policy: Policy, wanted: str, version: str, planner: Planner) -> str:
    """Our language for a Piston name or alias whose version matches; Piston's error if none."""
    for language in sorted(policy.languages):
        if wanted != language and wanted not in ALIASES.get(language, ()):
            continue
        ours = planner.runtime(policy, language)[1].version
        if version_matches(version, ours):
            return language
    raise InvalidRequest(f"{wanted}-{version} runtime is unknown", field="language")


def version_matches(wanted: str, ours: str) -> bool:
    """`*`, our version, or a prefix of it by parts where `x` or `*` is any part (3, 3.x, 3.11)."""
    if wanted in {"*", "x", "latest"}:
        return True
    mine = re.split(r"[.\s]", ours)
    given = wanted.split(".")
    if len(given) > len(mine):
        return False
    return all(part in {"x", "*"} or part == have for part, have in zip(given, mine, strict=False))


def to_execution(body: PistonExecute, language: str, policy: Policy) -> ExecutionCreate:
    """Piston's request as ours: the first file is the code, the others go beside it."""
    main, *others = body.files
    try:
        code = _file_bytes(main, 0).decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            "files[0] is the program and must be UTF-8 text", field="files.0.content"
        ) from exc
    files = [
        {
            "path": item.name or f"file{index}.code",
            "content": base64.b64encode(_file_bytes(item, index)).decode(),
        }
        for index, item in enumerate(others, start=1)
    ]
    # Built from plain values, as a client's body is: the wire model owns its own field types,
    # and what it refuses (an argument holding a NUL, say) is the client's error.
    try:
        return ExecutionCreate.model_validate(
            {
                "language": language,
                "code": code,
                "files": files,
                "stdin": body.stdin,
                "args": body.args,
                "limits": _limits(body, policy),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}", field=where) from exc


def _file_bytes(item: PistonFile, index: int) -> bytes:
    try:
        if item.encoding == "base64":
            return base64.b64decode(item.content, validate=True)
        if item.encoding == "hex":
            return bytes.fromhex(item.content)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(
            f"files[{index}].content is not valid {item.encoding}", field=f"files.{index}.content"
        ) from exc
    return item.content.encode()


def _limits(body: PistonExecute, policy: Policy) -> dict[str, float | int] | None:
    """Piston's run limits as ours; each may only tighten the policy's (over it: Piston's error)."""
    ceiling = policy.limits
    wanted: dict[str, float | int] = {}
    if body.run_timeout is not None and body.run_timeout > 0:
        _at_most("run_timeout", body.run_timeout, ceiling.wall_time_s * 1000)
        wanted["wall_time_s"] = body.run_timeout / 1000
    if body.run_cpu_time is not None and body.run_cpu_time > 0:
        _at_most("run_cpu_time", body.run_cpu_time, ceiling.cpu_time_s * 1000)
        # The CPU-time rlimit counts whole seconds; a fraction rounds up to the next one.
        wanted["cpu_time_s"] = math.ceil(body.run_cpu_time / 1000)
    if body.run_memory_limit is not None and body.run_memory_limit > 0:
        _at_most("run_memory_limit", body.run_memory_limit, ceiling.memory_mb * MIB)
        wanted["memory_mb"] = body.run_memory_limit // MIB
    return wanted or None


def _at_most(name: str, value: float, limit: float) -> None:
    if value > limit:
        raise InvalidRequest(
            f"{name} cannot exceed the configured limit of {limit:.15g}", field=name
        )


def to_stage(execution: Execution) -> PistonStage:
    """The run stage of Piston's answer, from the stored record."""
    result = execution.result
    if execution.state is not ExecutionState.FINISHED or result is None:
        why = execution.error.message if execution.error else f"the run was {execution.state}"
        return PistonStage(
            stdout="",
            stderr="",
            output="",
            code=None,
            signal=None,
            message=why,
            status="XX",
            cpu_time=None,
            wall_time=None,
            memory=None,
        )
    code, sig, status = _outcome(result.status, result.exit_code)
    return PistonStage(
        stdout=result.stdout,
        stderr=result.stderr,
        output=result.stdout + result.stderr,
        code=code,
        signal=sig,
        message=result.message or None,
        status=status,
        cpu_time=None if result.cpu_time_s is None else round(result.cpu_time_s * 1000, 3),
        wall_time=round(result.wall_time_s * 1000, 3),
        memory=result.memory_peak_bytes,
    )


def _outcome(status: RunStatus, exit_code: int | None) -> tuple[int | None, str | None, str | None]:
    """(code, signal, isolate status) as Piston reports them."""
    if status is RunStatus.OK:
        return exit_code, None, None
    if status is RunStatus.TIMEOUT:
        return None, SIGKILL, "TO"
    if status is RunStatus.OUTPUT_LIMIT:
        return None, SIGKILL, "OL"
    if status is RunStatus.MEMORY_LIMIT:
        return None, SIGKILL, "SG"
    if status is RunStatus.CANCELLED:
        return None, SIGKILL, "XX"
    if exit_code is not None and exit_code > 128:
        # A process killed by signal N exits 128 + N through the sandbox's init.
        return None, _signal_name(exit_code - 128), "SG"
    return exit_code, None, "RE"


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None
