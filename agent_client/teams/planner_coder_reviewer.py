"""The planner-coder-reviewer preset: the sandbox's real result, not an opinion, decides success.

Order: planner (once) -> coder -> executor -> reviewer -> coder ... The reviewer's APPROVE stops
the run only if the latest execution exited 0; an approval of a failed or missing run is
ignored. Each role sees labelled turns, the task always, and a short recent window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agent_client.agents.assistant import AssistantAgent
from agent_client.agents.code_executor import CodeExecutorAgent
from agent_client.conditions import MaxMessageTermination, TerminationCondition
from agent_client.executors.base import CodeExecutor
from agent_client.messages import AnyMessage, ChatMessage, CodeExecutionEvent, StopMessage
from agent_client.models.base import ModelClient
from agent_client.teams.selector import SelectorGroupChat

Role = Literal["planner", "coder", "reviewer"]

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

_APPROVAL = re.compile(r"^[\W_]*APPROVE\b", re.MULTILINE)


@dataclass(frozen=True)
class RolePrompts:
    planner: str = PLANNER_PROMPT
    coder: str = CODER_PROMPT
    reviewer: str = REVIEWER_PROMPT


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


def planner_coder_reviewer(
    model_client: ModelClient | Mapping[Role, ModelClient],
    executor: CodeExecutor,
    *,
    prompts: RolePrompts | None = None,
    max_rounds: int = 5,
    extra_termination: TerminationCondition | None = None,
    coder_context_messages: int = 6,
    reviewer_context_messages: int = 4,
) -> SelectorGroupChat:
    """A ready team: planner, coder, executor (the sandbox), reviewer.

    Args:
        model_client: one model for every role, or one per role (``planner``, ``coder``,
            ``reviewer``).
        executor: where code runs (``RemoteExecutor`` for the sandbox service).
        prompts: the roles' system messages.
        max_rounds: coder-executor-reviewer rounds before the run stops unapproved.
        extra_termination: OR-ed in (e.g. a TimeoutTermination or ExternalTermination).
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    prompts = prompts or RolePrompts()

    def client(role: Role) -> ModelClient:
        if isinstance(model_client, Mapping):
            return model_client[role]
        return model_client

    planner = AssistantAgent(
        "planner",
        client("planner"),
        description="Breaks the task into steps.",
        system_message=prompts.planner,
    )
    coder = AssistantAgent(
        "coder",
        client("coder"),
        description="Writes the Python program.",
        system_message=prompts.coder,
        max_context_messages=coder_context_messages,
    )
    runner = CodeExecutorAgent(
        "executor",
        executor,
        description="Runs the coder's program in the sandbox and reports the real result.",
        sources=["coder"],
    )
    reviewer = AssistantAgent(
        "reviewer",
        client("reviewer"),
        description="Approves only a correct, successful run.",
        system_message=prompts.reviewer,
        max_context_messages=reviewer_context_messages,
    )
    # task + plan + rounds of (code, result, review)
    termination: TerminationCondition = VerifiedApprovalTermination(
        reviewer="reviewer", executor="executor"
    ) | MaxMessageTermination(2 + 3 * max_rounds)
    if extra_termination is not None:
        termination = termination | extra_termination
    return SelectorGroupChat(
        [planner, coder, runner, reviewer],
        selector_func=_next_role,
        termination_condition=termination,
    )


def _next_role(thread: Sequence[ChatMessage]) -> str:
    last = next((m for m in reversed(thread) if not m.is_task), None)
    if last is None:
        return "planner"
    if last.source == "executor":
        # No code found: back to the coder; a real run goes to the reviewer.
        return "reviewer" if isinstance(last, CodeExecutionEvent) else "coder"
    if last.source == "coder":
        return "executor"
    return "coder"  # after the planner or a review
