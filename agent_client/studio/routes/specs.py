"""Specs: validate (JSON or YAML, problems by field), convert between views, gallery, exports."""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from agent_client.spec import SpecProblem, TeamSpec, spec_problems, team_spec_schema
from agent_client.studio.deps import Tools
from agent_client.studio.errors import InvalidSpec
from agent_client.studio.gallery import GalleryEntry, gallery
from agent_client.studio.python_export import python_code

router = APIRouter(prefix="/api")


class SpecText(BaseModel):
    """A spec as the page holds it: an object (the form) or text (the JSON/YAML view)."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] | None = None
    text: str | None = None
    format: Literal["json", "yaml"] = "json"


class Checked(BaseModel):
    """A spec checked: its problems by field, and both text views of what was parsed."""

    valid: bool
    problems: list[SpecProblem]
    spec: Any
    json_text: str
    yaml_text: str


class Info(BaseModel):
    tools: list[str]


def parse(body: SpecText) -> tuple[Any, list[SpecProblem]]:
    """The parsed document, or a problem at the root saying why the text does not parse."""
    if body.spec is not None:
        return body.spec, []
    text = body.text or ""
    try:
        raw = json.loads(text) if body.format == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        return None, [SpecProblem(path="", message=f"not valid {body.format.upper()}: {exc}")]
    if not isinstance(raw, dict):
        return None, [SpecProblem(path="", message="a spec is a mapping (object) at the top")]
    return raw, []


def checked_spec(body: SpecText) -> TeamSpec:
    """The valid spec in ``body``.

    Raises:
        InvalidSpec: with every problem at its field.
    """
    raw, problems = parse(body)
    spec, problems = spec_problems(raw) if raw is not None else (None, problems)
    if spec is None:
        raise InvalidSpec("the team spec is not valid: see problems", problems)
    return spec


@router.get("/info")
def info(tools: Tools) -> Info:
    return Info(tools=sorted(tools))


@router.get("/schema")
def schema() -> Any:
    return json.loads(team_spec_schema())


@router.get("/gallery")
def list_gallery() -> list[GalleryEntry]:
    return gallery()


@router.post("/specs/check")
def check(body: SpecText) -> Checked:
    raw, problems = parse(body)
    if raw is None:
        return Checked(valid=False, problems=problems, spec=None, json_text="", yaml_text="")
    spec, problems = spec_problems(raw)
    shown = spec.model_dump(mode="json", exclude_defaults=True) if spec else raw
    if spec is not None:
        shown = {"version": 1, **shown}
    return Checked(
        valid=spec is not None,
        problems=problems,
        spec=shown,
        json_text=json.dumps(shown, indent=2) + "\n",
        yaml_text=yaml.safe_dump(shown, sort_keys=False, allow_unicode=True),
    )


@router.post("/specs/python", response_class=PlainTextResponse)
def export_python(body: SpecText, tools: Tools) -> PlainTextResponse:
    code = python_code(checked_spec(body), tools)
    return PlainTextResponse(
        code, headers={"Content-Disposition": 'attachment; filename="team.py"'}
    )
