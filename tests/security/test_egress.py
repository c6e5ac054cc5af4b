"""Egress: a sandbox reaches only what its grant names, through the proxy, under runc and gVisor.

The sandbox has no route at all; its one way out is the relay on its loopback, which leads through
a Unix socket to the worker's proxy. Every server reached here is one this module starts (see
tests/support/egress_server.py), on the engine's bridge: its private address is reachable only
because the test relaxes the always-deny list for the bridge's network, and a test shows that
without that setting the same server is denied.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from executor_service.egress.audit import EgressRecord
from executor_service.egress.rules import EgressGrant, EgressRule
from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.spec import RunResult, RunStatus
from executor_service.settings import Settings
from executor_service.worker.egress import EgressGates
from tests.conftest import SandboxFactory
from tests.support.egress_server import HELLO, NAME, PACKAGE, PORT, EgressServer, egress_server

pytestmark = pytest.mark.docker

METADATA = "169.254.169.254"


@pytest.fixture(scope="module")
def server(
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EgressServer]:
    root = tmp_path_factory.mktemp("egress-www")
    with egress_server(docker_client, built_images["python"], root) as running:
        yield running


def gates(server: EgressServer, directory: Path, *, relaxed: bool = True) -> EgressGates:
    """The worker's gates, with names for the test server, the host's bridge and the metadata
    address; `relaxed` lets private addresses of the bridge's network through (tests only)."""
    settings = Settings(
        egress_dir=directory,
        egress_extra_hosts={
            NAME: server.address,
            "gateway.test": server.gateway,
            "metadata.test": METADATA,
        },
        egress_unsafe_test_networks=(server.subnet,) if relaxed else (),
    )
    return EgressGates(settings)


def grant(server: EgressServer, **caps: int) -> EgressGrant:
    """The test server by name, plus what must stay denied even though a rule lists it."""
    return EgressGrant(
        rules=(
            EgressRule(frozenset({PORT}), host=NAME),
            EgressRule(frozenset({PORT}), host="gateway.test"),
            EgressRule(frozenset({80, PORT}), host="metadata.test"),
            EgressRule(frozenset({80, PORT}), network=ipaddress.ip_network("169.254.0.0/16")),
            EgressRule(frozenset({PORT}), network=ipaddress.ip_network(f"{server.gateway}/32")),
        ),
        max_connections=caps.get("max_connections", 32),
        max_bytes=caps.get("max_bytes", 8 * 1024 * 1024),
    )


class Egress:
    """Runs code in single-use sandboxes that may reach `grant` through the worker's proxy."""

    def __init__(
        self, runner: DockerRunner, sandboxes: SandboxFactory, gates: EgressGates, root: Path
    ) -> None:
        self.runner = runner
        self.sandboxes = sandboxes
        self.gates = gates
        self.root = root
        self.denied: list[EgressRecord] = []

    def run(
        self,
        code: str,
        grant: EgressGrant | None,
        language: str = "python",
        policy: str = "default",
    ) -> RunResult:
        config = self.sandboxes.config(language, policy)
        if grant is not None:
            config = replace(config, egress_dir=str(self.root / secrets.token_hex(8)))
        with self.gates.opened(config.egress_dir, grant, self._seen, remove_after=True) as egress:
            program = self.sandboxes.program(code, language, policy)
            result = self.runner.run_once(config, program)
        return egress.attach(result)

    def _seen(self, record: EgressRecord) -> None:
        if not record.allowed:
            self.denied.append(record)


@pytest.fixture
def egress(
    runner: DockerRunner, sandboxes: SandboxFactory, server: EgressServer, tmp_path: Path
) -> Iterator[Egress]:
    made = gates(server, tmp_path)
    yield Egress(runner, sandboxes, made, tmp_path)
    made.close()


# Fetch each URL through the proxy the environment names (urllib reads HTTP_PROXY); print a JSON
# line per URL: the status, the proxy's denial reason, and the body's first line.
FETCH = """
import json, sys, urllib.error, urllib.request
for url in sys.argv[1:] or URLS:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            print(json.dumps([url, answer.status, None, answer.read().decode().strip()]))
    except urllib.error.HTTPError as exc:
        print(json.dumps([url, exc.code, exc.headers.get('X-Egress-Denied'), exc.read().decode()]))
    except Exception as exc:  # a connection refused, reset or cut short
        print(json.dumps([url, 'error', type(exc).__name__, str(exc)]))
"""


def fetch(
    egress: Egress, urls: list[str], grant: EgressGrant | None
) -> tuple[dict[str, list[object]], RunResult]:
    result = egress.run(f"URLS = {urls!r}\n{FETCH}", grant)
    assert result.status is RunStatus.OK, result
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line[0]: line[1:] for line in lines}, result


def test_an_allowed_name_answers_over_http_and_connect(
    egress: Egress, server: EgressServer
) -> None:
    code = f"""
import http.client, os
print(os.environ['HTTP_PROXY'])
tunnel = http.client.HTTPConnection('127.0.0.1', 3128, timeout=10)
tunnel.set_tunnel({NAME!r}, {PORT})
tunnel.request('GET', '/hello')
print(tunnel.getresponse().read().decode().strip())
URLS = ['{server.url}/hello']
{FETCH}
"""
    result = egress.run(code, grant(server))
    assert result.status is RunStatus.OK, result
    proxy, tunnelled, fetched = result.stdout.splitlines()
    assert proxy == "http://127.0.0.1:3128"
    assert tunnelled == HELLO.decode().strip()
    assert json.loads(fetched)[1:] == [200, None, HELLO.decode().strip()]
    assert [(r.method, r.host, r.port, r.allowed, r.address) for r in result.egress] == [
        ("CONNECT", NAME, PORT, True, server.address),
        ("HTTP", NAME, PORT, True, server.address),
    ]
    assert all(record.bytes_received > len(HELLO) for record in result.egress)
    assert egress.denied == []


def test_a_name_or_port_not_on_the_list_gets_a_clear_403(
    egress: Egress, server: EgressServer
) -> None:
    urls = [f"http://other.test:{PORT}/", f"http://{NAME}:9/", "http://example.com/"]
    answers, result = fetch(egress, urls, grant(server))
    for url in urls:
        status, reason, body = answers[url]
        assert (status, reason) == (403, "not_allowlisted"), answers
        assert "not on this sandbox's allowlist" in str(body)
        assert f"{NAME}:{PORT}" in str(body)  # says what is allowed
    assert [(r.host, r.port, r.allowed, r.reason) for r in result.egress] == [
        ("other.test", PORT, False, "not_allowlisted"),
        (NAME, 9, False, "not_allowlisted"),
        ("example.com", 80, False, "not_allowlisted"),
    ]
    assert [r.host for r in egress.denied] == ["other.test", NAME, "example.com"]


def test_metadata_and_the_hosts_own_addresses_stay_denied_when_listed(
    egress: Egress, server: EgressServer
) -> None:
    """Each is named by a rule, and the relaxed test network even covers the host's bridge."""
    urls = [
        "http://metadata.test/latest/meta-data/",
        f"http://{METADATA}/latest/meta-data/",
        f"http://gateway.test:{PORT}/",
        f"http://{server.gateway}:{PORT}/",
    ]
    answers, result = fetch(egress, urls, grant(server))
    for url in urls:
        assert answers[url][:2] == [403, "denied_address"], answers
    assert "never reachable" in str(answers[urls[0]][2])
    assert {r.address for r in result.egress} == {METADATA, server.gateway}
    assert not any(record.allowed for record in result.egress)


def test_without_the_test_setting_the_same_server_is_denied(
    runner: DockerRunner, sandboxes: SandboxFactory, server: EgressServer, tmp_path: Path
) -> None:
    strict = gates(server, tmp_path, relaxed=False)
    try:
        answers, result = fetch(
            Egress(runner, sandboxes, strict, tmp_path), [f"{server.url}/hello"], grant(server)
        )
    finally:
        strict.close()
    assert answers[f"{server.url}/hello"][:2] == [403, "denied_address"]
    assert result.egress[0].address == server.address


def test_no_route_no_dns_only_the_proxy(egress: Egress, server: EgressServer) -> None:
    code = f"""
import socket
def attempt(name, call):
    try:
        call()
        print(name, 'worked')
    except OSError as exc:
        print(name, 'failed', type(exc).__name__)
def tcp():
    socket.create_connection(({server.address!r}, {PORT}), timeout=3)
def udp():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ({server.address!r}, {PORT}))
def dns():
    socket.getaddrinfo({NAME!r}, {PORT})
def dns_public():
    socket.getaddrinfo('example.com', 443)
for name, call in [('tcp', tcp), ('udp', udp), ('dns', dns), ('dns_public', dns_public)]:
    attempt(name, call)
print(open('/etc/resolv.conf').read().strip() or 'no resolver')
"""
    result = egress.run(code, grant(server))
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["tcp", "failed"],
        ["udp", "failed"],
        ["dns", "failed"],
        ["dns_public", "failed"],
    ], result
    assert lines[4] == "no resolver"
    assert result.egress == ()  # nothing reached the proxy


def test_the_code_cannot_kill_the_relay(egress: Egress, server: EgressServer) -> None:
    code = f"""
import os, signal
relays = [int(pid) for pid in filter(str.isdigit, os.listdir('/proc'))
          if open(f'/proc/{{pid}}/cmdline', 'rb').read().startswith(b'socat')]
print(len(relays))
for pid in relays:
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
            print('killed')
        except PermissionError:
            print('refused')
URLS = ['{server.url}/hello']
{FETCH}
"""
    result = egress.run(code, grant(server))
    lines = result.stdout.splitlines()
    assert int(lines[0]) >= 1, result
    assert set(lines[1:-1]) == {"refused"}
    assert json.loads(lines[-1])[1] == 200


def test_the_byte_cap_cuts_a_download(egress: Egress, server: EgressServer) -> None:
    cap = 64 * 1024
    answers, result = fetch(egress, [f"{server.url}/big"], grant(server, max_bytes=cap))
    assert answers[f"{server.url}/big"][:2] == ["error", "IncompleteRead"], answers
    [record] = result.egress
    assert (record.allowed, record.reason) == (True, "byte_cap")
    assert record.bytes_sent + record.bytes_received == cap


PIP = (
    f"pip install --retries 0 --timeout 10 --index-url http://{NAME}:{PORT}/simple/ "
    f"--trusted-host {NAME} {PACKAGE} >/dev/null && "
    f"python -c 'import {PACKAGE}; print({PACKAGE}.VALUE)'"
)


def test_pip_installs_from_an_allowed_index_and_not_without(
    egress: Egress, server: EgressServer
) -> None:
    # pypi's image has pip (bash runs there too); its own allowlist is replaced by the test's.
    installed = egress.run(PIP, grant(server), language="bash", policy="pypi")
    assert installed.status is RunStatus.OK, installed
    assert installed.stdout.strip() == "42"
    assert {(r.host, r.allowed) for r in installed.egress} == {(NAME, True)}
    refused = egress.run(PIP, None, language="bash", policy="pypi")
    assert refused.status is RunStatus.ERROR
    assert "pip: command not found" not in refused.stderr
    assert refused.egress == ()
