"""The project's wheel, installed outside the checkout: the base is the agent client alone, and
the `service` extra runs `executor-service` on the policies and catalogue the wheel ships.

Each venv is made with uv under the test's temporary directory, never inside the checkout, and
every command runs from there, so nothing can be imported from the source tree by accident. The
lock's versions constrain the installs: uv takes them from its cache (or PyPI on a first run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from executor_service.sandbox.catalogue import load_catalogue
from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[3]
STEP_TIMEOUT_S = 300

# Prints where the installed service finds its data and what it loads from there.
LOAD = """
import json
from executor_service.jobs.plan import Planner
from executor_service.settings import Settings
settings = Settings()
planner = Planner.load(settings)
print(json.dumps({
    "policies_dir": str(settings.policies_dir),
    "images_dir": str(settings.images_dir),
    "state_dir": str(settings.state_dir),
    "policies": sorted(planner.policies),
    "images": sorted(planner.catalogue.images),
}))
"""


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=STEP_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the checkout, and the lock's service versions as constraints."""
    if shutil.which("uv") is None:
        missing("uv is not on PATH (scripts/setup.sh installs it)")
    out = tmp_path_factory.mktemp("wheel")
    run(["uv", "build", "--wheel", "--quiet", "--out-dir", str(out / "dist")], cwd=ROOT)
    constraints = run(
        [
            "uv",
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--extra",
            "service",
            "--format",
            "requirements-txt",
            "--quiet",
        ],
        cwd=ROOT,
    )
    (out / "constraints.txt").write_text(constraints)
    return out


def install(wheel_dir: Path, name: str, extras: str = "") -> Path:
    """A new venv outside the checkout with the wheel (and `extras`) installed; its bin folder."""
    venv = wheel_dir / name
    (wheel,) = (wheel_dir / "dist").glob("*.whl")
    run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=wheel_dir)
    run(
        [
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--constraint",
            str(wheel_dir / "constraints.txt"),
            f"{wheel}{extras}",
        ],
        cwd=wheel_dir,
    )
    return venv / "bin"


def outside_env(home: Path) -> dict[str, str]:
    """The environment with no EXECUTOR_* setting and a HOME of the test's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXECUTOR_")}
    env.pop("XDG_STATE_HOME", None)
    env["HOME"] = str(home)
    return env


def test_the_service_extra_runs_on_the_data_the_wheel_ships(wheel_dir: Path) -> None:
    bin_dir = install(wheel_dir, "service-venv", "[service]")
    home = wheel_dir / "home"
    home.mkdir()
    env = outside_env(home)
    loaded = json.loads(run([str(bin_dir / "python"), "-c", LOAD], cwd=wheel_dir, env=env))

    site = Path(
        run(
            [str(bin_dir / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
            cwd=wheel_dir,
            env=env,
        ).strip()
    )
    assert Path(loaded["policies_dir"]) == site / "executor_service" / "policies"
    assert Path(loaded["images_dir"]) == site / "executor_service" / "sandbox_images"
    # Never site-packages, nor the checkout: the user's state directory.
    assert Path(loaded["state_dir"]) == home / ".local" / "state" / "agent-sandbox"
    assert loaded["policies"] == sorted(path.stem for path in (ROOT / "policies").glob("*.yaml"))
    assert loaded["images"] == sorted(load_catalogue(ROOT / "sandbox_images").images)
    for image in loaded["images"]:  # the build needs each image's folder, not just the catalogue
        assert (Path(loaded["images_dir"]) / image / "Dockerfile").is_file()

    # The command itself reads the shipped catalogue: an unknown image is refused by name,
    # before any engine is asked.
    refused = subprocess.run(
        [str(bin_dir / "executor-service"), "images", "build", "no-such-image"],
        capture_output=True,
        text=True,
        check=False,
        cwd=wheel_dir,
        env=env,
        timeout=STEP_TIMEOUT_S,
    )
    assert refused.returncode == 2, refused.stderr
    assert "unknown image 'no-such-image'; the catalogue holds: " in refused.stderr
    for image in loaded["images"]:
        assert image in refused.stderr


def test_the_base_wheel_is_the_agent_client_alone(wheel_dir: Path) -> None:
    bin_dir = install(wheel_dir, "client-venv")
    env = outside_env(wheel_dir)
    run(
        [str(bin_dir / "python"), "-c", "import agent_client, agent_client.cli"],
        cwd=wheel_dir,
        env=env,
    )
    assert run([str(bin_dir / "agent-client"), "--version"], cwd=wheel_dir, env=env).startswith(
        "agent-client "
    )
    for module in ("fastapi", "docker", "celery", "redis", "executor_service.api.app"):
        probe = subprocess.run(
            [str(bin_dir / "python"), "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=False,
            cwd=wheel_dir,
            env=env,
        )
        assert probe.returncode != 0, f"{module} is importable without the service extra"
        assert "ModuleNotFoundError" in probe.stderr

    # The service's command says what to install, in one line instead of a traceback.
    refused = subprocess.run(
        [str(bin_dir / "executor-service"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=wheel_dir,
        env=env,
    )
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "pip install 'agent-sandbox[service]'" in refused.stderr
