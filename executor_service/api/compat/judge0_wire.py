"""Judge0 CE 1.13.1's wire forms: languages, the submission request, and a record as a submission.

Only this module knows how a submission looks to Judge0's clients; the judge0 routes map
requests onto /v1's admission path and answer with what this builds.
"""

from __future__ import annotations

import base64
import shlex
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from executor_service.api.compat.judge0_verdict import Verdict, token_for
from executor_service.jobs.execution import Execution
from executor_service.policy.model import Policy
from executor_service.sandbox.catalogue import LanguageRuntime
from executor_service.sandbox.spec import Limits
from executor_service.settings import Settings

JUDGE0_VERSION = "1.13.1"
MAX_BATCH = 20
# Judge0 CE's ids for the languages we run; a language Judge0 CE has no id for (sh) is not shown.
LANGUAGE_IDS = {"bash": 46, "python": 71}
LANGUAGE_LABELS = {"bash": "Bash", "python": "Python"}

# Judge0 1.13.1's SubmissionSerializer attributes (its columns, status and language; the judge0
# SDK sets each on its Submission, so a later version's extra columns would break it), and the
# ones a GET answers with by default.
FIELDS = (
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
)
DEFAULT_FIELDS = (
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
)
# Text fields that base64_encoded=true sends encoded (Judge0 encodes `message` too).
ENCODED_FIELDS = frozenset(
    {"source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output", "message"}
)


class LanguageView(BaseModel):
    id: Annotated[int, Field(examples=[71])]
    name: Annotated[str, Field(examples=["Python (3.11)"])]
    is_archived: bool = False
    source_file: str | None = None
    compile_cmd: str | None = None
    run_cmd: str | None = None


class StatusView(BaseModel):
    id: int
    description: str


class SubmissionCreate(BaseModel):
    """Judge0's submission request; fields Judge0 does not know are ignored, as Judge0 does."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "language_id": 71,
                    "source_code": "print(input())",
                    "stdin": "hello",
                    "expected_output": "hello",
                }
            ]
        },
    )

    source_code: str | None = None
    language_id: int | None = None
    compiler_options: str | None = None
    command_line_arguments: str | None = None
    number_of_runs: int | None = None
    stdin: str | None = None
    expected_output: str | None = None
    cpu_time_limit: float | None = None  # s
    cpu_extra_time: float | None = None  # s
    wall_time_limit: float | None = None  # s
    memory_limit: float | None = None  # KB
    stack_limit: int | None = None  # KB
    max_processes_and_or_threads: int | None = None
    enable_per_process_and_thread_time_limit: bool | None = None
    enable_per_process_and_thread_memory_limit: bool | None = None
    max_file_size: int | None = None  # KB
    redirect_stderr_to_stdout: bool | None = None
    callback_url: str | None = None
    additional_files: str | None = None
    enable_network: bool | None = None


class SubmissionBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    submissions: list[dict[str, Any]] = []


def languages_of(policy: Policy) -> dict[int, str]:
    """Judge0 id -> our language, for the policy's languages that Judge0 CE has an id for."""
    return {LANGUAGE_IDS[name]: name for name in policy.languages if name in LANGUAGE_IDS}


def language_view(language: str, runtime: LanguageRuntime) -> LanguageView:
    return LanguageView(
        id=LANGUAGE_IDS[language],
        name=f"{LANGUAGE_LABELS[language]} ({runtime.version})",
        source_file=runtime.file,
        run_cmd=" ".join(runtime.command),
    )


def config_info(policy: Policy, settings: Settings) -> dict[str, Any]:
    """Judge0's /config_info for a policy: its limits are both the default and the maximum."""
    limits = policy.limits
    memory_kb = limits.memory_mb * 1024
    output_kb = limits.output_bytes // 1024
    return {
        "maintenance_mode": False,
        "enable_wait_result": True,
        "enable_compiler_options": False,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": True,
        "enable_submission_delete": False,
        "enable_callbacks": False,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": False,
        "max_queue_size": settings.max_queue_length,
        "cpu_time_limit": float(limits.cpu_time_s),
        "max_cpu_time_limit": float(limits.cpu_time_s),
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": 0.0,
        "wall_time_limit": limits.wall_time_s,
        "max_wall_time_limit": limits.wall_time_s,
        "memory_limit": memory_kb,
        "max_memory_limit": memory_kb,
        "stack_limit": memory_kb,
        "max_stack_limit": memory_kb,
        "max_processes_and_or_threads": limits.pids,
        "max_max_processes_and_or_threads": limits.pids,
        "enable_per_process_and_thread_time_limit": False,
        "allow_enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "allow_enable_per_process_and_thread_memory_limit": False,
        "max_file_size": output_kb,
        "max_max_file_size": output_kb,
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": False,
        "max_extract_size": 0,
        "enable_batched_submissions": True,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": False,
        "allow_enable_network": False,
        "enable_network": policy.network.mode != "none",
    }


def _time(value: datetime | None) -> str | None:
    # Rails' form, which the judge0 SDK parses with "%Y-%m-%dT%H:%M:%S.%fZ".
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _decimal(value: float | None) -> str | None:
    # Judge0's decimal columns reach JSON as strings ("0.001").
    return None if value is None else f"{value:.15g}"


def submission_view(
    execution: Execution,
    verdict: Verdict,
    limits: Limits,
    *,
    language: LanguageView | None,
    network: bool,
    expected_digest: str | None,
    fields: tuple[str, ...],
    base64_encoded: bool,
) -> dict[str, Any]:
    """A record as Judge0 shows a submission, restricted to `fields`; `language` is None for
    one Judge0 has no id for (an sh execution read through its token)."""
    request = execution.request
    result = execution.result
    language_id = LANGUAGE_IDS.get(request.language)
    finished = execution.finished_at
    values: dict[str, Any] = {
        "source_code": request.code,
        "language_id": language_id,
        "stdin": request.stdin or None,
        "expected_output": None,  # not kept: the token holds only its digest
        "stdout": (result.stdout or None) if result else None,
        "stderr": (result.stderr or None) if result else None,
        "status_id": int(verdict.status),
        "created_at": _time(execution.created_at),
        "finished_at": _time(finished),
        "time": _decimal(result.cpu_time_s) if result else None,
        "wall_time": _decimal(result.wall_time_s) if result else None,
        "memory": (
            result.memory_peak_bytes // 1024
            if result and result.memory_peak_bytes is not None
            else None
        ),
        "token": _token(execution, expected_digest),
        "number_of_runs": 1,
        "cpu_time_limit": _decimal(limits.cpu_time_s),
        "cpu_extra_time": _decimal(0),
        "wall_time_limit": _decimal(limits.wall_time_s),
        "memory_limit": limits.memory_mb * 1024,
        "stack_limit": limits.memory_mb * 1024,
        "max_processes_and_or_threads": limits.pids,
        "enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "max_file_size": limits.output_bytes // 1024,
        "compile_output": None,
        "exit_code": verdict.exit_code,
        "exit_signal": verdict.exit_signal,
        "message": verdict.message,
        "compiler_options": None,
        "command_line_arguments": shlex.join(request.args) or None,
        "redirect_stderr_to_stdout": False,
        "callback_url": None,
        "additional_files": None,
        "enable_network": network,
        "status": {"id": int(verdict.status), "description": verdict.status.description},
        "language": None if language is None else {"id": language.id, "name": language.name},
    }
    shown = {name: values[name] for name in fields}
    if base64_encoded:
        for name in ENCODED_FIELDS & shown.keys():
            if shown[name] is not None:
                shown[name] = base64.b64encode(shown[name].encode()).decode()
    return shown


def _token(execution: Execution, expected_digest: str | None) -> str:
    token = token_for(execution.id, None)
    return token if expected_digest is None else f"{token}-{expected_digest}"
