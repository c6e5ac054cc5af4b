"""Judge0's verdict on a stored execution: its status (1-14), exit code, signal and message.

Judging follows Judge0 CE 1.13.1's isolate_job.rb: a run that ended normally is Accepted when no
expected output was given or when both outputs match after stripping trailing whitespace from
every line and from the end; otherwise Wrong Answer.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

from executor_service.errors import NotFound
from executor_service.jobs.execution import Execution, ExecutionState
from executor_service.sandbox.spec import RunResult, RunStatus

# Ruby's String#rstrip: NUL and ASCII whitespace, nothing else.
RUBY_WHITESPACE = "\0\t\n\v\f\r "
SIGKILL, SIGXFSZ = 9, 25


class Judge0Status(enum.IntEnum):
    IN_QUEUE = 1
    PROCESSING = 2
    ACCEPTED = 3
    WRONG_ANSWER = 4
    TIME_LIMIT_EXCEEDED = 5
    COMPILATION_ERROR = 6
    RUNTIME_ERROR_SIGSEGV = 7
    RUNTIME_ERROR_SIGXFSZ = 8
    RUNTIME_ERROR_SIGFPE = 9
    RUNTIME_ERROR_SIGABRT = 10
    RUNTIME_ERROR_NZEC = 11
    RUNTIME_ERROR_OTHER = 12
    INTERNAL_ERROR = 13
    EXEC_FORMAT_ERROR = 14

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


DESCRIPTIONS = {
    Judge0Status.IN_QUEUE: "In Queue",
    Judge0Status.PROCESSING: "Processing",
    Judge0Status.ACCEPTED: "Accepted",
    Judge0Status.WRONG_ANSWER: "Wrong Answer",
    Judge0Status.TIME_LIMIT_EXCEEDED: "Time Limit Exceeded",
    Judge0Status.COMPILATION_ERROR: "Compilation Error",
    Judge0Status.RUNTIME_ERROR_SIGSEGV: "Runtime Error (SIGSEGV)",
    Judge0Status.RUNTIME_ERROR_SIGXFSZ: "Runtime Error (SIGXFSZ)",
    Judge0Status.RUNTIME_ERROR_SIGFPE: "Runtime Error (SIGFPE)",
    Judge0Status.RUNTIME_ERROR_SIGABRT: "Runtime Error (SIGABRT)",
    Judge0Status.RUNTIME_ERROR_NZEC: "Runtime Error (NZEC)",
    Judge0Status.RUNTIME_ERROR_OTHER: "Runtime Error (Other)",
    Judge0Status.INTERNAL_ERROR: "Internal Error",
    Judge0Status.EXEC_FORMAT_ERROR: "Exec Format Error",
}

# Judge0's Status.find_runtime_error_by_status_code; any other signal is "Other".
RUNTIME_ERROR_BY_SIGNAL = {
    11: Judge0Status.RUNTIME_ERROR_SIGSEGV,
    25: Judge0Status.RUNTIME_ERROR_SIGXFSZ,
    8: Judge0Status.RUNTIME_ERROR_SIGFPE,
    6: Judge0Status.RUNTIME_ERROR_SIGABRT,
}


@dataclass(frozen=True)
class Verdict:
    status: Judge0Status
    exit_code: int | None = None
    exit_signal: int | None = None
    message: str | None = None


def strip_output(text: str | None) -> str | None:
    """Judge0's `strip`: trailing whitespace off every line, then off the whole text."""
    if text is None:
        return None
    lines = [line.rstrip(RUBY_WHITESPACE) for line in text.split("\n")]
    return "\n".join(lines).rstrip(RUBY_WHITESPACE)


def output_digest(expected_output: str) -> str:
    """What a token keeps of an expected output: enough to judge, never the text itself."""
    stripped = strip_output(expected_output) or ""
    return hashlib.sha256(stripped.encode()).hexdigest()[:32]


def judge(execution: Execution, expected_digest: str | None) -> Verdict:
    """The Judge0 status of a record; `expected_digest` is output_digest of expected_output."""
    if execution.state is ExecutionState.QUEUED:
        return Verdict(Judge0Status.IN_QUEUE)
    if execution.state is ExecutionState.RUNNING:
        return Verdict(Judge0Status.PROCESSING)
    if execution.state is ExecutionState.FINISHED and execution.result is not None:
        return _judge_result(execution.result, expected_digest)
    why = execution.error.message if execution.error else f"the execution was {execution.state}"
    return Verdict(Judge0Status.INTERNAL_ERROR, message=why)


def _judge_result(result: RunResult, expected_digest: str | None) -> Verdict:
    message = result.message or None
    status = result.status
    if status is RunStatus.TIMEOUT:
        return Verdict(Judge0Status.TIME_LIMIT_EXCEEDED, 0, SIGKILL, message)
    if status is RunStatus.MEMORY_LIMIT:
        # Judge0's cgroup kills on memory too; a SIGKILL is "Runtime Error (Other)" there.
        return Verdict(Judge0Status.RUNTIME_ERROR_OTHER, 0, SIGKILL, message)
    if status is RunStatus.OUTPUT_LIMIT:
        # Judge0 bounds output with a file-size rlimit, which ends the program with SIGXFSZ.
        return Verdict(Judge0Status.RUNTIME_ERROR_SIGXFSZ, 0, SIGXFSZ, message)
    if status is RunStatus.CANCELLED:
        return Verdict(Judge0Status.INTERNAL_ERROR, message=message or "cancelled")
    code = result.exit_code
    if status is RunStatus.ERROR and code is not None and code > 128:
        # Killed by signal N: the sandbox's init reports 128 + N; Judge0 says exit code 0.
        signal = code - 128
        found = RUNTIME_ERROR_BY_SIGNAL.get(signal, Judge0Status.RUNTIME_ERROR_OTHER)
        return Verdict(found, 0, signal, message)
    if status is RunStatus.ERROR:
        return Verdict(Judge0Status.RUNTIME_ERROR_NZEC, code, None, message)
    if expected_digest is None:
        return Verdict(Judge0Status.ACCEPTED, code)
    # Judge0 keeps an empty stdout as nil, and nil never equals a stripped expected output.
    stdout = result.stdout or None
    if stdout is not None and output_digest(stdout) == expected_digest:
        return Verdict(Judge0Status.ACCEPTED, code)
    return Verdict(Judge0Status.WRONG_ANSWER, code)


# A token is the execution's id in UUID form, plus the expected output's digest when one was
# given: the record keeps no expected output, so the token carries what judging needs.
TOKEN = re.compile(
    r"(?P<a>[0-9a-f]{8})-(?P<b>[0-9a-f]{4})-(?P<c>[0-9a-f]{4})-(?P<d>[0-9a-f]{4})-"
    r"(?P<e>[0-9a-f]{12})(?:-(?P<digest>[0-9a-f]{32}))?"
)
EXECUTION_ID = re.compile(r"ex_(?P<hex>[0-9a-f]{32})")


def token_for(execution_id: str, expected_output: str | None) -> str:
    matched = EXECUTION_ID.fullmatch(execution_id)
    if matched is None:
        raise ValueError(f"not an execution id: {execution_id!r}")
    hex_id = matched["hex"]
    token = f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"
    if expected_output is not None:
        token += "-" + output_digest(expected_output)
    return token


def parse_token(token: str) -> tuple[str, str | None]:
    """(execution id, expected-output digest or None); NotFound for anything not a token."""
    matched = TOKEN.fullmatch(token.strip().lower())
    if matched is None:
        raise NotFound(f"no submission with token {token!r}")
    hex_id = "".join(matched[part] for part in "abcde")
    return f"ex_{hex_id}", matched["digest"]
