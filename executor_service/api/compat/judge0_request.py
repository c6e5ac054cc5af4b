"""A Judge0 submission as our ExecutionCreate: Judge0's checks in its own words, limits in ours.

Every limit may only tighten the policy; options the sandbox cannot honour are refused field by
field, as Judge0 refuses what its configuration disables, never silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import math
import shlex
from collections import defaultdict
from dataclasses import dataclass

from pydantic import ValidationError

from executor_service.api.compat.judge0_wire import SubmissionCreate, languages_of
from executor_service.api.schemas import ExecutionCreate
from executor_service.policy.model import Policy
from executor_service.sandbox.spec import Limits

MEMORY_FLOOR_KB = 16 * 1024  # our least memory limit, 16 MB
PIDS_FLOOR = 8


@dataclass(frozen=True)
class JudgedRequest:
    """An accepted submission as our request, and the expected output it is judged against."""

    create: ExecutionCreate
    expected_output: str | None


def to_execution(
    body: SubmissionCreate, base64_encoded: bool, policy: Policy
) -> tuple[dict[str, list[str]], JudgedRequest | None]:
    """Judge0's checks, in its words, then our request; ({field: [messages]}, None) if refused.

    Every limit may only tighten the key's default policy; options we cannot honour (compile
    step, callbacks, extra files, network, merged output) are refused, never silently dropped.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    texts: dict[str, str | None] = {}
    for name in ("source_code", "stdin", "expected_output"):
        value = getattr(body, name)
        texts[name] = _decoded(value, name, errors) if base64_encoded else value
    if not texts["source_code"]:
        errors["source_code"].append("can't be blank")
    language = None
    if body.language_id is None:
        errors["language_id"].append("can't be blank")
    else:
        language = languages_of(policy).get(body.language_id)
        if language is None:
            errors["language_id"].append(f"language with id {body.language_id} doesn't exist")
    _refuse_options(body, errors)
    limits = _limits(body, policy.limits, errors)
    args: list[str] = []
    if body.command_line_arguments:
        if len(body.command_line_arguments) > 512:
            errors["command_line_arguments"].append("is too long (maximum is 512 characters)")
        try:
            args = shlex.split(body.command_line_arguments)
        except ValueError as exc:
            errors["command_line_arguments"].append(f"cannot be split into words: {exc}")
    if errors or language is None:
        return dict(errors), None
    # Built from plain values, as a client's body is: the wire model owns its own field types,
    # and what it refuses (an argument holding a NUL, say) is the submission's error.
    try:
        create = ExecutionCreate.model_validate(
            {
                "language": language,
                "code": texts["source_code"],
                "stdin": texts["stdin"] or "",
                "args": args,
                "limits": limits,
            }
        )
    except ValidationError as exc:
        refused: dict[str, list[str]] = defaultdict(list)
        for error in exc.errors():
            ours = str(error["loc"][0]) if error["loc"] else "source_code"
            refused[JUDGE0_FIELDS.get(ours, ours)].append(error["msg"])
        return dict(refused), None
    return {}, JudgedRequest(create, texts["expected_output"])


# Our ExecutionCreate's fields by the names a Judge0 client sent them under.
JUDGE0_FIELDS = {"code": "source_code", "args": "command_line_arguments"}


def _decoded(value: str | None, name: str, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError):
        errors[name].append("is not Base64 of UTF-8 text")
        return None


def _refuse_options(body: SubmissionCreate, errors: dict[str, list[str]]) -> None:
    if body.compiler_options:
        errors["compiler_options"].append(
            "setting compiler options is only allowed for compiled languages"
        )
    if body.callback_url:
        errors["callback_url"].append("setting callback is not allowed")
    if body.additional_files:
        errors["additional_files"].append("setting additional files is not allowed")
    if body.enable_network:
        errors["enable_network"].append("enabling network is not allowed")
    for name in (
        "enable_per_process_and_thread_time_limit",
        "enable_per_process_and_thread_memory_limit",
    ):
        if getattr(body, name):
            errors[name].append("this option cannot be enabled")
    if body.redirect_stderr_to_stdout:
        errors["redirect_stderr_to_stdout"].append(
            "this option cannot be enabled: stdout and stderr are kept apart"
        )
    if body.number_of_runs is not None and body.number_of_runs != 1:
        errors["number_of_runs"].append("must be equal to 1: each submission runs once")
    for name in ("cpu_extra_time", "stack_limit"):  # accepted; the sandbox has no such knob
        value = getattr(body, name)
        if value is not None and value < 0:
            errors[name].append("must be greater than or equal to 0")


def _limits(
    body: SubmissionCreate, ceiling: Limits, errors: dict[str, list[str]]
) -> dict[str, float | int] | None:
    """Judge0's limits in our units, each checked against the policy in Judge0's units."""
    wanted: dict[str, float | int] = {}
    checks: list[tuple[str, float | None, float, float, bool]] = [
        # name, value, floor, ceiling, floor is exclusive
        ("cpu_time_limit", body.cpu_time_limit, 0, ceiling.cpu_time_s, True),
        ("wall_time_limit", body.wall_time_limit, 0, ceiling.wall_time_s, True),
        ("memory_limit", body.memory_limit, MEMORY_FLOOR_KB, ceiling.memory_mb * 1024, False),
        (
            "max_processes_and_or_threads",
            body.max_processes_and_or_threads,
            PIDS_FLOOR,
            ceiling.pids,
            False,
        ),
        ("max_file_size", body.max_file_size, 1, ceiling.output_bytes // 1024, False),
    ]
    for name, value, floor, top, exclusive in checks:
        if value is None:
            continue
        if exclusive and value <= floor:
            errors[name].append(f"must be greater than {floor:.15g}")
        elif not exclusive and value < floor:
            errors[name].append(f"must be greater than or equal to {floor:.15g}")
        elif value > top:
            errors[name].append(f"must be less than or equal to {top:.15g}")
    if body.cpu_time_limit is not None:
        # The CPU-time rlimit counts whole seconds; a fraction rounds up to the next one.
        wanted["cpu_time_s"] = math.ceil(body.cpu_time_limit)
    if body.wall_time_limit is not None:
        wanted["wall_time_s"] = body.wall_time_limit
    if body.memory_limit is not None:
        wanted["memory_mb"] = int(body.memory_limit // 1024)
    if body.max_processes_and_or_threads is not None:
        wanted["pids"] = body.max_processes_and_or_threads
    if body.max_file_size is not None:
        wanted["output_bytes"] = body.max_file_size * 1024
    return wanted or None
