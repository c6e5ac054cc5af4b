"""Verification by tests that ran: a tester's asserts, run in the sandbox against the program.

"The run exited 0" proved nothing when the coder wrote no asserts (1 of 12 programs did), and a
reviewer approved output that contradicted the code's own comments. Here a tester writes asserts
from the task alone, before any code exists; ``TestRunnerAgent`` runs each of them, one by one,
against every program the coder sends, and counts the passes. A run is verified only when at
least one test ran and every test passed; the attempt with the most passes is the team's answer.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_client.agents.base import BaseChatAgent, Response
from agent_client.cancellation import CancellationToken
from agent_client.code_blocks import choose_program, extract_code_blocks, has_unclosed_fence
from agent_client.errors import AgentClientError
from agent_client.executors.base import CodeExecutor, CodeResult
from agent_client.messages import (
    CHAT_MESSAGES,
    AnyMessage,
    ChatMessage,
    CodeBlock,
    CodeExecutionEvent,
    CodeGenerationEvent,
    TextMessage,
)

logger = logging.getLogger(__name__)

PYTHON = ("python", "py", "python3")
_SUMMARY = re.compile(r"^TESTS PASSED (\d+)/(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class TestSuite:
    """The tester's asserts, each run on its own, and the setup lines (imports) before them."""

    __test__ = False  # a name pytest would otherwise try to collect

    setup: str
    # (source of the assert, source of its left operand when it compares, to show what came back)
    checks: tuple[tuple[str, str | None], ...]

    @property
    def size(self) -> int:
        return len(self.checks)


def parse_tests(text: str) -> TestSuite | None:
    """The asserts in a tester's reply (its python blocks); None when there is no assert.

    Top-level functions and classes are dropped: a tester that re-defines the function under
    test would otherwise test its own stub instead of the coder's code.
    """
    setup: list[str] = []
    checks: list[tuple[str, str | None]] = []
    for block in extract_code_blocks(text, PYTHON):
        try:
            tree = ast.parse(block.code)
        except SyntaxError:
            # A block cut off mid-line: keep the statements that parse, line by line.
            tree = ast.Module(body=_parse_lines(block.code), type_ignores=[])
        for node in _test_statements(tree.body):
            if isinstance(node, ast.Assert):
                checks.append(_check(node))
            elif isinstance(node, ast.Import | ast.ImportFrom | ast.Assign):
                setup.append(ast.unparse(node))
    if not checks:
        return None
    return TestSuite(setup="\n".join(setup), checks=tuple(checks))


def _check(node: ast.Assert) -> tuple[str, str | None]:
    left = (
        ast.unparse(node.test.left)
        if isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1
        else None
    )
    return ast.unparse(node), left


def _test_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Top-level statements, and those inside ``def test_*`` and ``if __name__ == ...``: small
    models wrap their asserts in a test function more often than not."""
    for node in body:
        tests = isinstance(node, ast.FunctionDef) and node.name.startswith(("test", "check"))
        main = isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)
        if tests or main:
            yield from _test_statements(node.body)  # type: ignore[attr-defined]
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node


# A doctest: ">>> call" and the one line of output after it (multi-line outputs are skipped).
_EXAMPLE = re.compile(r"^\s*>>> (?P<call>.+)\n\s*(?P<expected>(?!>>>)\S.*)$", re.MULTILINE)


# "f(1, 2) == 3", "f(1, 2) ➞ 3", "f(1, 2) => 3" on a line of their own (not a def's "-> int").
_STATED = re.compile(
    r"^\s*(?!def )(?P<call>[A-Za-z_]\w*\(.*\))\s*(?:==|➞|=>|->|should return)\s*"
    r"(?P<expected>.+?)\s*$",
    re.MULTILINE,
)


def example_tests(task: str) -> TestSuite | None:
    """Asserts from the task's own ``>>>`` examples (a docstring's doctests): tests the task
    states, written by no model, so they cost no tokens and cannot be wrong in the model's way.

    An example whose call or expected value is not a Python expression is skipped.
    """
    checks: list[tuple[str, str | None]] = []
    for match in _EXAMPLE.finditer(task):
        call = match.group("call").strip()
        expected = match.group("expected").strip()
        try:
            node = ast.parse(f"assert {call} == {expected}").body[0]
        except SyntaxError:
            continue
        if isinstance(node, ast.Assert):
            checks.append(_check(node))
    for match in _STATED.finditer(task):
        try:
            node = ast.parse(f"assert {match.group('call')} == {match.group('expected')}").body[0]
        except SyntaxError:
            continue
        if isinstance(node, ast.Assert) and _check(node) not in checks:
            checks.append(_check(node))
    if not checks:
        return None
    return TestSuite(setup="", checks=tuple(checks))


def merge(*suites: TestSuite | None) -> TestSuite | None:
    """One suite of every check given (duplicates once), or None when there is none."""
    setup: list[str] = []
    checks: list[tuple[str, str | None]] = []
    for suite in suites:
        if suite is None:
            continue
        setup.extend(line for line in suite.setup.splitlines() if line not in setup)
        checks.extend(c for c in suite.checks if c not in checks)
    return TestSuite(setup="\n".join(setup), checks=tuple(checks)) if checks else None


def _parse_lines(code: str) -> list[ast.stmt]:
    body: list[ast.stmt] = []
    for line in code.splitlines():
        try:
            body.extend(ast.parse(line).body)
        except SyntaxError:
            continue
    return body


_HARNESS = """\
import sys, traceback
_program, _setup, _checks = {program!r}, {setup!r}, {checks!r}
_ns = {{"__name__": "__main__"}}
try:
    exec(compile(_program, "solution.py", "exec"), _ns)
except BaseException as _exc:
    print("The program itself raised (its definitions up to there are tested):")
    print("".join(traceback.format_exception_only(type(_exc), _exc)).strip())
try:
    exec(compile(_setup, "tests.py", "exec"), _ns)
except BaseException as _exc:
    print("The tests' set-up raised:", repr(_exc))
_passed = 0
for _number, (_check, _left) in enumerate(_checks, 1):
    try:
        exec(compile(_check, "test_%d.py" % _number, "exec"), _ns)
    except AssertionError:
        _got = ""
        if _left is not None:
            try:
                _got = " (left side gave " + repr(eval(_left, _ns))[:200] + ")"
            except BaseException as _exc:
                _got = " (left side raised " + repr(_exc)[:200] + ")"
        print("TEST %d FAILED: %s%s" % (_number, _check, _got))
    except BaseException as _exc:
        print("TEST %d ERROR: %s -> %s" % (_number, _check, repr(_exc)[:200]))
    else:
        _passed += 1
        print("TEST %d passed: %s" % (_number, _check))
print("TESTS PASSED %d/%d" % (_passed, len(_checks)))
sys.exit(0 if _passed == len(_checks) else 1)
"""


def harness(program: str, tests: TestSuite) -> str:
    """A program that runs ``program``, then each test on its own, and prints the tally last."""
    return _HARNESS.format(program=program, setup=tests.setup, checks=list(tests.checks))


@dataclass(frozen=True)
class TestedAttempt:
    """One distinct program the coder sent and how it fared against the tests."""

    number: int
    digest: str
    program: str
    exit_code: int
    output: str
    tests_passed: int
    tests_total: int

    @property
    def verified(self) -> bool:
        return self.tests_total > 0 and self.tests_passed == self.tests_total


def best_of(attempts: Sequence[TestedAttempt]) -> TestedAttempt | None:
    """Most tests passed; then a clean exit; the earlier wins a tie (later edits often break)."""
    if not attempts:
        return None
    return max(attempts, key=lambda a: (a.tests_passed, a.exit_code == 0, -a.number))


class TestRunnerAgent(BaseChatAgent):
    """Runs the coder's complete program against the tester's tests in the sandbox.

    Its answer is a ``CodeExecutionEvent`` whose metadata says ``tests_passed``,
    ``tests_total`` and ``verified`` ("true" only when every test ran and passed), ``author``
    (who sent the program), and ``repeat`` when that program was already run (it is not run
    again).

    Args:
        executor: where code runs (``RemoteExecutor`` for the sandbox service).
        coder: whose messages carry programs (one name, or several: a coder and a sampler of
            fresh candidates); the newest of them is tested.
        tester: whose messages carry the tests.
        example_tests: also test the examples the task states (``>>> call`` then the value).
    """

    __test__ = False  # a name pytest would otherwise try to collect

    def __init__(
        self,
        name: str,
        executor: CodeExecutor,
        *,
        coder: str | Sequence[str] = "coder",
        tester: str = "tester",
        description: str = "Runs the coder's program against the tester's tests in the sandbox.",
        example_tests: bool = False,
    ) -> None:
        super().__init__(name, description)
        self._example_tests = example_tests
        self._examples: TestSuite | None = None
        self._executor = executor
        self._coders = (coder,) if isinstance(coder, str) else tuple(coder)
        self._tester = tester
        self._tests: TestSuite | None = None
        self._attempts: list[TestedAttempt] = []
        self._inbox: list[ChatMessage] = []

    @property
    def tests(self) -> TestSuite | None:
        return self._tests

    @property
    def attempts(self) -> list[TestedAttempt]:
        return list(self._attempts)

    @property
    def best_attempt(self) -> TestedAttempt | None:
        return best_of(self._attempts)

    async def on_messages_stream(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | Response]:
        self._inbox.extend(messages)
        for message in self._inbox:
            if message.is_task and self._example_tests:
                self._examples = example_tests(message.to_text()) or self._examples
                self._tests = merge(self._examples, self._tests)
            elif message.source == self._tester:
                self._tests = merge(self._examples, parse_tests(message.to_text())) or self._tests
        latest = next((m for m in reversed(self._inbox) if m.source in self._coders), None)
        blocks = extract_code_blocks(latest.to_text(), PYTHON) if latest is not None else []
        if latest is None or not blocks:
            cut = latest is not None and has_unclosed_fence(latest.to_text())
            self._inbox.clear()
            text = (
                "No program to test: the code block was never closed (the reply was cut off). "
                "Send a shorter complete program in one ```python block."
                if cut
                else "No program to test: send the complete program in one ```python block."
            )
            yield Response(chat_message=TextMessage(source=self.name, content=text))
            return
        self._inbox.clear()
        index = choose_program(blocks)
        program = blocks[index].code
        generation = CodeGenerationEvent(
            source=self.name, code_blocks=[blocks[index]], author=latest.source
        )
        yield generation
        digest = hashlib.sha256(program.strip().encode()).hexdigest()
        earlier = next((a for a in self._attempts if a.digest == digest), None)
        notes = []
        if len(blocks) > 1:
            notes.append(f"Ran block {index + 1} of {len(blocks)} (the complete program).")
        if earlier is not None:
            notes.append(
                f"This program is identical to attempt {earlier.number}; its result is repeated "
                "below. Change the code."
            )
            attempt = earlier
        else:
            attempt = await self._run(program, digest, cancellation)
            self._attempts.append(attempt)
        message = CodeExecutionEvent(
            source=self.name,
            exit_code=attempt.exit_code,
            output=attempt.output,
            code_blocks=[blocks[index]],
            note="\n".join(notes),
            metadata={
                "tests_passed": str(attempt.tests_passed),
                "tests_total": str(attempt.tests_total),
                "verified": "true" if attempt.verified else "false",
                "author": latest.source,
                **({"repeat": str(earlier.number)} if earlier is not None else {}),
            },
        )
        yield Response(chat_message=message, inner_messages=(generation,))

    async def _run(
        self, program: str, digest: str, cancellation: CancellationToken | None
    ) -> TestedAttempt:
        tests = self._tests
        code = harness(program, tests) if tests is not None else program
        try:
            result = await self._executor.execute_code_blocks(
                [CodeBlock(code=code, language="python")], cancellation
            )
        except AgentClientError as exc:
            logger.warning("executor failed: %s", exc)
            result = CodeResult(exit_code=1, output=f"The sandbox could not run the code: {exc}")
        passed, total = 0, 0
        found = _SUMMARY.findall(result.output)
        if tests is not None and found:
            passed, total = int(found[-1][0]), int(found[-1][1])
        elif tests is not None:
            total = tests.size  # the harness never reached its tally (timeout, killed)
        output = result.output
        if tests is not None and passed < total:
            output += (
                "\nFix the program so that every test passes (the failures above are real "
                "output), and send the whole corrected program in one ```python block."
            )
        if tests is None:
            output = "(No tests were written, so this run verifies nothing.)\n" + output
        return TestedAttempt(
            number=len(self._attempts) + 1,
            digest=digest,
            program=program,
            exit_code=result.exit_code,
            output=output,
            tests_passed=passed,
            tests_total=total,
        )

    async def on_run_end(self) -> None:
        await self._executor.stop()

    async def on_reset(self, cancellation: CancellationToken | None = None) -> None:
        self._attempts.clear()
        self._inbox.clear()
        self._tests = self._examples = None
        await self._executor.stop()

    async def save_state(self) -> dict[str, Any]:
        return {
            "inbox": CHAT_MESSAGES.dump_python(self._inbox, mode="json"),
            "tests": None
            if self._tests is None
            else {"setup": self._tests.setup, "checks": [list(c) for c in self._tests.checks]},
            "attempts": [a.__dict__ for a in self._attempts],
        }

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._inbox = CHAT_MESSAGES.validate_python(state.get("inbox", []))
        tests = state.get("tests")
        self._tests = (
            None
            if tests is None
            else TestSuite(
                setup=str(tests["setup"]),
                checks=tuple((str(c[0]), c[1]) for c in tests["checks"]),
            )
        )
        self._attempts = [TestedAttempt(**a) for a in state.get("attempts", [])]
