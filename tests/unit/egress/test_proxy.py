"""The egress proxy over real sockets: a gate's Unix socket in front, servers on 127.0.0.1 behind.

No packet ever leaves 127.0.0.1: other destinations are only ever named so as to be refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

import pytest

from executor_service.egress.audit import MAX_RECORDS, EgressRecord
from executor_service.egress.proxy import HEAD_MAX_BYTES, EgressProxy
from executor_service.egress.rules import EgressGrant, EgressRule

WAIT_S = 2.0


@dataclass
class Upstream:
    """A server on 127.0.0.1 and what reached it."""

    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)


Handler = Callable[[Upstream, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Sink:
    """Collects records from on_record, which arrive on another thread."""

    def __init__(self) -> None:
        self.records: list[EgressRecord] = []
        self._changed = threading.Condition()

    def __call__(self, record: EgressRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    async def wait(self, count: int) -> list[EgressRecord]:
        def wait() -> list[EgressRecord]:
            with self._changed:
                assert self._changed.wait_for(lambda: len(self.records) >= count, WAIT_S)
                return list(self.records)

        return await asyncio.to_thread(wait)


async def serve(handler: Handler) -> AsyncIterator[Upstream]:
    seen = Upstream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            await handler(seen, reader, writer)
        except OSError:
            pass  # the proxy cut the connection, which some tests are about
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    yield seen
    server.close()


async def answer_hello(
    seen: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    seen.heads.append(await reader.readuntil(b"\r\n\r\n"))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    await writer.drain()


async def echo(seen: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()


async def download(
    seen: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    for _ in range(1024):
        writer.write(b"x" * 4096)
        await writer.drain()


@pytest.fixture
async def http_upstream() -> AsyncIterator[Upstream]:
    async for seen in serve(answer_hello):
        yield seen


@pytest.fixture
async def echo_upstream() -> AsyncIterator[Upstream]:
    async for seen in serve(echo):
        yield seen


@pytest.fixture
async def download_upstream() -> AsyncIterator[Upstream]:
    async for seen in serve(download):
        yield seen


def make_proxy(**overrides: object) -> EgressProxy:
    options: dict[str, object] = {
        "host_networks": (),
        "relaxed_networks": [ip_network("127.0.0.0/8")],
        "extra_hosts": {"allowed.test": "127.0.0.1", "private.test": "10.0.0.1"},
        "connect_timeout_s": WAIT_S,
        "head_timeout_s": WAIT_S,
    }
    options.update(overrides)
    return EgressProxy(**options)  # type: ignore[arg-type]


@pytest.fixture
def proxy() -> Iterator[EgressProxy]:
    built = make_proxy()
    yield built
    built.close()


def grant(*rules: EgressRule, max_connections: int = 10, max_bytes: int = 1 << 20) -> EgressGrant:
    return EgressGrant(rules=rules, max_connections=max_connections, max_bytes=max_bytes)


def name_rule(host: str, *ports: int) -> EgressRule:
    return EgressRule(ports=frozenset(ports), host=host)


def net_rule(network: str, *ports: int) -> EgressRule:
    return EgressRule(ports=frozenset(ports), network=ip_network(network))


async def exchange(path: Path, request: bytes) -> bytes:
    """Send a request through the gate and read everything the proxy answers."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()


async def tunnel(path: Path, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert head == b"HTTP/1.1 200 Connection established\r\n\r\n"
    return reader, writer


def connect(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def header(answer: bytes, name: bytes) -> bytes | None:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.lower() == name.lower():
            return value.strip()
    return None


async def test_allowed_connect_tunnel_carries_bytes_both_ways(
    proxy: EgressProxy, echo_upstream: Upstream, tmp_path: Path
) -> None:
    sink = Sink()
    gate = proxy.open_gate(
        tmp_path / "e.sock", grant(name_rule("allowed.test", echo_upstream.port)), on_record=sink
    )
    reader, writer = await tunnel(gate.socket_path, f"allowed.test:{echo_upstream.port}")
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), WAIT_S) == b"ping"
    writer.close()
    (record,) = await sink.wait(1)
    assert record == EgressRecord(
        host="allowed.test",
        port=echo_upstream.port,
        allowed=True,
        address="127.0.0.1",
        bytes_sent=4,
        bytes_received=4,
    )
    assert gate.close().records == (record,)


async def test_absolute_form_get_reaches_the_origin_in_origin_form_and_one_shot(
    proxy: EgressProxy, http_upstream: Upstream, tmp_path: Path
) -> None:
    sink = Sink()
    port = http_upstream.port
    gate = proxy.open_gate(
        tmp_path / "e.sock", grant(name_rule("allowed.test", port)), on_record=sink
    )
    request = (
        f"GET http://allowed.test:{port}/path?q=1 HTTP/1.1\r\nHost: allowed.test:{port}\r\n"
        "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\n"
        "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n"
    ).encode()
    answer = await exchange(gate.socket_path, request)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nhello")
    (head,) = http_upstream.heads
    assert (
        head
        == (
            f"GET /path?q=1 HTTP/1.1\r\nHost: allowed.test:{port}\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )
    (record,) = await sink.wait(1)
    assert (record.host, record.method, record.allowed, record.reason) == (
        "allowed.test",
        "HTTP",
        True,
        "",
    )
    assert (record.bytes_sent, record.bytes_received) == (len(head), len(answer))
    gate.close()


@pytest.mark.parametrize("host_header", ["", "Host: other-site.example\r\n"])
async def test_host_header_always_comes_from_the_url(
    proxy: EgressProxy, http_upstream: Upstream, tmp_path: Path, host_header: str
) -> None:
    port = http_upstream.port
    gate = proxy.open_gate(tmp_path / "e.sock", grant(name_rule("allowed.test", port)))
    request = f"GET http://allowed.test:{port} HTTP/1.0\r\n{host_header}\r\n".encode()
    assert (await exchange(gate.socket_path, request)).endswith(b"hello")
    assert http_upstream.heads == [
        f"GET / HTTP/1.0\r\nHost: allowed.test:{port}\r\nConnection: close\r\n\r\n".encode()
    ]
    gate.close()


async def test_a_name_off_the_list_is_refused_with_its_reason(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    sink = Sink()
    rules = (name_rule("pypi.org", 443), name_rule("files.pythonhosted.org", 443))
    gate = proxy.open_gate(tmp_path / "e.sock", grant(*rules), on_record=sink)
    answer = await exchange(gate.socket_path, connect("example.com:80"))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert header(answer, b"X-Egress-Denied") == b"not_allowlisted"
    assert (
        header(
            answer,
            b"Content-Type",
        )
        == b"text/plain; charset=utf-8"
    )
    assert answer.endswith(
        b"\r\n\r\nagent-sandbox egress: example.com:80 is not on this sandbox's allowlist"
        b" (allowed: pypi.org:443, files.pythonhosted.org:443)\n"
    )
    (record,) = await sink.wait(1)
    assert record == EgressRecord(
        host="example.com", port=80, allowed=False, reason="not_allowlisted"
    )
    assert gate.close().records == (record,)


async def test_a_listed_name_resolving_to_a_private_address_is_refused_without_connecting(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    gate = proxy.open_gate(tmp_path / "e.sock", grant(name_rule("private.test", 80)))
    answer = await exchange(
        gate.socket_path, b"GET http://private.test/ HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert header(answer, b"X-Egress-Denied") == b"denied_address"
    assert b"10.0.0.1, which is a private address (RFC 1918) and is never reachable" in answer
    (record,) = gate.close().records
    assert (record.reason, record.address, record.bytes_sent) == ("denied_address", "10.0.0.1", 0)


async def test_an_address_literal_needs_a_network_rule(
    proxy: EgressProxy, echo_upstream: Upstream, tmp_path: Path
) -> None:
    port = echo_upstream.port
    gate = proxy.open_gate(tmp_path / "e.sock", grant(net_rule("127.0.0.0/24", port)))
    _, writer = await tunnel(gate.socket_path, f"127.0.0.1:{port}")
    writer.close()
    answer = await exchange(gate.socket_path, connect(f"127.0.1.1:{port}"))
    assert header(answer, b"X-Egress-Denied") == b"not_allowlisted"
    assert [(r.allowed, r.reason) for r in gate.close().records] == [
        (True, ""),
        (False, "not_allowlisted"),
    ]


async def test_a_network_rule_admits_address_literals_and_never_resolves_names(
    proxy: EgressProxy, echo_upstream: Upstream, tmp_path: Path
) -> None:
    """A name is resolved only when a name rule lists it: resolving any name the code asks for
    would carry data out in DNS queries, whatever the allowlist says."""
    port = echo_upstream.port
    gate = proxy.open_gate(tmp_path / "e.sock", grant(net_rule("127.0.0.0/8", port)))
    reader, writer = await tunnel(gate.socket_path, f"127.0.0.1:{port}")
    writer.write(b"ping")
    writer.write_eof()  # a half-close reaches the destination; its answer still comes back
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b"ping"
    writer.close()
    # allowed.test resolves (extra_hosts) into that network, but no name rule lists it.
    answer = await exchange(gate.socket_path, connect(f"allowed.test:{port}"))
    assert header(answer, b"X-Egress-Denied") == b"not_allowlisted"
    assert [(r.host, r.reason, r.address) for r in gate.close().records] == [
        ("127.0.0.1", "", "127.0.0.1"),
        ("allowed.test", "not_allowlisted", None),
    ]


async def test_the_hosts_own_addresses_are_refused_even_when_relaxed(
    http_upstream: Upstream, tmp_path: Path
) -> None:
    port = http_upstream.port
    own = make_proxy(host_networks=None, extra_hosts={"self.test": "127.0.0.1"})
    try:
        rules = grant(name_rule("self.test", port), net_rule("127.0.0.0/8", port))
        gate = own.open_gate(tmp_path / "e.sock", rules)
        for target in (f"self.test:{port}", f"127.0.0.1:{port}", f"[::ffff:127.0.0.1]:{port}"):
            answer = await exchange(gate.socket_path, connect(target))
            assert header(answer, b"X-Egress-Denied") == b"denied_address", target
            assert b"the host's own address" in answer
        assert http_upstream.connections == 0
        assert {r.reason for r in gate.close().records} == {"denied_address"}
    finally:
        own.close()


async def test_the_metadata_address_is_refused_even_when_relaxed_and_listed(
    tmp_path: Path,
) -> None:
    relaxed = make_proxy(relaxed_networks=[ip_network("169.254.0.0/16")])
    try:
        gate = relaxed.open_gate(tmp_path / "e.sock", grant(net_rule("169.254.169.254/32", 80)))
        answer = await exchange(
            gate.socket_path, b"GET http://169.254.169.254/latest/ HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        assert header(answer, b"X-Egress-Denied") == b"denied_address"
        assert b"169.254.169.254 is a cloud metadata address and is never reachable" in answer
    finally:
        relaxed.close()


async def test_a_refused_connection_does_not_count_against_the_connection_cap(
    proxy: EgressProxy, echo_upstream: Upstream, tmp_path: Path
) -> None:
    port = echo_upstream.port
    gate = proxy.open_gate(
        tmp_path / "e.sock", grant(name_rule("allowed.test", port), max_connections=1)
    )
    await exchange(gate.socket_path, connect("example.com:443"))
    _, writer = await tunnel(gate.socket_path, f"allowed.test:{port}")
    answer = await exchange(gate.socket_path, connect(f"allowed.test:{port}"))
    assert header(answer, b"X-Egress-Denied") == b"connection_cap"
    writer.close()
    reasons = [r.reason for r in gate.close().records]
    assert reasons == ["not_allowlisted", "", "connection_cap"]


async def test_the_byte_cap_cuts_a_long_download_and_says_so(
    proxy: EgressProxy, download_upstream: Upstream, tmp_path: Path
) -> None:
    sink = Sink()
    port = download_upstream.port
    rules = grant(name_rule("allowed.test", port), max_bytes=10_000)
    gate = proxy.open_gate(tmp_path / "e.sock", rules, on_record=sink)
    request = f"GET http://allowed.test:{port}/big HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    received = await exchange(gate.socket_path, request)
    (record,) = await sink.wait(1)
    assert (record.allowed, record.reason) == (True, "byte_cap")
    assert record.bytes_sent + record.bytes_received == 10_000
    assert len(received) <= record.bytes_received
    answer = await exchange(gate.socket_path, connect(f"allowed.test:{port}"))
    assert header(answer, b"X-Egress-Denied") == b"byte_cap"
    gate.close()


@pytest.mark.parametrize(
    "request_head",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="malformed"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n", id="origin-form"),
        pytest.param(b"GET https://allowed.test/ HTTP/1.1\r\nHost: a\r\n\r\n", id="https"),
        pytest.param(b"CONNECT allowed.test HTTP/1.1\r\nHost: a\r\n\r\n", id="no-port"),
        pytest.param(b"CONNECT bad_host!:443 HTTP/1.1\r\nHost: a\r\n\r\n", id="bad-host"),
        pytest.param(b"GET http://a@allowed.test/ HTTP/1.1\r\nHost: a\r\n\r\n", id="userinfo"),
        pytest.param(b"GET http://allowed.test:0/ HTTP/1.1\r\nHost: a\r\n\r\n", id="port-0"),
        pytest.param(
            b"GET http://allowed.test/ HTTP/1.1\r\nX: ".ljust(HEAD_MAX_BYTES, b"a"), id="too-large"
        ),
        pytest.param(b"GET http://allowed.test/ HTTP/1.1\r\n", id="closed-early"),
    ],
)
async def test_a_head_the_proxy_does_not_serve_is_answered_400(
    proxy: EgressProxy, tmp_path: Path, request_head: bytes
) -> None:
    gate = proxy.open_gate(tmp_path / "e.sock", grant(name_rule("allowed.test", 80)))
    reader, writer = await asyncio.open_unix_connection(str(gate.socket_path))
    writer.write(request_head)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    (record,) = gate.close().records
    assert (record.reason, record.allowed) == ("bad_request", False)


async def test_a_head_too_slow_is_answered_400(tmp_path: Path) -> None:
    impatient = make_proxy(head_timeout_s=0.1)
    try:
        gate = impatient.open_gate(tmp_path / "e.sock", grant())
        started = time.monotonic()
        answer = await exchange(gate.socket_path, b"GET http://allowed.test/ HTTP/1.1\r\n")
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert time.monotonic() - started < 1.0
        (record,) = gate.close().records
        assert (record.host, record.port, record.reason) == ("", 0, "bad_request")
    finally:
        impatient.close()


async def test_a_refused_connect_is_answered_502_and_counts_as_allowed(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gate = proxy.open_gate(tmp_path / "e.sock", grant(name_rule("allowed.test", closed_port)))
    answer = await exchange(gate.socket_path, connect(f"allowed.test:{closed_port}"))
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    (record,) = gate.close().records
    assert (record.allowed, record.reason, record.address) == (True, "connect_failed", "127.0.0.1")


async def test_closing_the_gate_cuts_live_tunnels_and_returns_the_log_once(
    proxy: EgressProxy, echo_upstream: Upstream, tmp_path: Path
) -> None:
    sink = Sink()
    port = echo_upstream.port
    gate = proxy.open_gate(
        tmp_path / "e.sock", grant(name_rule("allowed.test", port)), on_record=sink
    )
    reader, writer = await tunnel(gate.socket_path, f"allowed.test:{port}")
    writer.write(b"ping")
    await reader.readexactly(4)
    egress_log = await asyncio.to_thread(gate.close)
    with contextlib.suppress(ConnectionResetError):  # a cut may arrive as a reset instead
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    writer.close()
    assert not gate.socket_path.exists()
    (record,) = egress_log.records
    assert (record.allowed, record.bytes_sent, record.bytes_received) == (True, 4, 4)
    assert gate.close() == egress_log
    assert await sink.wait(1) == [record]


async def test_on_record_sees_every_record_and_a_failing_one_is_ignored(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    sink = Sink()
    calls = 0

    def flaky(record: EgressRecord) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("redis is down")
        sink(record)

    gate = proxy.open_gate(tmp_path / "e.sock", grant(), on_record=flaky)
    for host in ("a.test", "b.test", "c.test"):
        await exchange(gate.socket_path, connect(f"{host}:443"))
    seen = await sink.wait(2)
    assert [r.host for r in gate.close().records] == ["a.test", "b.test", "c.test"]
    assert [r.host for r in seen] == ["b.test", "c.test"]


async def test_every_record_reached_on_record_when_close_returns(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    """The worker writes the result right after close(): its denials must be out already."""
    seen: list[str] = []

    def slow(record: EgressRecord) -> None:
        time.sleep(0.05)
        seen.append(record.host)

    gate = proxy.open_gate(tmp_path / "e.sock", grant(), on_record=slow)
    for host in ("a.test", "b.test", "c.test"):
        await exchange(gate.socket_path, connect(f"{host}:443"))
    gate.close()
    assert seen == ["a.test", "b.test", "c.test"]


async def test_a_slow_on_record_does_not_stall_other_connections(
    proxy: EgressProxy, http_upstream: Upstream, tmp_path: Path
) -> None:
    release = threading.Event()
    sink = Sink()

    def slow(record: EgressRecord) -> None:
        release.wait(WAIT_S)
        sink(record)

    port = http_upstream.port
    gate = proxy.open_gate(
        tmp_path / "e.sock", grant(name_rule("allowed.test", port)), on_record=slow
    )
    await exchange(gate.socket_path, connect("example.com:443"))
    started = time.monotonic()
    request = f"GET http://allowed.test:{port}/ HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    assert (await exchange(gate.socket_path, request)).endswith(b"hello")
    assert time.monotonic() - started < 0.5
    assert sink.records == []
    release.set()
    assert len(await sink.wait(2)) == 2
    gate.close()


async def test_records_past_the_limit_are_counted_not_kept(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    gate = proxy.open_gate(tmp_path / "e.sock", grant())
    for _ in range(MAX_RECORDS + 2):
        await exchange(gate.socket_path, b"GARBAGE\r\n\r\n")
    egress_log = gate.close()
    assert (len(egress_log.records), egress_log.dropped) == (MAX_RECORDS, 2)


def test_a_stale_socket_file_is_replaced_and_left_open_to_the_sandbox(
    proxy: EgressProxy, tmp_path: Path
) -> None:
    path = tmp_path / "e.sock"
    path.write_text("stale")
    gate = proxy.open_gate(path, grant())
    assert path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o666
    gate.close()
    assert not path.exists()
