"""Time from run() to result for print(1), against baselines measured in the same run.

    uv run python bench/sandbox_latency.py [--runs 20]

Rows: our hardened run_once (prepare + exec + stats + remove); the run alone in a container
prepared beforehand (what a warm pool would give); and, as the baseline, docker-py's plain
`containers.run(..., remove=True)` of the same image with no hardening at all.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import docker

from executor_service.policy.loader import load_policies
from executor_service.sandbox.catalogue import load_catalogue
from executor_service.sandbox.docker_runner import create_runner
from executor_service.sandbox.spec import Program, SandboxConfig
from executor_service.settings import Settings


def timed(runs: int, action: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    settings = Settings()
    catalogue = load_catalogue(settings.images_dir)
    policy = load_policies(settings.policies_dir, catalogue)["default"]
    image = catalogue.image_ref(settings.image_prefix, policy.languages["python"])
    runner = create_runner(settings)
    config = SandboxConfig(image=image, limits=policy.limits)
    program = Program(argv=("python", "main.py"), files={"main.py": b"print(1)\n"})
    client = docker.from_env()

    def hardened() -> None:
        assert runner.run_once(config, program).stdout == "1\n"

    def warm() -> list[float]:
        samples = []
        for _ in range(runs):
            sandbox = runner.prepare(config)  # a pool would have done this ahead of time
            started = time.perf_counter()
            result = runner.run(sandbox, program)
            assert result.stdout == "1\n", result
            samples.append(time.perf_counter() - started)
        return samples

    def plain() -> None:
        out = client.containers.run(image, ["python", "-c", "print(1)"], remove=True)
        assert out == b"1\n"

    timed(2, hardened)  # warm the engine's caches before measuring anything
    rows = [
        ("docker-py containers.run, no hardening (baseline)", timed(runs, plain)),
        ("run_once: hardened prepare + run + remove", timed(runs, hardened)),
        ("run in a pre-started sandbox (pool path)", warm()),
    ]
    print(f"print(1), {runs} runs each, seconds")
    print(f"{'path':52} {'median':>8} {'p90':>8} {'min':>8}")
    for name, samples in rows:
        ordered = sorted(samples)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{name:52} {statistics.median(samples):8.3f} {p90:8.3f} {ordered[0]:8.3f}")


if __name__ == "__main__":
    main()
