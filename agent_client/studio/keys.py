"""Which saved keys a run may use: each key only with the endpoint it was saved for.

A spec is data a page can import; without this check an imported spec could point a model at
any URL with ``api_key_env`` naming the sandbox key and send that key away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent_client.spec import TeamSpec
from agent_client.studio.errors import UnboundKey
from agent_client.studio.store import Endpoint


def bound_keys(
    spec: TeamSpec, endpoints: Sequence[Endpoint], secrets: Mapping[str, str]
) -> dict[str, str]:
    """The keys ``spec`` needs, each checked against its endpoint's URL (and kind).

    Raises:
        UnboundKey: a key name is unknown, has no saved key, or belongs to another endpoint.
    """
    by_key = {e.key_name: e for e in endpoints}
    env: dict[str, str] = {}

    def bind(name: str, url: str, kind: str, where: str) -> None:
        endpoint = by_key.get(name)
        if endpoint is None or name not in secrets:
            saved = ", ".join(sorted(k for k in by_key if k in secrets)) or "none yet"
            raise UnboundKey(
                f"{where}: no key named {name} is saved in the studio (saved: {saved}); "
                "add the endpoint with its key under Connections and pick it in the form"
            )
        if endpoint.kind != kind or _same(endpoint.base_url) != _same(url):
            raise UnboundKey(
                f"{where}: key {name} was saved for {endpoint.kind} endpoint "
                f"{endpoint.base_url}, not {url}; keys are only sent where they were saved for"
            )
        env[name] = secrets[name]

    for key, model in spec.models.items():
        if model.api_key_env is not None:
            bind(model.api_key_env, model.base_url, "model", f"models.{key}.api_key_env")
    if spec.executor is not None:
        bind(spec.executor.api_key_env, spec.executor.service_url, "sandbox", "executor")
    return env


def _same(url: str) -> str:
    return url.strip().rstrip("/").lower()
