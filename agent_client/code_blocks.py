"""Finding fenced code blocks in a message and naming their language the way executors expect."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from agent_client.messages import CodeBlock

DEFAULT_LANGUAGES: tuple[str, ...] = ("python", "py", "python3", "bash", "sh", "shell")
# Aliases a model writes -> the language the service runs.
CANONICAL_LANGUAGE: Mapping[str, str] = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
}

# A fence opens at a line start with three or more backticks and an optional info string, and
# closes with a line of at least as many backticks; nested shorter fences stay inside.
_FENCE = re.compile(
    r"^(?P<fence>`{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=fence)`*[ \t]*$",
    re.DOTALL | re.MULTILINE,
)


def extract_code_blocks(
    text: str,
    languages: Collection[str] = DEFAULT_LANGUAGES,
    *,
    default_language: str | None = None,
) -> list[CodeBlock]:
    """Blocks in ``text`` whose language is one of ``languages``, in order, with canonical names.

    Args:
        languages: accepted info-string languages (lower case), e.g. ``("python", "py")``.
        default_language: language for blocks without one; None skips them (they are often
            sample output rather than code).
    """
    accepted = {lang.lower() for lang in languages}
    blocks: list[CodeBlock] = []
    for match in _FENCE.finditer(text):
        info = match.group("info").strip().split()
        language = info[0].lower() if info else (default_language or "")
        if language not in accepted:
            continue
        code = match.group("code")
        if not code.strip():
            continue
        blocks.append(CodeBlock(code=code, language=CANONICAL_LANGUAGE.get(language, language)))
    return blocks


def choose_program(blocks: Sequence[CodeBlock]) -> int:
    """The index of the block that is the message's complete program: the longest (later wins).

    Models often put a one-line usage example before or after the real program; running every
    block in order stops at the example's failure, and running the first runs the fragment.
    """
    if not blocks:
        raise ValueError("no blocks to choose from")
    sizes = [len([line for line in b.code.splitlines() if line.strip()]) for b in blocks]
    best = max(sizes)
    return max(i for i, size in enumerate(sizes) if size == best)


def has_unclosed_fence(text: str) -> bool:
    """True when a fence opens and never closes: the reply was cut off inside its code."""
    closed = _FENCE.sub("", text)
    return re.search(r"^`{3,}", closed, re.MULTILINE) is not None
