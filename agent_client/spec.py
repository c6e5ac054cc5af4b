"""TeamSpec: a team described in YAML (agents, models, tools, termination, executor).

The JSON Schema at agent_client/schema/team-spec.schema.json is generated from these models
(``agent-client schema``); a test keeps the committed file current.

Termination is either the first form (``TerminationSpec``: fields OR-ed together, kept so old
specs load) or a tree of typed conditions (``ConditionSpec``) combined with ``and``/``or`` to
any depth, the shape of ``a | (b & c)`` in code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails

from agent_client.errors import SpecError

_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Spec):
    """An OpenAI-compatible endpoint; the key is read from the named environment variable."""

    base_url: str
    model: str
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the key; unset sends 'none'."
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    timeout_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Per call. A small model on CPU can take minutes; a call that times out ends that "
            "agent's turn (the team goes on), not the run."
        ),
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    max_tokens: int | None = Field(
        default=None, ge=1, description="Default cap on each answer; an agent's own wins."
    )


class ExecutorSpec(_Spec):
    """The sandbox service that runs code."""

    service_url: str
    api_key_env: str = Field(description="Environment variable holding the service key.")
    policy: str | None = None
    wall_time_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    collect: list[str] = Field(
        default_factory=list,
        description="Workspace globs whose files come back with each run's result.",
    )


class AssistantSpec(_Spec):
    type: Literal["assistant"]
    name: str = Field(pattern=_NAME)
    description: str = "An agent that answers with a model."
    system_message: str | None = None
    model: str = Field(description="A key of `models`.")
    tools: list[str] = Field(
        default_factory=list,
        description=(
            "Names of tools registered with the builder (the studio), or, from the CLI, "
            "import paths of typed functions, 'module:function'."
        ),
    )
    handoffs: list[str] = Field(default_factory=list)
    reflect_on_tool_use: bool = False
    max_tool_iterations: int = Field(default=1, ge=1, le=20)
    tool_choice: str = "auto"
    max_context_messages: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Cap on each answer (None: the model's). An answer cut at the cap is continued "
            "once; a local server without a cap may generate until its context is full."
        ),
    )


class CodeExecutorSpec(_Spec):
    type: Literal["code_executor"]
    name: str = Field(pattern=_NAME)
    description: str = "Runs the code blocks in the latest message and reports the result."
    languages: list[str] = Field(
        default_factory=lambda: ["python", "py", "python3", "bash", "sh", "shell"]
    )
    sources: list[str] | None = None


class UserProxySpec(_Spec):
    type: Literal["user_proxy"]
    name: str = Field(pattern=_NAME)
    description: str = "A human who answers questions and gives approval."


AgentSpec = Annotated[AssistantSpec | CodeExecutorSpec | UserProxySpec, Field(discriminator="type")]


class TerminationSpec(_Spec):
    """The first form: conditions OR-ed together, the first to fire stops the run."""

    max_messages: int | None = Field(default=None, ge=1)
    text_mention: str | None = None
    text_mention_sources: list[str] | None = None
    handoff_target: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_total_tokens: int | None = Field(default=None, ge=1)

    def as_condition(self) -> ConditionSpec | None:
        """The same stop rule as a condition tree (an ``or`` of the fields set)."""
        parts: list[ConditionSpec] = []
        if self.max_messages is not None:
            parts.append(MaxMessagesCondition(type="max_messages", max_messages=self.max_messages))
        if self.text_mention is not None:
            parts.append(
                TextMentionCondition(
                    type="text_mention", text=self.text_mention, sources=self.text_mention_sources
                )
            )
        if self.handoff_target is not None:
            parts.append(HandoffCondition(type="handoff", target=self.handoff_target))
        if self.timeout_s is not None:
            parts.append(TimeoutCondition(type="timeout", timeout_s=self.timeout_s))
        if self.max_total_tokens is not None:
            parts.append(
                TokenUsageCondition(type="token_usage", max_total_tokens=self.max_total_tokens)
            )
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return AnyOfCondition(type="or", conditions=parts)


class MaxMessagesCondition(_Spec):
    """Stops after this many chat messages (the task counts)."""

    type: Literal["max_messages"]
    max_messages: int = Field(ge=1)


class TextMentionCondition(_Spec):
    """Stops when an agent (one of ``sources``, if given) writes ``text``."""

    type: Literal["text_mention"]
    text: str = Field(min_length=1)
    sources: list[str] | None = None


class HandoffCondition(_Spec):
    """Stops when an agent hands off to ``target``."""

    type: Literal["handoff"]
    target: str = Field(min_length=1)


class TimeoutCondition(_Spec):
    """Stops at the first check after ``timeout_s`` seconds."""

    type: Literal["timeout"]
    timeout_s: float = Field(gt=0)


class TokenUsageCondition(_Spec):
    """Stops once the models' tokens reach any limit given."""

    type: Literal["token_usage"]
    max_total_tokens: int | None = Field(default=None, ge=1)
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_limit(self) -> TokenUsageCondition:
        if (
            self.max_total_tokens is None
            and self.max_prompt_tokens is None
            and self.max_completion_tokens is None
        ):
            raise ValueError("give at least one of max_total_tokens, max_prompt_tokens, ...")
        return self


class AllOfCondition(_Spec):
    """Stops once every part has fired (``a & b``)."""

    type: Literal["and"]
    conditions: list[ConditionSpec] = Field(min_length=2)


class AnyOfCondition(_Spec):
    """Stops when any part fires (``a | b``)."""

    type: Literal["or"]
    conditions: list[ConditionSpec] = Field(min_length=2)


ConditionSpec = Annotated[
    MaxMessagesCondition
    | TextMentionCondition
    | HandoffCondition
    | TimeoutCondition
    | TokenUsageCondition
    | AllOfCondition
    | AnyOfCondition,
    Field(discriminator="type"),
]
AllOfCondition.model_rebuild()
AnyOfCondition.model_rebuild()


def _termination_form(value: object) -> str:
    """Which form a termination is: a tree node names its ``type``; the first form never does."""
    if isinstance(value, dict):
        return "tree" if "type" in value else "flat"
    return "flat" if isinstance(value, TerminationSpec) else "tree"


TerminationField = Annotated[
    Annotated[ConditionSpec, Tag("tree")] | Annotated[TerminationSpec, Tag("flat")],
    Discriminator(_termination_form),
]


# The preset's named styles (teams.planner_coder_reviewer.style_options says what each sets).
Style = Literal["reviewed", "tested", "sampled"]


def preset_style(style: Style | None, tester: bool) -> Style:
    """The style asked for; without one, ``tested`` if the older ``tester`` flag says so."""
    return style or ("tested" if tester else "reviewed")


class TeamSettings(_Spec):
    type: Literal["round_robin", "selector", "swarm", "planner_coder_reviewer"]
    max_turns: int | None = Field(default=None, ge=1)
    model: str | None = Field(
        default=None,
        description="Selector's model, or the preset's model for every role (a key of `models`).",
    )
    allow_repeated_speaker: bool = False
    max_selector_attempts: int = Field(default=3, ge=1, le=10)
    max_rounds: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="planner_coder_reviewer only: the coder's programs (default: the style's, 5).",
    )
    style: Style | None = Field(
        default=None,
        description=(
            "planner_coder_reviewer only: reviewed (the default: a reviewer approves a run that "
            "exited 0), tested (a tester's asserts and the task's >>> examples decide), or "
            "sampled (the task's examples decide; after two programs, fresh candidates are "
            "sampled and the tests choose)."
        ),
    )
    tester: bool = Field(
        default=False,
        description="planner_coder_reviewer only: the same as style: tested.",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="planner_coder_reviewer only: cap on every role's answer."
    )

    @property
    def preset_style(self) -> Style:
        return preset_style(self.style, self.tester)


class TeamSpec(_Spec):
    """A whole team: what `agent-client run SPEC.yaml` builds."""

    version: Literal[1] = 1
    models: dict[str, ModelSpec]
    agents: list[AgentSpec] = Field(default_factory=list)
    team: TeamSettings
    termination: TerminationField | None = Field(
        default=None,
        description=(
            "A condition tree ({type: or, conditions: [...]}, nesting allowed), or the first "
            "form: an object whose fields are OR-ed."
        ),
    )
    executor: ExecutorSpec | None = None

    @property
    def stop_condition(self) -> ConditionSpec | None:
        """The termination as a condition tree, whichever form the spec used."""
        if isinstance(self.termination, TerminationSpec):
            return self.termination.as_condition()
        return self.termination

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> TeamSpec:
        if isinstance(info.context, dict) and info.context.get(DEFER_REFERENCES):
            return self
        problems = reference_problems(self)
        if problems:
            raise ValueError("; ".join(f"{p.path}: {p.message}" for p in problems))
        return self


# Validation context key: skip the cross-field checks so ``spec_problems`` can report each at
# the field it concerns instead of one error at the root.
DEFER_REFERENCES = "defer_references"


class SpecProblem(BaseModel):
    """One thing wrong with a spec, at a dotted path (``agents.1.model``; ``""`` for the root)."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


def reference_problems(spec: TeamSpec) -> list[SpecProblem]:
    """What is wrong across fields (names, references, required parts), each at its field."""
    problems: list[SpecProblem] = []
    seen: set[str] = set()
    for index, agent in enumerate(spec.agents):
        if agent.name in seen:
            problems.append(
                SpecProblem(path=f"agents.{index}.name", message="agent names must be unique")
            )
        seen.add(agent.name)
        if isinstance(agent, AssistantSpec) and agent.model not in spec.models:
            problems.append(
                SpecProblem(
                    path=f"agents.{index}.model",
                    message=f"agent {agent.name} uses unknown model {agent.model!r}",
                )
            )
    needs_executor = spec.team.type == "planner_coder_reviewer" or any(
        isinstance(a, CodeExecutorSpec) for a in spec.agents
    )
    if needs_executor and spec.executor is None:
        problems.append(
            SpecProblem(path="executor", message="this team runs code: give an `executor`")
        )
    if spec.team.type == "planner_coder_reviewer":
        if spec.team.model is None or spec.team.model not in spec.models:
            problems.append(
                SpecProblem(
                    path="team.model",
                    message="planner_coder_reviewer needs team.model naming one of `models`",
                )
            )
        return problems
    if not spec.agents:
        problems.append(SpecProblem(path="agents", message="give at least one agent"))
    if spec.team.type == "selector" and spec.team.model not in spec.models:
        problems.append(
            SpecProblem(
                path="team.model",
                message="a selector team needs team.model naming one of `models`",
            )
        )
    if spec.team.max_turns is None and spec.stop_condition is None:
        problems.append(
            SpecProblem(
                path="termination", message="give a termination condition or team.max_turns"
            )
        )
    return problems


def spec_problems(raw: object) -> tuple[TeamSpec | None, list[SpecProblem]]:
    """Validate ``raw`` (parsed JSON/YAML) and say what is wrong, field by field.

    Returns:
        The spec when it is valid (and no problems), else None and every problem found.
    """
    try:
        spec = TeamSpec.model_validate(raw, context={DEFER_REFERENCES: True})
    except ValidationError as exc:
        return None, [
            SpecProblem(path=".".join(str(p) for p in _error_loc(e)), message=e["msg"])
            for e in exc.errors()
        ]
    problems = reference_problems(spec)
    return (None, problems) if problems else (spec, [])


def _error_loc(error: ErrorDetails) -> tuple[int | str, ...]:
    loc = _field_loc(error["loc"])
    # An unknown ``type`` is the type field's fault, which is where a form shows it.
    return (*loc, "type") if error["type"] == "union_tag_invalid" else loc


def _field_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A location without pydantic's union-branch tags (``tree``, ``assistant``, ``or``, ...).

    Keeping them would point a form at a path that does not exist in the document. A tag is
    only ever the part right after a union's own place, so field names that equal a tag
    (``max_messages``) are kept.
    """
    out: list[int | str] = []
    expect_tag = False
    for part in loc:
        if expect_tag and isinstance(part, str) and part in _UNION_TAGS:
            expect_tag = part == "tree"  # the tree's own tag (``or``, ``timeout``) follows
            continue
        expect_tag = part == "termination" or (
            isinstance(part, int) and bool(out) and out[-1] in ("agents", "conditions")
        )
        out.append(part)
    return tuple(out)


_UNION_TAGS = frozenset(
    {
        "tree",
        "flat",
        "assistant",
        "code_executor",
        "user_proxy",
        "max_messages",
        "text_mention",
        "handoff",
        "timeout",
        "token_usage",
        "and",
        "or",
    }
)


def load_spec(path: Path) -> TeamSpec:
    """Read and validate a YAML spec.

    Raises:
        SpecError: the file is missing, not YAML, or breaks the schema (with the field).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return TeamSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from exc


def team_spec_schema() -> str:
    """The JSON Schema of TeamSpec as committed (stable key order, trailing newline)."""
    return json.dumps(TeamSpec.model_json_schema(), indent=2, sort_keys=True) + "\n"
