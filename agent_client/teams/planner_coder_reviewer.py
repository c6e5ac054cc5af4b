"""The planner-coder-reviewer preset: the sandbox's real result, not an opinion, decides success.

Order: planner (once) -> coder -> executor -> reviewer -> coder ... The reviewer's APPROVE stops
the run only if the latest execution exited 0; an approval of a failed or missing run is
ignored. Each role sees labelled turns, the task always, and a short recent window.

With ``tester=True`` (what the HumanEval benchmark measures): planner -> tester -> coder ->
executor -> (reviewer, only after a failure) -> coder ... The tester writes asserts from the
task before any code exists; the executor runs them against each program; the run stops
verified once every test passed, and the team's answer is the attempt that passed the most.
Roles are kept in their lane (``role_guards``), a failed model call is retried once, and a
resubmitted identical program skips the review (twice in a row ends the run).

With ``candidates=N`` (a tested team only), once the coder's ``max_rounds`` programs failed the
tests, or the coder resent one, a sampler writes up to N fresh programs from the task alone,
each drawn at a temperature with its own seed, and each is tested like the coder's: the tests
choose among them (the approach of CodeT and AgentCoder). At temperature 0 a small model asked
to fix its program mostly resends it; an independent sample is often a different, right one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from agent_client.agents.assistant import FAILED_TURN, AssistantAgent
from agent_client.agents.code_executor import CodeExecutorAgent
from agent_client.conditions import MaxMessageTermination, TerminationCondition
from agent_client.executors.base import CodeExecutor
from agent_client.messages import (
    CHAT_MESSAGE_TYPES,
    AnyMessage,
    ChatMessage,
    CodeExecutionEvent,
    StopMessage,
)
from agent_client.models.base import ModelClient
from agent_client.spec import Style
from agent_client.teams import role_guards
from agent_client.teams.selector import SelectorGroupChat
from agent_client.teams.verification import TestRunnerAgent

Role = Literal["planner", "coder", "reviewer", "tester", "sampler"]

PLANNER_PROMPT = (
    "You are the planner. Break the task into a short numbered plan (at most 5 steps) for "
    "the coder, and say how the program should prove its result (assert statements that "
    "check the expected values). Do not write code."
)
CODER_PROMPT = (
    "You are the coder. Write ONE complete, self-contained Python program in a single "
    "```python block that solves the task: all imports included, and at the end assert "
    "statements that check the result, then print what was checked. The executor runs it in "
    "a sandbox and shows you the real output. If the run failed or the reviewer asks for "
    "changes, fix the cause and send the whole corrected program again; never resend "
    "identical code."
)
REVIEWER_PROMPT = (
    "You are the reviewer. Read the task, the coder's program and the executor's REAL result. "
    "If the run exited with code 0 and its output shows the task is done correctly, answer "
    "APPROVE on the first line. Otherwise answer REVISE on the first line, then the concrete "
    "reasons taken from the output. Do not write code yourself. Approving a run that did not "
    "exit with code 0 has no effect."
)

TESTER_PROMPT = (
    "You are the tester. From the task alone (its examples and the behaviour it states), "
    "write 3 to 6 assert statements that call the function the task names, in one ```python "
    "block with the imports they need. Use exactly the expected values the task gives. Only "
    "asserts: do not implement the function."
)
TESTED_CODER_PROMPT = (
    "You are the coder. Write ONE complete Python program in a single ```python block that "
    "solves the task: all imports and the function(s) the task names, nothing else (no "
    "tests, no asserts, no examples: the tester's tests are run against your code). If tests "
    "failed, fix the cause shown in the real output and send the whole corrected program; "
    "never resend identical code."
)
TESTED_REVIEWER_PROMPT = (
    "You are the reviewer. The tester's tests were run against the coder's program and some "
    "failed. Read the task, the program and the REAL output. Answer REVISE on the first line, "
    "then in a few sentences: which test failed, what the program returned instead, and the "
    "cause to fix. If a test's expected value contradicts the task, say so. Do not write code."
)

_APPROVAL = re.compile(r"^[\W_]*APPROVE\b", re.MULTILINE)


@dataclass(frozen=True)
class RolePrompts:
    planner: str = PLANNER_PROMPT
    coder: str = CODER_PROMPT
    reviewer: str = REVIEWER_PROMPT
    tester: str = TESTER_PROMPT


TESTED_PROMPTS = RolePrompts(coder=TESTED_CODER_PROMPT, reviewer=TESTED_REVIEWER_PROMPT)
# The sampled style's coder: the task says what to write; its first answer is a single call's.
SAMPLED_PROMPTS = RolePrompts(coder="You are an expert Python programmer.")

STYLES: tuple[Style, ...] = get_args(Style)


def style_options(style: Style, *, max_rounds: int | None = None) -> dict[str, Any]:
    """The preset's keyword arguments for a named style (the CLI's ``--style``, a spec's
    ``team.style``); pass them to ``planner_coder_reviewer``, overriding any you like.
    ``max_rounds``, when given, replaces the style's (or the preset's default of 5).

    - ``reviewed``: planner -> coder -> executor -> reviewer; the reviewer's approval of a run
      that exited 0 ends it.
    - ``tested``: a tester's asserts and the task's examples, run against each program, decide.
    - ``sampled``: the task's examples decide; no planner, reviewer or tester. The coder gets two
      programs (the second sees the failed examples' real output), then four fresh candidates
      are sampled from the task alone. With a small model on HumanEval this is the style that
      beats a single call (bench/agents_humaneval.py; the README gives the figures).
    """
    options: dict[str, Any] = {}
    if style == "tested":
        options = {"tester": True, "example_tests": True}
    elif style == "sampled":
        options = {
            "example_tests": True,
            "planner": False,
            "reviewer": False,
            "max_rounds": 2,
            "candidates": 4,
            "coder_context_messages": 1,
            "prompts": SAMPLED_PROMPTS,
        }
    if max_rounds is not None:
        options["max_rounds"] = max_rounds
    return options


class TestedRunTermination(TerminationCondition):
    """Stops a tested run: all tests passed, the same program twice in a row, two failed model
    turns in a row, or ``max_rounds`` programs tested.

    Args:
        executor: the ``TestRunnerAgent``'s name.
        max_rounds: programs tested before the run stops with its best attempt.
        max_repeats: identical resubmissions in a row that end the run.
    """

    def __init__(self, *, executor: str, max_rounds: int, max_repeats: int = 2) -> None:
        self._executor = executor
        self._max_rounds = max_rounds
        self._max_repeats = max_repeats
        self._runs = 0
        self._repeats_in_a_row = 0
        self._failed_in_a_row = 0
        self._stop: StopMessage | None = None

    @property
    def terminated(self) -> bool:
        return self._stop is not None

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if message.is_task or not isinstance(message, CHAT_MESSAGE_TYPES):
                continue
            self._failed_in_a_row = (
                self._failed_in_a_row + 1 if message.metadata.get("turn") == FAILED_TURN else 0
            )
            reason = None
            if self._failed_in_a_row >= 2:
                reason = "two model calls in a row failed; the best attempt so far stands."
            elif isinstance(message, CodeExecutionEvent) and message.source == self._executor:
                self._runs += 1
                meta = message.metadata
                repeat = "repeat" in meta
                self._repeats_in_a_row = self._repeats_in_a_row + 1 if repeat else 0
                if meta.get("verified") == "true":
                    reason = f"all {meta['tests_total']} tests passed."
                elif meta.get("tests_total") == "0" and message.succeeded:
                    # Nothing could prove it better or worse: more rounds only cost tokens.
                    reason = "the program ran clean, but no tests exist to verify it."
                elif self._repeats_in_a_row >= self._max_repeats:
                    reason = (
                        "the coder resent an identical program twice in a row."
                        if self._max_repeats == 2
                        else f"the coder resent an identical program {self._max_repeats} time(s)."
                    )
                elif self._runs >= self._max_rounds:
                    reason = f"{self._max_rounds} programs tested; the best attempt stands."
            if reason is not None:
                self._stop = StopMessage(source="termination", content=reason)
                return self._stop
        return None

    async def reset(self) -> None:
        self._stop = None
        self._runs = self._repeats_in_a_row = self._failed_in_a_row = 0


class VerifiedApprovalTermination(TerminationCondition):
    """Stops when ``reviewer`` approves and the latest run by ``executor`` exited 0."""

    def __init__(self, *, reviewer: str, executor: str) -> None:
        self._reviewer = reviewer
        self._executor = executor
        self._last_run_ok = False
        self._stop: StopMessage | None = None
        self.ignored_approvals = 0

    @property
    def terminated(self) -> bool:
        return self._stop is not None

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if message.is_task:
                continue
            if isinstance(message, CodeExecutionEvent) and message.source == self._executor:
                self._last_run_ok = message.succeeded
            elif message.source == self._reviewer and is_approval(message.to_text()):
                if self._last_run_ok:
                    self._stop = StopMessage(
                        source="termination",
                        content=f"{self._reviewer} approved a run that exited with code 0.",
                    )
                    return self._stop
                self.ignored_approvals += 1
        return None

    async def reset(self) -> None:
        self._stop = None
        self._last_run_ok = False


def is_approval(text: str) -> bool:
    """A line starting with APPROVE (markdown emphasis allowed), as the reviewer is told."""
    return _APPROVAL.search(text) is not None


class PlannerCoderReviewer(SelectorGroupChat):
    """The preset team; ``answer`` is its best program so far, ``verified`` whether tests
    that ran passed it (with ``tester=True``) or, without a tester, whether it exited 0."""

    def __init__(self, *args: Any, runner: CodeExecutorAgent | TestRunnerAgent, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._runner = runner

    @property
    def runner(self) -> CodeExecutorAgent | TestRunnerAgent:
        return self._runner

    @property
    def answer(self) -> str | None:
        if isinstance(self._runner, TestRunnerAgent):
            tested = self._runner.best_attempt
            return tested.program if tested is not None else None
        best = self._runner.best_attempt or next(iter(reversed(self._runner.attempts)), None)
        return "\n\n".join(b.code for b in best.blocks) if best is not None else None

    @property
    def verified(self) -> bool:
        if isinstance(self._runner, TestRunnerAgent):
            tested = self._runner.best_attempt
            return tested is not None and tested.verified
        return self._runner.best_attempt is not None


def planner_coder_reviewer(
    model_client: ModelClient | Mapping[Role, ModelClient],
    executor: CodeExecutor,
    *,
    prompts: RolePrompts | None = None,
    max_rounds: int = 5,
    extra_termination: TerminationCondition | None = None,
    coder_context_messages: int = 6,
    reviewer_context_messages: int = 4,
    tester: bool = False,
    example_tests: bool = False,
    planner: bool = True,
    reviewer: bool = True,
    max_tokens: int | Mapping[Role, int] | None = None,
    max_repeats: int = 2,
    candidates: int = 0,
    candidate_temperature: float = 0.7,
    candidate_seed: int = 1,
) -> PlannerCoderReviewer:
    """A ready team: planner, (tester,) coder, executor (the sandbox), reviewer.

    Args:
        model_client: one model for every role, or one per role (``planner``, ``coder``,
            ``reviewer``, ``tester``).
        executor: where code runs (``RemoteExecutor`` for the sandbox service).
        prompts: the roles' system messages (with ``tester=True`` the default is
            ``TESTED_PROMPTS``: a coder without asserts, a reviewer of failed tests).
        max_rounds: coder-executor-reviewer rounds before the run stops unapproved.
        extra_termination: OR-ed in (e.g. a TimeoutTermination or ExternalTermination).
        tester: add a tester whose asserts, run against each program, decide success.
        example_tests: test each program against the task's own ``>>>`` examples too (a
            tester that costs no tokens); on its own it makes a tested team without a tester.
        planner: include the planner (with a tester it is optional; without, it always runs).
        reviewer: include the reviewer (with a tester only; it explains failed tests).
        max_tokens: cap on each answer, for all roles or per role.
        max_repeats: identical resubmissions in a row that end a tested run (at temperature 0
            a model that resent its program once usually does again: 1 saves a round).
        candidates: fresh programs a sampler draws from the task alone once the coder's
            ``max_rounds`` programs failed the tests or it resent one (a tested team only);
            a resubmission then no longer ends the run.
        candidate_temperature: the sampler's temperature.
        candidate_seed: the first candidate's seed (the next ones count up from it).
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    if candidates < 0:
        raise ValueError("candidates must be 0 or more")
    tested = tester or example_tests
    if candidates and not tested:
        raise ValueError("candidates need tests to choose by: set tester or example_tests")
    if not tested and not (planner and reviewer):
        raise ValueError("without a tester the planner and the reviewer are required")
    prompts = prompts or (TESTED_PROMPTS if tested else RolePrompts())

    def client(role: Role) -> ModelClient:
        if isinstance(model_client, Mapping):
            return model_client.get(role) or model_client["coder"]
        return model_client

    def cap(role: Role) -> int | None:
        if isinstance(max_tokens, Mapping):
            return max_tokens.get(role) or (max_tokens.get("coder") if role == "sampler" else None)
        return max_tokens

    agents: list[AssistantAgent | CodeExecutorAgent | TestRunnerAgent] = []
    if planner:
        agents.append(
            AssistantAgent(
                "planner",
                client("planner"),
                description="Breaks the task into steps.",
                system_message=prompts.planner,
                max_tokens=cap("planner"),
                reply_check=role_guards.plan_check,
                reply_repair=role_guards.strip_code,
            )
        )
    if tester:
        agents.append(
            AssistantAgent(
                "tester",
                client("tester"),
                description="Writes tests from the task, before and apart from the code.",
                system_message=prompts.tester,
                max_context_messages=1,  # the task (and the plan): never the code
                max_tokens=cap("tester"),
                reply_check=role_guards.tests_check,
            )
        )
    agents.append(
        AssistantAgent(
            "coder",
            client("coder"),
            description="Writes the Python program.",
            system_message=prompts.coder,
            max_context_messages=coder_context_messages,
            max_tokens=cap("coder"),
            hidden_sources=("tester",),  # code to the task, not to the tests (AgentCoder)
        )
    )
    if candidates:
        agents.append(
            AssistantAgent(
                "sampler",
                client("sampler"),
                description="Writes a fresh candidate program from the task alone.",
                system_message=prompts.coder,
                max_context_messages=0,  # the task only: each candidate is independent
                max_tokens=cap("sampler"),
                temperature=candidate_temperature,
                seed=candidate_seed,
            )
        )
    runner: CodeExecutorAgent | TestRunnerAgent
    if tested:
        runner = TestRunnerAgent(
            "executor", executor, coder=("coder", "sampler"), example_tests=example_tests
        )
    else:
        runner = CodeExecutorAgent(
            "executor",
            executor,
            description="Runs the coder's program in the sandbox and reports the real result.",
            sources=["coder"],
            blocks="program",
        )
    agents.append(runner)
    if reviewer:
        agents.append(
            AssistantAgent(
                "reviewer",
                client("reviewer"),
                description="Approves only a correct, successful run.",
                system_message=prompts.reviewer,
                max_context_messages=reviewer_context_messages,
                max_tokens=cap("reviewer"),
                reply_check=role_guards.review_check,
                reply_repair=role_guards.review_repair,
            )
        )
    termination: TerminationCondition
    if tested:
        termination = TestedRunTermination(
            executor="executor",
            max_rounds=max_rounds + candidates,
            # with candidates a resubmission hands over to the sampler instead
            max_repeats=max_repeats if not candidates else max_rounds + candidates + 1,
        )
    else:
        # task + plan + rounds of (code, result, review)
        termination = VerifiedApprovalTermination(
            reviewer="reviewer", executor="executor"
        ) | MaxMessageTermination(2 + 3 * max_rounds)
    if extra_termination is not None:
        termination = termination | extra_termination
    names = [a.name for a in agents]
    return PlannerCoderReviewer(
        agents,
        selector_func=lambda thread: _next_role(thread, names, max_rounds),
        termination_condition=termination,
        runner=runner,
    )


def _next_role(thread: Sequence[ChatMessage], names: Sequence[str], max_rounds: int) -> str:
    last = next((m for m in reversed(thread) if not m.is_task), None)
    if last is None:
        return names[0]
    if last.metadata.get("turn") == FAILED_TURN:
        return last.source  # once more; a second failure in a row stops or moves on below
    if last.source == "executor" and "sampler" in names and _coder_done(thread, max_rounds):
        return "sampler"
    if last.source == "executor":
        # No code found, or a resubmitted program: back to the coder; a real run goes to the
        # reviewer (when there is one; a verified run has already stopped the team).
        if isinstance(last, CodeExecutionEvent) and "repeat" not in last.metadata:
            return "reviewer" if "reviewer" in names else "coder"
        return "coder"
    if last.source == "planner" and "tester" in names:
        return "tester"
    if last.source in ("coder", "sampler"):
        return "executor"
    return "coder"  # after the planner, the tester or a review


def _coder_done(thread: Sequence[ChatMessage], max_rounds: int) -> bool:
    """The coder has had its rounds: it sent ``max_rounds`` programs, resent one, or the
    sampler has already begun (from then on every failed run asks for a fresh candidate)."""
    runs = [m for m in thread if isinstance(m, CodeExecutionEvent) and m.source == "executor"]
    if not runs:
        return False
    latest = runs[-1].metadata
    coder_runs = sum(1 for m in runs if m.metadata.get("author") == "coder")
    return latest.get("author") == "sampler" or "repeat" in latest or coder_runs >= max_rounds
