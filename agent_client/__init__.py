"""An async, AutoGen-style agent library whose generated code runs in the sandbox service."""

from agent_client.console import console
from agent_client.executors.remote import RemoteExecutor
from agent_client.models.openai_client import OpenAIModelClient
from agent_client.service.client import ExecutionClient
from agent_client.teams.planner_coder_reviewer import planner_coder_reviewer

__all__ = [
    "ExecutionClient",
    "OpenAIModelClient",
    "RemoteExecutor",
    "console",
    "planner_coder_reviewer",
]
