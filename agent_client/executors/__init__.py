"""Code executors: where an agent's code runs (the remote sandbox) and a scripted one for tests."""

from agent_client.executors.base import CodeExecutor, CodeResult
from agent_client.executors.remote import RemoteExecutor
from agent_client.executors.scripted import ScriptedExecutor

__all__ = ["CodeExecutor", "CodeResult", "RemoteExecutor", "ScriptedExecutor"]
