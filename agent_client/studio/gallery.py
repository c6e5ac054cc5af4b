"""The gallery: example teams shipped as JSON next to this module, each a valid spec."""

from __future__ import annotations

import json
from importlib import resources

from pydantic import BaseModel, ConfigDict

from agent_client.spec import TeamSpec


class GalleryEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    title: str
    description: str
    spec: TeamSpec


def gallery() -> list[GalleryEntry]:
    """Every example, by file name; an invalid file fails loudly (a test loads them all)."""
    folder = resources.files("agent_client.studio") / "gallery"
    entries = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.name.endswith(".json"):
            data = json.loads(item.read_text(encoding="utf-8"))
            entries.append(GalleryEntry.model_validate({**data, "id": item.name[: -len(".json")]}))
    return entries
