"""Policies load closed and fail closed, naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_service.errors import ConfigError, InvalidRequest, LimitAboveCeiling
from executor_service.policy.loader import load_policies, load_policy
from executor_service.policy.model import Destination
from executor_service.sandbox.catalogue import Catalogue, load_catalogue
from executor_service.sandbox.spec import GVISOR_MIN_PIDS, LimitsOverride

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue(ROOT / "sandbox_images")


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


GOOD = """schema_version: 1
name: ok
languages: {python: python}
limits: {wall_time_s: 5, memory_mb: 128}
"""


def test_shipped_policies_load(catalogue: Catalogue) -> None:
    policies = load_policies(ROOT / "policies", catalogue)
    assert set(policies) == {
        "default",
        "strict",
        "data-readonly",
        "strict-gvisor",
        "pypi",
        "github-api",
    }
    assert policies["strict"].limits.memory_mb < policies["default"].limits.memory_mb
    assert policies["strict-gvisor"].runtime == "runsc"
    assert policies["strict-gvisor"].limits.pids >= GVISOR_MIN_PIDS
    open_ones = {name for name, policy in policies.items() if policy.network.mode != "none"}
    assert open_ones == {"pypi", "github-api"}
    pypi = policies["pypi"].network.grant()
    assert pypi is not None
    assert sorted(str(rule) for rule in pypi.rules) == [
        "files.pythonhosted.org:443",
        "pypi.org:443",
    ]


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "ok", GOOD.replace("limits:", "limits_typo: 1\nlimits:"))
    with pytest.raises(ConfigError, match=r"ok\.yaml: field limits_typo"):
        load_policy(path)


def test_a_limit_beyond_the_hard_bound_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "ok", GOOD.replace("memory_mb: 128", "memory_mb: 99999999"))
    with pytest.raises(ConfigError, match=r"field limits\.memory_mb"):
        load_policy(path)


def test_network_modes_other_than_none_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "ok", GOOD + "network: {mode: host}\n")
    with pytest.raises(ConfigError, match=r"field network\.mode"):
        load_policy(path)


@pytest.mark.parametrize("target", ["/", "/workspace", "/etc/x", "relative", "/data/../etc"])
def test_mounts_may_not_cover_system_paths(tmp_path: Path, target: str) -> None:
    body = GOOD + f"mounts: [{{host_path: /srv/x, sandbox_path: '{target}'}}]\n"
    with pytest.raises(ConfigError, match="mounts"):
        load_policy(write(tmp_path, "ok", body))


@pytest.mark.parametrize(
    "source",
    ["/", "/var", "/run", "/var/run/docker", "/proc/1", "/var/lib/docker/volumes", "/root/.ssh"],
)
def test_a_mount_may_not_show_the_hosts_own_state(tmp_path: Path, source: str) -> None:
    """The engine's socket (under /run), its state, kernel interfaces: any is the host."""
    body = GOOD + f"mounts: [{{host_path: '{source}', sandbox_path: /data}}]\n"
    with pytest.raises(ConfigError, match=r"mounts\.0\.host_path"):
        load_policy(write(tmp_path, "ok", body))


@pytest.mark.parametrize("source", ["/srv/agent-sandbox/data", "/etc/ssl/certs", "/home/data"])
def test_a_data_mount_elsewhere_loads(tmp_path: Path, source: str) -> None:
    body = GOOD + f"mounts: [{{host_path: '{source}', sandbox_path: /data}}]\n"
    assert load_policy(write(tmp_path, "ok", body)).mounts[0].host_path == source


def test_a_language_its_image_cannot_run_is_refused(tmp_path: Path, catalogue: Catalogue) -> None:
    write(tmp_path, "ok", GOOD.replace("{python: python}", "{python: shell}"))
    with pytest.raises(ConfigError, match=r"languages\.python"):
        load_policies(tmp_path, catalogue)


def test_name_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name"):
        load_policy(write(tmp_path, "other", GOOD))


def test_a_request_may_tighten_but_never_loosen(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "ok", GOOD))
    tighter = policy.effective_limits(LimitsOverride(wall_time_s=1, memory_mb=64))
    assert (tighter.wall_time_s, tighter.memory_mb) == (1, 64)
    assert tighter.pids == policy.limits.pids
    with pytest.raises(LimitAboveCeiling) as caught:
        policy.effective_limits(LimitsOverride(memory_mb=129))
    assert caught.value.field == "limits.memory_mb"


@pytest.mark.parametrize(("name", "value"), [("memory_mb", 1), ("pids", 1), ("output_bytes", 1)])
def test_a_request_may_not_go_below_a_limits_floor(tmp_path: Path, name: str, value: int) -> None:
    """Lower is tighter, but not below what a sandbox needs to start and answer at all."""
    policy = load_policy(write(tmp_path, "ok", GOOD))
    with pytest.raises(InvalidRequest) as caught:
        policy.effective_limits(LimitsOverride.model_validate({name: value}))
    assert caught.value.field == f"limits.{name}"
    assert "too small" in str(caught.value)


@pytest.mark.parametrize("address", ["203.0.113.7", "10.0.0.1"])
def test_an_allowlisted_host_may_not_be_an_address(address: str) -> None:
    with pytest.raises(ValueError, match="is an address: give it as cidr"):
        Destination(host=address, ports=[443])
    assert Destination(host="pypi.org", ports=[443]).host == "pypi.org"


def test_a_runsc_policy_needs_room_for_gvisors_threads(tmp_path: Path) -> None:
    body = GOOD.replace("memory_mb: 128}", "memory_mb: 128, pids: 64}") + "runtime: runsc\n"
    with pytest.raises(ConfigError, match=r"ok\.yaml: field runtime: .*limits\.pids .*128.*not 64"):
        load_policy(write(tmp_path, "ok", body))
    # The same limits under runc are fine, and runsc with 128 is.
    assert load_policy(write(tmp_path, "ok", body.replace("runsc", "runc"))).limits.pids == 64
    policy = load_policy(write(tmp_path, "ok", body.replace("pids: 64", "pids: 200")))
    assert policy.runtime == "runsc"
    # A request may not tighten below the floor either: the sandbox could not start.
    assert policy.effective_limits(LimitsOverride(pids=128)).pids == 128
    with pytest.raises(InvalidRequest) as caught:
        policy.effective_limits(LimitsOverride(pids=64))
    assert caught.value.field == "limits.pids"
