"""Agents: the base contract, a model-backed assistant, a code runner and a human proxy."""

from agent_client.agents.assistant import AssistantAgent, Handoff
from agent_client.agents.base import BaseChatAgent, Response
from agent_client.agents.code_executor import CodeExecutorAgent
from agent_client.agents.user_proxy import UserProxyAgent

__all__ = [
    "AssistantAgent",
    "BaseChatAgent",
    "CodeExecutorAgent",
    "Handoff",
    "Response",
    "UserProxyAgent",
]
