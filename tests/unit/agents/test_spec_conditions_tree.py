"""Termination trees in specs: nesting with and/or, the first (flat OR) form still loading, and
conditions written back to the spec they came from."""

from __future__ import annotations

import pytest

from agent_client.conditions import (
    ExternalTermination,
    MaxMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
    condition_from_spec,
)
from agent_client.errors import SpecError
from agent_client.messages import TextMessage
from agent_client.spec import AnyOfCondition, TeamSpec, TerminationSpec
from agent_client.team_builder import termination_from_spec

BASE = {
    "models": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}},
    "agents": [{"type": "assistant", "name": "analyst", "model": "m"}],
    "team": {"type": "round_robin"},
}
# DONE from the analyst once at least 4 messages were seen, or 20 messages whatever is said.
NESTED = {
    "type": "or",
    "conditions": [
        {
            "type": "and",
            "conditions": [
                {"type": "text_mention", "text": "DONE", "sources": ["analyst"]},
                {"type": "max_messages", "max_messages": 4},
            ],
        },
        {"type": "max_messages", "max_messages": 20},
    ],
}


def said(content: str) -> TextMessage:
    return TextMessage(source="analyst", content=content)


async def test_nested_and_inside_or_waits_for_both_parts() -> None:
    spec = TeamSpec.model_validate({**BASE, "termination": NESTED})
    condition = termination_from_spec(spec.termination)
    assert condition is not None
    task = TextMessage(source="user", content="go", metadata={"role": "task"})
    assert await condition([task]) is None
    assert await condition([said("DONE already?")]) is None  # DONE, but only 2 messages
    assert await condition([said("working")]) is None
    stop = await condition([said("still working")])  # 4th message: both parts have fired
    assert stop is not None
    assert "DONE" in stop.content
    assert "4" in stop.content


async def test_or_of_a_plain_limit_fires_alone() -> None:
    spec = TeamSpec.model_validate(
        {
            **BASE,
            "termination": {
                "type": "or",
                "conditions": [
                    {"type": "max_messages", "max_messages": 2},
                    {"type": "text_mention", "text": "never"},
                ],
            },
        }
    )
    condition = termination_from_spec(spec.termination)
    assert condition is not None
    assert await condition([said("one")]) is None
    assert await condition([said("two")]) is not None


def test_first_form_still_loads_and_reads_as_an_or() -> None:
    spec = TeamSpec.model_validate(
        {**BASE, "termination": {"max_messages": 6, "text_mention": "DONE"}}
    )
    assert isinstance(spec.termination, TerminationSpec)
    tree = spec.stop_condition
    assert isinstance(tree, AnyOfCondition)
    assert [c.type for c in tree.conditions] == ["max_messages", "text_mention"]


def test_conditions_written_back_equal_the_spec_they_came_from() -> None:
    tree = TeamSpec.model_validate({**BASE, "termination": NESTED}).stop_condition
    assert tree is not None
    assert condition_from_spec(tree).to_spec() == tree


def test_operators_build_the_same_tree_as_the_spec() -> None:
    built = (TextMentionTermination("DONE", sources=["analyst"]) & MaxMessageTermination(4)) | (
        MaxMessageTermination(20)
    )
    assert built.to_spec() == TeamSpec.model_validate({**BASE, "termination": NESTED}).termination
    chained = MaxMessageTermination(1) | TimeoutTermination(2) | MaxMessageTermination(3)
    flat = chained.to_spec()
    assert isinstance(flat, AnyOfCondition)
    assert len(flat.conditions) == 3  # (a | b) | c is written as one list


def test_a_condition_with_no_spec_form_says_so() -> None:
    with pytest.raises(SpecError, match="ExternalTermination"):
        (MaxMessageTermination(3) | ExternalTermination()).to_spec()


@pytest.mark.parametrize(
    "termination",
    [
        {"type": "and", "conditions": [{"type": "max_messages", "max_messages": 2}]},
        {"type": "token_usage"},
        {"type": "or", "conditions": [{"type": "timeout", "timeout_s": 0}, {"type": "or"}]},
    ],
)
def test_malformed_trees_are_refused(termination: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="termination"):
        TeamSpec.model_validate({**BASE, "termination": termination})
