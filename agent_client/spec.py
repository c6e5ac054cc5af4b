"""TeamSpec: a team described in YAML (agents, models, tools, termination, executor).

The JSON Schema at agent_client/schema/team-spec.schema.json is generated from these models
(``agent-client schema``); a test keeps the committed file current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)


class ExecutorSpec(_Spec):
    """The sandbox service that runs code."""

    service_url: str
    api_key_env: str = Field(description="Environment variable holding the service key.")
    policy: str | None = None
    wall_time_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)


class AssistantSpec(_Spec):
    type: Literal["assistant"]
    name: str = Field(pattern=_NAME)
    description: str = "An agent that answers with a model."
    system_message: str | None = None
    model: str = Field(description="A key of `models`.")
    tools: list[str] = Field(
        default_factory=list, description="Import paths of typed functions, 'module:function'."
    )
    handoffs: list[str] = Field(default_factory=list)
    reflect_on_tool_use: bool = False
    max_tool_iterations: int = Field(default=1, ge=1, le=20)
    tool_choice: str = "auto"
    max_context_messages: int | None = Field(default=None, ge=1)


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
    """Conditions OR-ed together: the first to fire stops the run."""

    max_messages: int | None = Field(default=None, ge=1)
    text_mention: str | None = None
    text_mention_sources: list[str] | None = None
    handoff_target: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_total_tokens: int | None = Field(default=None, ge=1)


class TeamSettings(_Spec):
    type: Literal["round_robin", "selector", "swarm", "planner_coder_reviewer"]
    max_turns: int | None = Field(default=None, ge=1)
    model: str | None = Field(
        default=None,
        description="Selector's model, or the preset's model for every role (a key of `models`).",
    )
    allow_repeated_speaker: bool = False
    max_selector_attempts: int = Field(default=3, ge=1, le=10)
    max_rounds: int = Field(default=5, ge=1, le=50, description="planner_coder_reviewer only.")


class TeamSpec(_Spec):
    """A whole team: what `agent-client run SPEC.yaml` builds."""

    version: Literal[1] = 1
    models: dict[str, ModelSpec]
    agents: list[AgentSpec] = Field(default_factory=list)
    team: TeamSettings
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    executor: ExecutorSpec | None = None

    @model_validator(mode="after")
    def _references(self) -> TeamSpec:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique: {names}")
        for agent in self.agents:
            if isinstance(agent, AssistantSpec) and agent.model not in self.models:
                raise ValueError(f"agent {agent.name} uses unknown model {agent.model!r}")
        needs_executor = self.team.type == "planner_coder_reviewer" or any(
            isinstance(a, CodeExecutorSpec) for a in self.agents
        )
        if needs_executor and self.executor is None:
            raise ValueError("this team runs code: give an `executor`")
        if self.team.type == "planner_coder_reviewer":
            if self.team.model is None or self.team.model not in self.models:
                raise ValueError("planner_coder_reviewer needs team.model naming one of `models`")
        else:
            if not self.agents:
                raise ValueError("give at least one agent")
            if self.team.type == "selector" and self.team.model not in self.models:
                raise ValueError("a selector team needs team.model naming one of `models`")
            t = self.termination
            if self.team.max_turns is None and not any(
                v is not None
                for v in (
                    t.max_messages,
                    t.text_mention,
                    t.handoff_target,
                    t.timeout_s,
                    t.max_total_tokens,
                )
            ):
                raise ValueError("give a termination condition or team.max_turns")
        return self


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
