"""How an agent's view of the thread becomes model messages: labelled, short, task in view.

Chat templates drop the ``name`` field, so a model cannot tell the reviewer from the executor
unless the text says it: every turn from someone else starts with ``[speaker]:``.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_client.messages import ChatMessage
from agent_client.models.base import AssistantMessage, LLMMessage, SystemMessage, UserMessage


def model_messages(
    thread: Sequence[ChatMessage],
    *,
    own_name: str,
    system_message: str | None,
    max_messages: int | None = None,
    label_speakers: bool = True,
) -> list[LLMMessage]:
    """The model's view of ``thread``.

    Args:
        max_messages: keep only the newest this many (the task message is always kept first,
            so every role still sees what the team is for).
        label_speakers: prefix others' turns with ``[name]:``.
    """
    kept = list(thread)
    if max_messages is not None and len(kept) > max_messages:
        tasks = [m for m in kept if m.is_task][:1]
        tail = kept[-max_messages:] if max_messages else []
        kept = [t for t in tasks if t not in tail] + tail
    out: list[LLMMessage] = []
    if system_message:
        out.append(SystemMessage(content=system_message))
    for message in kept:
        text = message.to_text()
        if message.source == own_name:
            out.append(AssistantMessage(content=text, source=own_name))
        else:
            content = f"[{message.source}]: {text}" if label_speakers else text
            out.append(UserMessage(content=content, source=message.source))
    return out
