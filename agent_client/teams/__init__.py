"""Teams: round-robin, model-selected and handoff-driven group chats, and a ready preset."""

from agent_client.teams.base import BaseGroupChat
from agent_client.teams.planner_coder_reviewer import (
    STYLES,
    RolePrompts,
    VerifiedApprovalTermination,
    planner_coder_reviewer,
    style_options,
)
from agent_client.teams.round_robin import RoundRobinGroupChat
from agent_client.teams.selector import SelectorGroupChat
from agent_client.teams.swarm import Swarm

__all__ = [
    "STYLES",
    "BaseGroupChat",
    "RolePrompts",
    "RoundRobinGroupChat",
    "SelectorGroupChat",
    "Swarm",
    "VerifiedApprovalTermination",
    "planner_coder_reviewer",
    "style_options",
]
