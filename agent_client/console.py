"""Rendering a team run in the terminal with rich: speaker, code, results, tokens, timing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from agent_client.messages import (
    AnyMessage,
    CodeExecutionEvent,
    CodeGenerationEvent,
    HandoffMessage,
    RequestUsage,
    SelectSpeakerEvent,
    StopMessage,
    TaskResult,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)


async def console(
    stream: AsyncIterator[AnyMessage | TaskResult],
    *,
    output: Console | None = None,
    show_events: bool = True,
) -> TaskResult:
    """Print each item of a ``run_stream`` as it arrives and return the final TaskResult.

    Args:
        output: where to print (default: a new rich Console on stdout).
        show_events: also print tool calls, code found and speaker choices.
    """
    out = output or Console()
    started = last = time.monotonic()
    usage = RequestUsage()
    async for item in stream:
        now = time.monotonic()
        if isinstance(item, TaskResult):
            total = usage.prompt_tokens + usage.completion_tokens
            out.rule(
                Text(
                    f"stopped: {item.stop_reason or 'no reason'} · {len(item.messages)} "
                    f"messages · {total} tokens ({usage.prompt_tokens} prompt, "
                    f"{usage.completion_tokens} completion) · {now - started:.1f}s"
                )
            )
            return item
        if item.models_usage is not None:
            usage = usage + item.models_usage
        if not show_events and isinstance(
            item,
            ToolCallRequestEvent
            | ToolCallExecutionEvent
            | CodeGenerationEvent
            | SelectSpeakerEvent,
        ):
            last = now
            continue
        out.print(_render(item, now - last))
        last = now
    raise RuntimeError("the stream ended without a TaskResult")


def _render(item: AnyMessage, elapsed_s: float) -> RenderableType:
    tokens = ""
    if item.models_usage is not None:
        tokens = f" · {item.models_usage.prompt_tokens}+{item.models_usage.completion_tokens} tok"
    title = Text(f"{item.source} · {item.type} · +{elapsed_s:.1f}s{tokens}")
    if isinstance(item, SelectSpeakerEvent):
        note = " (fallback to order)" if item.fallback else ""
        return Text(f"→ next: {item.content}{note}", style="dim")
    if isinstance(item, CodeExecutionEvent):
        style = "green" if item.succeeded else "red"
        parts: list[RenderableType] = []
        if item.note:
            parts.append(Text(item.note, style="yellow"))
        parts.append(Text(f"exit code {item.exit_code}", style=f"bold {style}"))
        parts.append(Text(item.output or "(no output)"))
        return Panel(Group(*parts), title=title, border_style=style)
    if isinstance(item, CodeGenerationEvent):
        blocks = [Syntax(b.code, b.language, line_numbers=False) for b in item.code_blocks]
        return Panel(Group(*blocks), title=Text(f"{title} · code by {item.author}"), style="dim")
    if isinstance(item, ToolCallRequestEvent | ToolCallExecutionEvent):
        return Panel(Text(item.to_text()), title=title, border_style="cyan")
    if isinstance(item, HandoffMessage):
        body: RenderableType = Text(f"{item.content}\n→ handoff to {item.target}")
        return Panel(body, title=title, border_style="magenta")
    if isinstance(item, StopMessage):
        return Panel(Text(item.content), title=title, border_style="yellow")
    # Markdown renders fenced code with highlighting and never interprets rich markup.
    return Panel(Markdown(item.to_text() or "(empty)"), title=title, border_style="blue")
