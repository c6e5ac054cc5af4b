"""Load every policy file once at start-up and fail closed on the first bad one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from executor_service.errors import ConfigError
from executor_service.policy.model import Policy
from executor_service.sandbox.catalogue import Catalogue


def load_policy(path: Path) -> Policy:
    """Parse one YAML policy; the error names the file and the first bad field."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read policy: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: a policy must be a mapping at the top level")
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise ConfigError(f"{path}: field {where}: {first['msg']}", field=where) from exc
    if policy.name != path.stem:
        raise ConfigError(f"{path}: name {policy.name!r} must match the file name", field="name")
    return policy


def load_policies(directory: Path, catalogue: Catalogue) -> Mapping[str, Policy]:
    """All `*.yaml` policies in a directory, by name, each checked against the image catalogue."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{directory}: no policy files (*.yaml) found")
    policies = {}
    for path in files:
        policy = load_policy(path)
        for language, image in policy.languages.items():
            if catalogue.runtime(image, language) is None:
                raise ConfigError(
                    f"{path}: field languages.{language}: image {image!r} does not run {language}",
                    field=f"languages.{language}",
                )
        policies[policy.name] = policy
    return policies
