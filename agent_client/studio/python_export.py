"""A spec written out as a Python program that builds and runs the same team with the library.

The program reads each key from the environment variable the spec names (never a value), so
exporting never leaks a secret; tools are imported from the module the registry found them in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent_client.spec import (
    AllOfCondition,
    AssistantSpec,
    CodeExecutorSpec,
    ConditionSpec,
    HandoffCondition,
    MaxMessagesCondition,
    TeamSpec,
    TextMentionCondition,
    TimeoutCondition,
    TokenUsageCondition,
)


def python_code(spec: TeamSpec, tools: Mapping[str, Callable[..., Any]] | None = None) -> str:
    """The program's text: ``termination()`` and ``build_team(models, executor, input_func)``
    give the team itself, ``main(task)`` runs it with the spec's endpoints."""
    tools = tools or {}
    lines = [
        '"""A team exported from agent-client studio: python team.py "the task"."""',
        "",
        "import asyncio",
        "import os",
        "import sys",
        "",
        "from agent_client.agents import AssistantAgent, CodeExecutorAgent, UserProxyAgent",
        "from agent_client.conditions import (",
        "    AndTermination,",
        "    HandoffTermination,",
        "    MaxMessageTermination,",
        "    OrTermination,",
        "    TextMentionTermination,",
        "    TimeoutTermination,",
        "    TokenUsageTermination,",
        ")",
        "from agent_client.console import console",
        "from agent_client.executors import RemoteExecutor",
        "from agent_client.models import OpenAIModelClient",
        "from agent_client.service import ExecutionClient, LimitsOverride",
        "from agent_client.teams import (",
        "    RoundRobinGroupChat,",
        "    SelectorGroupChat,",
        "    Swarm,",
        "    planner_coder_reviewer,",
        "    style_options,",
        ")",
    ]
    used = sorted({t for a in spec.agents if isinstance(a, AssistantSpec) for t in a.tools})
    for name in used:
        func = tools.get(name)
        module = getattr(func, "__module__", None) if func else None
        if module:
            attr = getattr(func, "__name__", name)
            lines.append(f"from {module} import {attr} as {_ident(name)}")
        else:
            module_name, _, attr = name.partition(":")
            lines.append(f"from {module_name} import {attr or name} as {_ident(name)}")
    lines += ["", "", "def termination():", f"    return {_condition(spec.stop_condition)}"]
    lines += ["", "", "def build_team(models, executor, input_func=input):"]
    lines += _team_lines(spec)
    lines += ["", "", "async def main(task):", "    models = {"]
    for key, model in spec.models.items():
        api_key = f"os.environ[{model.api_key_env!r}]" if model.api_key_env else "'none'"
        lines.append(
            f"        {key!r}: OpenAIModelClient(model={model.model!r}, "
            f"base_url={model.base_url!r}, api_key={api_key}, timeout_s={model.timeout_s!r}, "
            f"max_retries={model.max_retries!r}, temperature={model.temperature!r}),"
        )
    lines.append("    }")
    lines.append("    try:")
    ex = spec.executor
    if ex is None:
        lines.append("        await console(build_team(models, None).run_stream(task))")
    else:
        lines += [
            "        async with (",
            f"            ExecutionClient({ex.service_url!r}, "
            f"os.environ[{ex.api_key_env!r}]) as client,",
            f"            RemoteExecutor(client, policy={ex.policy!r}, limits=LimitsOverride("
            f"wall_time_s={ex.wall_time_s!r}, memory_mb={ex.memory_mb!r}), "
            f"collect={ex.collect!r}) as executor,",
            "        ):",
            "            await console(build_team(models, executor).run_stream(task))",
        ]
    lines += [
        "    finally:",
        "        for model in models.values():",
        "            await model.close()",
        "",
        "",
        'if __name__ == "__main__":',
        "    asyncio.run(main(sys.argv[1]))",
        "",
    ]
    return "\n".join(lines)


def _team_lines(spec: TeamSpec) -> list[str]:
    team = spec.team
    if team.type == "planner_coder_reviewer":
        return [
            f"    options = style_options({team.preset_style!r}, max_rounds={team.max_rounds!r})",
            "    return planner_coder_reviewer(",
            f"        models[{team.model!r}], executor, max_tokens={team.max_tokens!r},",
            "        extra_termination=termination(), **options,",
            "    )",
        ]
    lines = ["    agents = ["]
    for agent in spec.agents:
        if isinstance(agent, AssistantSpec):
            lines.append(
                f"        AssistantAgent({agent.name!r}, models[{agent.model!r}], "
                f"tools=[{', '.join(_ident(t) for t in agent.tools)}], "
                f"handoffs={agent.handoffs!r}, description={agent.description!r}, "
                f"system_message={agent.system_message!r}, "
                f"reflect_on_tool_use={agent.reflect_on_tool_use!r}, "
                f"max_tool_iterations={agent.max_tool_iterations!r}, "
                f"tool_choice={agent.tool_choice!r}, "
                f"max_context_messages={agent.max_context_messages!r}),"
            )
        elif isinstance(agent, CodeExecutorSpec):
            lines.append(
                f"        CodeExecutorAgent({agent.name!r}, executor, "
                f"description={agent.description!r}, languages={agent.languages!r}, "
                f"sources={agent.sources!r}),"
            )
        else:
            lines.append(
                f"        UserProxyAgent({agent.name!r}, input_func, "
                f"description={agent.description!r}),"
            )
    lines.append("    ]")
    common = f"termination_condition=termination(), max_turns={team.max_turns!r}"
    if team.type == "round_robin":
        lines.append(f"    return RoundRobinGroupChat(agents, {common})")
    elif team.type == "swarm":
        lines.append(f"    return Swarm(agents, {common})")
    else:
        lines.append(
            f"    return SelectorGroupChat(agents, models[{team.model!r}], {common}, "
            f"allow_repeated_speaker={team.allow_repeated_speaker!r}, "
            f"max_selector_attempts={team.max_selector_attempts!r})"
        )
    return lines


def _condition(spec: ConditionSpec | None) -> str:
    if spec is None:
        return "None"
    if isinstance(spec, MaxMessagesCondition):
        return f"MaxMessageTermination({spec.max_messages!r})"
    if isinstance(spec, TextMentionCondition):
        return f"TextMentionTermination({spec.text!r}, sources={spec.sources!r})"
    if isinstance(spec, HandoffCondition):
        return f"HandoffTermination({spec.target!r})"
    if isinstance(spec, TimeoutCondition):
        return f"TimeoutTermination({spec.timeout_s!r})"
    if isinstance(spec, TokenUsageCondition):
        return (
            f"TokenUsageTermination(max_total_token={spec.max_total_tokens!r}, "
            f"max_prompt_token={spec.max_prompt_tokens!r}, "
            f"max_completion_token={spec.max_completion_tokens!r})"
        )
    kind = "AndTermination" if isinstance(spec, AllOfCondition) else "OrTermination"
    return f"{kind}({', '.join(_condition(part) for part in spec.conditions)})"


def _ident(tool: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in tool)
