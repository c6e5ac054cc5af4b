"""A cell in an interpreter session against a run in a plain session: same code, same runner.

    uv run python bench/interpreter_latency.py [--rounds 30] [--code "print(1)"]

Both sessions are prepared first (not timed); the first run of each (the launcher's exec, the
kernel's start) is reported on its own, then the median and the 90th percentile of the later
ones, as `DockerRunner.run` returns (the service's queue and HTTP are not in it: they add the
same to both). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

from executor_service.sandbox.docker_runner import create_runner
from executor_service.sandbox.spec import Limits, Program, SandboxConfig
from executor_service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--code", default="print(1)")
    parser.add_argument("--image", default="agent-sandbox/python:1")
    args = parser.parse_args()
    runner = create_runner(Settings())
    config = SandboxConfig(image=args.image, limits=Limits(wall_time_s=30), ready_python=True)
    programs = {
        "plain": Program(argv=("python", "main.py"), files={"main.py": args.code.encode()}),
        "interpreter": Program(argv=("cell",), cell=args.code),
    }
    for name, program in programs.items():
        sandbox = runner.prepare(config, single_use=False, lifetime_s=600)
        try:
            times = []
            for _ in range(args.rounds + 1):
                started = time.perf_counter()
                result = runner.run(sandbox, program)
                times.append(time.perf_counter() - started)
                if result.status != "ok":
                    raise SystemExit(f"{name}: {result.status} {result.message} {result.stderr}")
            first, rest = times[0], sorted(times[1:])
            p90 = rest[int(len(rest) * 0.9) - 1] if rest else float("nan")
            median = statistics.median(rest)
            print(
                f"{name:12} first {first * 1000:7.1f} ms   median {median * 1000:6.1f} ms"
                f"   p90 {p90 * 1000:6.1f} ms   ({args.rounds} runs)"
            )
        finally:
            runner.destroy(sandbox.id)
    runner.close()


if __name__ == "__main__":
    main()
