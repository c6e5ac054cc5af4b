"""Model clients: the protocol agents call, an OpenAI-compatible one and a scripted one."""

from agent_client.models.base import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    ModelClient,
    SystemMessage,
    ToolChoice,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from agent_client.models.openai_client import OpenAIModelClient
from agent_client.models.scripted import ScriptedModelClient

__all__ = [
    "AssistantMessage",
    "CreateResult",
    "LLMMessage",
    "ModelClient",
    "OpenAIModelClient",
    "ScriptedModelClient",
    "SystemMessage",
    "ToolChoice",
    "ToolResultMessage",
    "ToolSchema",
    "UserMessage",
]
