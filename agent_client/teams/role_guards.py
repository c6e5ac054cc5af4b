"""Checks that keep each preset role in its lane: what is re-asked once, and what is repaired.

Measured on a small model: the planner wrote code in 12 of 13 plans (the coder then built on
it), 7 of 18 reviewer turns were a bare "REVISION", and reviewers rewrote code the coder then
copied without its imports. Each check returns the instruction to re-ask with; each repair is
what a second failure is turned into.
"""

from __future__ import annotations

import re

from agent_client.teams.verification import parse_tests

_FENCE_OPEN = re.compile(r"^`{3,}", re.MULTILINE)
_CLOSED_BLOCK = re.compile(r"^(`{3,})[^\n]*\n.*?^\1`*[ \t]*$", re.DOTALL | re.MULTILINE)
_REJECTION = re.compile(r"^[\W_]*(REVISE|REVISION|REJECT)\w*[\W_]*", re.IGNORECASE)
# Fewer words than this after the verdict is not a reason the coder can act on.
MIN_REASON_WORDS = 3
NO_REASON_NOTE = (
    "(The reviewer rejected without giving a reason; the rejection is ignored. Use the test "
    "output above.)"
)


def has_code(text: str) -> bool:
    return _FENCE_OPEN.search(text) is not None


def strip_code(text: str) -> str:
    """The text without fenced blocks, closed or cut off."""
    text = _CLOSED_BLOCK.sub("", text)
    match = _FENCE_OPEN.search(text)
    return (text[: match.start()] if match else text).strip()


def plan_check(text: str) -> str | None:
    if has_code(text):
        return "Rewrite the plan as short numbered steps in words only: no code at all."
    return None


def tests_check(text: str) -> str | None:
    if parse_tests(text) is None:
        return (
            "Write the tests as assert statements that call the function, in one ```python "
            "block, using the expected values the task states. Do not implement the function."
        )
    return None


def rejection_reason(text: str) -> str | None:
    """The reason after a rejection verdict; None if ``text`` is not a rejection."""
    match = _REJECTION.match(text.strip())
    if match is None:
        return None
    return text.strip()[match.end() :].strip()


def review_check(text: str) -> str | None:
    if has_code(text):
        return "Do not write code. Give your verdict and the reasons in words only."
    reason = rejection_reason(text)
    if reason is not None and len(reason.split()) < MIN_REASON_WORDS:
        return (
            "A rejection needs reasons: say which test failed or what in the real output is "
            "wrong, quoting it, and what the coder should change (in words, no code)."
        )
    return None


def review_repair(text: str) -> str:
    """Code removed; a rejection that still gives no reason becomes a note that it is ignored."""
    text = strip_code(text)
    reason = rejection_reason(text)
    if not text or (reason is not None and len(reason.split()) < MIN_REASON_WORDS):
        return NO_REASON_NOTE
    return text
