"""What egress costs: print(1) with and without an allowlist, and a 10 MB download through the
proxy against the same download over a direct route, measured in the same run.

    uv run python bench/egress.py [--runs 15] [--mb 10]

The server is a container this script starts on the engine's bridge (tests/support); the proxy is
the worker's own (`EgressGates`), allowed to reach that one private address, as the tests are.
Rows, interleaved round by round so load on the machine hits every row alike:
- print(1) in a hardened single-use sandbox with no network (the default);
- the same with an allowlist (its relay starts as the keeper, the worker opens a gate);
- the download through relay and proxy, in a sandbox with an allowlist;
- the download over a direct route: the same image on the bridge network, no proxy (baseline).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from executor_service.egress.rules import EgressGrant, EgressRule  # noqa: E402
from executor_service.policy.loader import load_policies  # noqa: E402
from executor_service.sandbox.catalogue import load_catalogue  # noqa: E402
from executor_service.sandbox.docker_runner import create_runner  # noqa: E402
from executor_service.sandbox.spec import Program, SandboxConfig  # noqa: E402
from executor_service.settings import Settings  # noqa: E402
from executor_service.worker.egress import EgressGates  # noqa: E402
from tests.support.egress_server import NAME, PORT, egress_server  # noqa: E402

DOWNLOAD = """
import sys, time, urllib.request
started = time.perf_counter()
size = len(urllib.request.urlopen(sys.argv[1], timeout=60).read())
print(size, time.perf_counter() - started)
"""


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"{statistics.median(samples):8.3f} {p90:8.3f} {ordered[0]:8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    big = args.mb * 1024 * 1024
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings()
        catalogue = load_catalogue(settings.images_dir)
        policy = load_policies(settings.policies_dir, catalogue)["default"]
        image = catalogue.image_ref(settings.image_prefix, policy.languages["python"])
        runner = create_runner(settings)
        with egress_server(client, image, Path(scratch) / "www", big_bytes=big) as server:
            gates = EgressGates(
                Settings(
                    egress_dir=Path(scratch) / "egress",
                    egress_extra_hosts={NAME: server.address},
                    egress_unsafe_test_networks=(f"{server.address}/32",),
                )
            )
            grant = EgressGrant(
                rules=(EgressRule(frozenset({PORT}), host=NAME),),
                max_connections=8,
                max_bytes=4 * big,
            )
            closed = SandboxConfig(image=image, limits=policy.limits)
            print_one = Program(argv=("python", "main.py"), files={"main.py": b"print(1)\n"})
            url = f"{server.url}/big"
            fetch = Program(argv=("python", "main.py", url), files={"main.py": DOWNLOAD.encode()})

            def with_egress(program: Program) -> tuple[float, str]:
                config = replace(closed, egress_dir=str(Path(scratch) / secrets.token_hex(6)))
                started = time.perf_counter()
                with gates.opened(config.egress_dir, grant, lambda _: None, remove_after=True):
                    result = runner.run_once(config, program)
                elapsed = time.perf_counter() - started
                assert result.status.value == "ok", result
                return elapsed, result.stdout

            def no_network() -> float:
                started = time.perf_counter()
                result = runner.run_once(closed, print_one)
                assert result.stdout == "1\n", result
                return time.perf_counter() - started

            def direct() -> str:
                direct_url = f"http://{server.address}:{PORT}/big"
                out = client.containers.run(
                    image, ["python", "-c", DOWNLOAD, direct_url], remove=True
                )
                return str(out.decode())

            rows: dict[str, list[float]] = {
                "print(1), no network (default)": [],
                "print(1), allowlist (relay + gate)": [],
                f"{args.mb} MB via relay + proxy, MB/s": [],
                f"{args.mb} MB direct on the bridge (baseline), MB/s": [],
            }
            names = list(rows)
            no_network()  # warm the engine's caches
            for _ in range(args.runs):
                rows[names[0]].append(no_network())
                rows[names[1]].append(with_egress(print_one)[0])
                size, seconds = with_egress(fetch)[1].split()
                assert int(size) == big
                rows[names[2]].append(big / float(seconds) / 1e6)
                size, seconds = direct().split()
                assert int(size) == big
                rows[names[3]].append(big / float(seconds) / 1e6)
            gates.close()
    print(f"{args.runs} interleaved rounds; seconds for print(1), MB/s for the download")
    print(f"{'row':52} {'median':>8} {'p90':>8} {'min':>8}")
    for name, samples in rows.items():
        print(f"{name:52} {summary(samples)}")


if __name__ == "__main__":
    main()
