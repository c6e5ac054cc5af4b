"""Building a live team from a TeamSpec: clients opened, tools resolved, closed on exit.

Tools come from a registry when the caller gives one (the studio: names only, so a page can
never make the process import an arbitrary module), else from ``module:function`` imports (the
CLI, whose spec files the operator wrote).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from agent_client.agents.assistant import AssistantAgent
from agent_client.agents.base import BaseChatAgent
from agent_client.agents.code_executor import CodeExecutorAgent
from agent_client.agents.user_proxy import InputFunc, UserProxyAgent
from agent_client.conditions import TerminationCondition, condition_from_spec
from agent_client.errors import SpecError
from agent_client.executors.remote import RemoteExecutor
from agent_client.models.openai_client import OpenAIModelClient
from agent_client.service.client import ExecutionClient
from agent_client.service.models import LimitsOverride
from agent_client.spec import (
    AssistantSpec,
    CodeExecutorSpec,
    ConditionSpec,
    ModelSpec,
    TeamSpec,
    TerminationSpec,
    UserProxySpec,
)
from agent_client.teams.base import BaseGroupChat
from agent_client.teams.planner_coder_reviewer import planner_coder_reviewer, style_options
from agent_client.teams.round_robin import RoundRobinGroupChat
from agent_client.teams.selector import SelectorGroupChat
from agent_client.teams.swarm import Swarm

ToolRegistry = Mapping[str, Callable[..., Any]]
ExecutionClientFactory = Callable[[str, str], ExecutionClient]


@asynccontextmanager
async def open_team(
    spec: TeamSpec,
    *,
    env: Mapping[str, str],
    input_func: InputFunc = input,
    tools: ToolRegistry | None = None,
    execution_client: ExecutionClientFactory = ExecutionClient,
) -> AsyncIterator[BaseGroupChat]:
    """The team a spec describes, with its clients closed when the block ends.

    Args:
        env: where ``api_key_env`` names are looked up (the CLI passes ``os.environ``; the
            library never reads the environment itself).
        input_func: what user_proxy agents ask.
        tools: the only tools a spec may name, by name; None imports ``module:function``.
        execution_client: builds the sandbox client from (service URL, key); the studio gives
            one that also reports every execution it sees.

    Raises:
        SpecError: a named env var is unset, or a tool is not registered or cannot be imported.
    """
    async with AsyncExitStack() as stack:
        models: dict[str, OpenAIModelClient] = {}
        for key, model_spec in spec.models.items():
            models[key] = _model_client(model_spec, env)
            stack.push_async_callback(models[key].close)
        executor: RemoteExecutor | None = None
        if spec.executor is not None:
            key = _secret(env, spec.executor.api_key_env, "executor")
            client = await stack.enter_async_context(
                execution_client(spec.executor.service_url, key)
            )
            executor = RemoteExecutor(
                client,
                policy=spec.executor.policy,
                limits=LimitsOverride(
                    wall_time_s=spec.executor.wall_time_s, memory_mb=spec.executor.memory_mb
                ),
                collect=spec.executor.collect,
            )
            stack.push_async_callback(executor.stop)
        yield _team(spec, models, executor, input_func, tools)


def _team(
    spec: TeamSpec,
    models: Mapping[str, OpenAIModelClient],
    executor: RemoteExecutor | None,
    input_func: InputFunc,
    tools: ToolRegistry | None,
) -> BaseGroupChat:
    termination = termination_from_spec(spec.termination)
    settings = spec.team
    if settings.type == "planner_coder_reviewer":
        if executor is None or settings.model is None:
            raise SpecError("planner_coder_reviewer needs an executor and team.model")
        options = style_options(settings.preset_style, max_rounds=settings.max_rounds)
        return planner_coder_reviewer(
            models[settings.model],
            executor,
            extra_termination=termination,
            max_tokens=settings.max_tokens,
            **options,
        )
    agents = [_agent(a, models, executor, input_func, tools) for a in spec.agents]
    if settings.type == "round_robin":
        return RoundRobinGroupChat(
            agents, termination_condition=termination, max_turns=settings.max_turns
        )
    if settings.type == "swarm":
        return Swarm(agents, termination_condition=termination, max_turns=settings.max_turns)
    if settings.model is None:
        raise SpecError("a selector team needs team.model")
    return SelectorGroupChat(
        agents,
        models[settings.model],
        termination_condition=termination,
        max_turns=settings.max_turns,
        allow_repeated_speaker=settings.allow_repeated_speaker,
        max_selector_attempts=settings.max_selector_attempts,
    )


def termination_from_spec(
    spec: ConditionSpec | TerminationSpec | None,
) -> TerminationCondition | None:
    """The live condition of either termination form (None: the spec sets none)."""
    tree = spec.as_condition() if isinstance(spec, TerminationSpec) else spec
    return condition_from_spec(tree) if tree is not None else None


def _agent(
    spec: AssistantSpec | CodeExecutorSpec | UserProxySpec,
    models: Mapping[str, OpenAIModelClient],
    executor: RemoteExecutor | None,
    input_func: InputFunc,
    tools: ToolRegistry | None,
) -> BaseChatAgent:
    if isinstance(spec, AssistantSpec):
        return AssistantAgent(
            spec.name,
            models[spec.model],
            tools=[_tool(name, tools) for name in spec.tools],
            handoffs=spec.handoffs,
            description=spec.description,
            system_message=spec.system_message,
            reflect_on_tool_use=spec.reflect_on_tool_use,
            max_tool_iterations=spec.max_tool_iterations,
            tool_choice=spec.tool_choice,
            max_context_messages=spec.max_context_messages,
            max_tokens=spec.max_tokens,
        )
    if isinstance(spec, CodeExecutorSpec):
        if executor is None:
            raise SpecError(f"{spec.name} needs an executor")
        return CodeExecutorAgent(
            spec.name,
            executor,
            description=spec.description,
            languages=spec.languages,
            sources=spec.sources,
        )
    return UserProxyAgent(spec.name, input_func, description=spec.description)


def _tool(name: str, registry: ToolRegistry | None) -> Callable[..., Any]:
    if registry is None:
        return import_tool(name)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise SpecError(f"tool {name!r} is not registered (registered: {known})")
    return registry[name]


def import_tool(path: str) -> Callable[..., Any]:
    """The function at ``module:function`` (or ``module.function``)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise SpecError(f"tool {path!r} is not 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import tool module {module_name!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise SpecError(f"{path!r} is not a function")
    return func  # type: ignore[no-any-return]


def _secret(env: Mapping[str, str], name: str | None, what: str) -> str:
    if name is None:
        return "none"
    value = env.get(name)
    if not value:
        raise SpecError(f"{what}: environment variable {name} is not set")
    return value


def _model_client(spec: ModelSpec, env: Mapping[str, str]) -> OpenAIModelClient:
    return OpenAIModelClient(
        model=spec.model,
        base_url=spec.base_url,
        api_key=_secret(env, spec.api_key_env, f"model {spec.model}"),
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
    )
