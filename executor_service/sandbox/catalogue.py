"""The image catalogue: which sandbox images exist, their versions, and how each runs a language."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from executor_service.errors import ConfigError

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguageRuntime(_Closed):
    """How one language runs: the code goes to `file` in the workspace, then `command` runs."""

    file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    command: Annotated[tuple[str, ...], Field(min_length=1)]
    version: str


class ImageSpec(_Closed):
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    description: str = ""
    languages: Annotated[dict[str, LanguageRuntime], Field(min_length=1)]


class Catalogue(_Closed):
    images: dict[Annotated[str, Field(pattern=NAME)], ImageSpec]

    def image_ref(self, prefix: str, name: str) -> str:
        """The Docker reference of a catalogued image, e.g. agent-sandbox/python:1."""
        return f"{prefix}/{name}:{self.images[name].version}"

    def runtime(self, image: str, language: str) -> LanguageRuntime | None:
        spec = self.images.get(image)
        return None if spec is None else spec.languages.get(language)


def load_catalogue(images_dir: Path) -> Catalogue:
    path = images_dir / "catalogue.yaml"
    try:
        return Catalogue.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the image catalogue: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: field {where}: {first['msg']}", field=where) from exc


def languages_by_image(catalogue: Catalogue) -> Mapping[str, tuple[str, ...]]:
    return {name: tuple(spec.languages) for name, spec in catalogue.images.items()}
