"""The README's shell and Python blocks, each with the check marked on the line before it.

A block is marked `<!-- readme-check: run; expect: TEXT; ... -->` (run it against a live service;
each TEXT must appear in what it prints) or `<!-- readme-check: skip; REASON -->` (it needs a
model server, the internet, or minutes). A `sh` or `python` block without a mark is an error, so
a new example cannot slip past the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"
CHECKED_LANGUAGES = frozenset({"sh", "python"})
_MARK = re.compile(r"^<!-- readme-check: (?P<body>.*) -->$")
_OPEN = re.compile(r"^```(?P<language>\w*)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # of the opening fence, 1-based
    run: bool
    expect: tuple[str, ...]
    reason: str  # why a skipped block is skipped

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks(path: Path = README) -> list[Block]:
    """Every `sh` and `python` block, in order; ValueError for one without a valid mark."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opened = _OPEN.match(lines[index])
        if opened is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        language = opened["language"]
        if language in CHECKED_LANGUAGES:
            code = "\n".join(lines[index + 1 : end]) + "\n"
            mark = _MARK.match(lines[index - 1]) if index else None
            blocks.append(_block(language, code, index + 1, mark))
        index = end + 1
    return blocks


def _block(language: str, code: str, line: int, mark: re.Match[str] | None) -> Block:
    if mark is None:
        raise ValueError(f"README.md:{line}: mark this {language} block (see {__name__})")
    verb, *rest = [part.strip() for part in mark["body"].split(";")]
    if verb == "skip" and rest:
        return Block(language, code, line, run=False, expect=(), reason="; ".join(rest))
    if verb == "run" and all(part.startswith("expect: ") for part in rest):
        expect = tuple(part.removeprefix("expect: ") for part in rest)
        return Block(language, code, line, run=True, expect=expect, reason="")
    raise ValueError(f"README.md:{line}: a mark is 'run[; expect: TEXT]...' or 'skip; REASON'")
