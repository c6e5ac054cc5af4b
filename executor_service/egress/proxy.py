"""The host side of egress: an allowlisting forward proxy serving one Unix socket per execution.

The socket a connection arrives on is its identity (nothing in the request can claim another
execution), so each execution gets a gate with its own grant, caps and log. Every address is
checked by `denial()` and the grant, then connected to by number, so a second DNS answer can never
send the connection somewhere the check did not see.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import h11
import structlog

from executor_service.egress.addresses import denial, discover_host_networks
from executor_service.egress.audit import MAX_RECORDS, EgressLog, EgressReason, EgressRecord
from executor_service.egress.rules import EgressGrant, IPAddress, IPNetwork

log = structlog.get_logger(__name__)

HEAD_MAX_BYTES = 16 * 1024
CHUNK_BYTES = 64 * 1024
HOST_NETWORKS_MAX_AGE_S = 60.0
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    }
)
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")

RecordCallback = Callable[[EgressRecord], None]
_NO_HOSTS: Mapping[str, str] = MappingProxyType({})


class _BadRequest(Exception):
    """The head is not a request this proxy serves; answered 400 and recorded as bad_request."""


@dataclass(eq=False)  # compared and hashed by identity: held in a set while live
class _Connection:
    """The record of one connection, filled in as it goes, plus what it takes to cut it."""

    task: asyncio.Task[None] | None
    host: str = ""
    port: int = 0
    method: str = "CONNECT"
    allowed: bool = False
    reason: EgressReason = ""
    address: str | None = None
    bytes_sent: int = 0
    bytes_received: int = 0
    cut: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def record(self) -> EgressRecord:
        return EgressRecord(
            host=self.host,
            port=self.port,
            allowed=self.allowed,
            reason=self.reason,
            method="HTTP" if self.method == "HTTP" else "CONNECT",
            address=self.address,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
        )


@dataclass(frozen=True)
class _Target:
    host: str  # as the code wrote it, without brackets
    port: int
    upstream_head: bytes | None  # the rewritten head for absolute-form HTTP; None for CONNECT


class _Cut(Exception):
    """A connection ended by the proxy itself: a cap was reached."""


class _Refusal(Exception):
    def __init__(self, reason: EgressReason, detail: str, address: IPAddress | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.address = reason, detail, address


def _parse_head(head: bytes) -> _Target:
    """Validate the head with h11, then take the destination from it (absolute-form or CONNECT)."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_MAX_BYTES)
    parser.receive_data(head)
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise _BadRequest(str(exc)) from exc
    if not isinstance(event, h11.Request):
        raise _BadRequest("incomplete request head")
    target = event.target.decode("ascii")
    if event.method == b"CONNECT":
        name, _, digits = target.rpartition(":")
        return _Target(_host(name.removeprefix("[").removesuffix("]")), _port(digits), None)
    url = urlsplit(target)
    if url.scheme.lower() != "http" or not url.netloc or "@" in url.netloc:
        raise _BadRequest("only CONNECT and absolute-form http:// requests are proxied")
    try:
        port = 80 if url.port is None else url.port
    except ValueError as exc:
        raise _BadRequest("bad port") from exc
    host = _host(url.hostname or "")
    if port == 0:
        raise _BadRequest("bad port")
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return _Target(host, port, _origin_head(event, path, url.netloc))


def _host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host or len(host) > 253 or not _NAME.fullmatch(host.lower()):
            raise _BadRequest("bad host") from None
    return host


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _BadRequest("bad port")
    return int(text)


def _origin_head(request: h11.Request, path: str, netloc: str) -> bytes:
    """The request as the origin should see it: origin-form, no hop-by-hop headers, one shot.

    Host always comes from the URL (RFC 9112 3.2.2): a Host of the code's choosing would reach
    another site served at the same address (a CDN's, say) that the allowlist never named.
    """
    named = {
        token.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    request_line = f"{request.method.decode()} {path} HTTP/{request.http_version.decode()}"
    lines = [request_line.encode(), b"Host: " + netloc.encode("ascii")]
    for name, value in request.headers.raw_items():
        lower = name.decode("latin-1").lower()
        if lower not in HOP_BY_HOP and lower not in named and lower != "host":
            lines.append(name + b": " + value)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _answer(status: int, phrase: str, body: str, reason: EgressReason | None = None) -> bytes:
    data = f"agent-sandbox egress: {body}\n".encode()
    denied = f"X-Egress-Denied: {reason}\r\n" if reason else ""
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n{denied}Connection: close\r\n\r\n"
    ).encode() + data


def _call_on_record(callback: RecordCallback, record: EgressRecord) -> None:
    try:
        callback(record)
    except Exception:  # a failing audit sink must not take the proxy down
        log.exception("egress on_record callback failed", host=record.host, port=record.port)


class EgressGate:
    """One execution's socket: its grant, its caps, and the log of what its code asked for."""

    def __init__(
        self, proxy: EgressProxy, socket_path: Path, grant: EgressGrant, on_record: RecordCallback
    ) -> None:
        self._proxy, self._path, self._grant, self._on_record = proxy, socket_path, grant, on_record
        self._server: asyncio.AbstractServer | None = None
        self._slots: list[_Connection] = []  # the first MAX_RECORDS arrivals, in order
        self._dropped = 0
        self._live: set[_Connection] = set()
        self._opened = 0  # connections allowed (or being decided), against max_connections
        self._bytes = 0  # both directions, every connection, against max_bytes
        self._lock = threading.Lock()
        self._log: EgressLog | None = None
        self._closed = False  # set on the loop; a connection accepted just before then is dropped

    @property
    def socket_path(self) -> Path:
        return self._path

    def close(self) -> EgressLog:
        """Stop listening, cut every live connection and return the log; safe to call again."""
        with self._lock:
            if self._log is None:
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._proxy._loop)
                self._log = future.result()
                # Records are delivered in order on one thread: once this no-op has run, every
                # record of this gate has reached on_record (a denial is on the event stream
                # before the caller writes the result).
                self._proxy._callbacks.submit(lambda: None).result()
            return self._log

    async def _start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self._path))
        os.chmod(self._path, 0o666)  # noqa: S103 - the sandbox's user must connect, and only it sees the socket

    async def _shutdown(self) -> EgressLog:
        self._closed = True
        if self._server is not None:
            self._server.close()
        self._path.unlink(missing_ok=True)
        tasks = self._cut_all(None)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._proxy._forget(self)
        return EgressLog(records=tuple(c.record() for c in self._slots), dropped=self._dropped)

    def _cut_all(self, reason: EgressReason | None) -> list[asyncio.Task[None]]:
        tasks = []
        for conn in self._live:
            conn.cut = True
            if reason is not None:
                conn.reason = reason
            if conn.task is not None:
                conn.task.cancel()
                tasks.append(conn.task)
        return tasks

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed:
            writer.transport.abort()
            return
        conn = _Connection(task=asyncio.current_task())
        conn.writers.append(writer)
        if len(self._slots) < MAX_RECORDS:
            self._slots.append(conn)
        else:
            self._dropped += 1
        self._live.add(conn)
        try:
            await self._handle(conn, reader, writer)
        except OSError as exc:
            log.debug("egress connection ended with an error", host=conn.host, error=str(exc))
        except (_Cut, asyncio.CancelledError):
            # Cut on purpose (a cap, or the gate closing). Ending quietly keeps asyncio from
            # reporting the server's connection task as failed.
            conn.cut = True
        finally:
            for w in conn.writers:
                if conn.cut:
                    w.transport.abort()
                else:
                    w.close()
            self._live.discard(conn)
            self._proxy._deliver(self._on_record, conn.record())

    async def _handle(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head, rest = await self._read_head(reader)
            target = _parse_head(head)
        except (_BadRequest, TimeoutError, UnicodeDecodeError) as exc:
            conn.reason = "bad_request"
            writer.write(
                _answer(400, "Bad Request", f"bad request: {str(exc) or 'request head too slow'}")
            )
            await writer.drain()
            return
        conn.host, conn.port = target.host, target.port
        conn.method = "CONNECT" if target.upstream_head is None else "HTTP"
        try:
            addresses = await self._decide(target.host, target.port)
        except _Refusal as refusal:
            conn.reason = refusal.reason
            conn.address = None if refusal.address is None else str(refusal.address)
            log.info("egress refused", host=conn.host, port=conn.port, reason=refusal.reason)
            status, phrase = (
                (502, "Bad Gateway") if refusal.reason == "resolve_failed" else (403, "Forbidden")
            )
            writer.write(_answer(status, phrase, refusal.detail, refusal.reason))
            await writer.drain()
            return
        conn.allowed = True
        upstream = await self._connect(conn, addresses, target.port)
        if upstream is None:
            conn.reason = "connect_failed"
            tried = ", ".join(str(a) for a in addresses)
            body = f"could not connect to {target.host}:{target.port} (tried {tried})"
            writer.write(_answer(502, "Bad Gateway", body))
            await writer.drain()
            return
        up_reader, up_writer = upstream
        if target.upstream_head is None:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            await self._forward(conn, up_writer, target.upstream_head, sent=True)
        await self._forward(conn, up_writer, rest, sent=True)
        await self._splice(conn, reader, writer, up_reader, up_writer)

    async def _read_head(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        buffer = b""
        async with asyncio.timeout(self._proxy.head_timeout_s):
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                if len(buffer) >= HEAD_MAX_BYTES:
                    raise _BadRequest(f"request head over {HEAD_MAX_BYTES} bytes")
                chunk = await reader.read(HEAD_MAX_BYTES - len(buffer))
                if not chunk:
                    raise _BadRequest("connection closed before the end of the request head")
                buffer += chunk
        return buffer[: end + 4], buffer[end + 4 :]

    async def _decide(self, host: str, port: int) -> list[IPAddress]:
        """The addresses this connection may go to, in order, or the refusal saying why not."""
        grant = self._grant
        if self._opened >= grant.max_connections:
            raise _Refusal(
                "connection_cap",
                f"this sandbox already opened its {grant.max_connections} connections",
            )
        if self._bytes >= grant.max_bytes:
            raise _Refusal("byte_cap", f"this sandbox used its {grant.max_bytes} bytes of egress")
        # Held while resolving, so concurrent requests cannot pass the cap together.
        self._opened += 1
        try:
            return await self._addresses(host, port)
        except _Refusal:
            self._opened -= 1
            raise

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        grant, proxy = self._grant, self._proxy
        allowed = ", ".join(str(rule) for rule in grant.rules) or "nothing"
        not_listed = _Refusal(
            "not_allowlisted",
            f"{host}:{port} is not on this sandbox's allowlist (allowed: {allowed})",
        )
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            why = denial(literal, host_networks=proxy.host_networks, relaxed=proxy.relaxed_networks)
            if why is not None:
                raise _Refusal(
                    "denied_address", f"{literal} is {why} and is never reachable", literal
                )
            if not grant.allows_address(literal, port):
                raise not_listed
            return [literal]
        # Only a name a rule lists is ever resolved: resolving any name the code asks for would
        # let it send data out in DNS queries (secret.attacker.example), allowlist or not. So a
        # network rule applies to address literals only.
        name = host.lower()
        if not grant.allows_name(name, port):
            raise not_listed
        resolved = await proxy._resolve(name, port)
        if not resolved:
            raise _Refusal("resolve_failed", f"{host} did not resolve")
        kept, refused = [], None
        for address in resolved:
            why = denial(address, host_networks=proxy.host_networks, relaxed=proxy.relaxed_networks)
            if why is not None:
                refused = refused or (address, why)
            else:
                kept.append(address)
        if kept:
            return kept
        assert refused is not None  # resolved was not empty, and nothing was kept
        address, why = refused
        detail = f"{host}:{port} resolves to {address}, which is {why} and is never reachable"
        raise _Refusal("denied_address", detail, address)

    async def _connect(
        self, conn: _Connection, addresses: list[IPAddress], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for address in addresses:
            conn.address = str(address)
            try:
                async with asyncio.timeout(self._proxy.connect_timeout_s):
                    # A numeric host: asyncio takes it as it is and never asks DNS again.
                    up_reader, up_writer = await asyncio.open_connection(str(address), port)
            except (OSError, TimeoutError) as exc:
                log.info("egress connect failed", address=str(address), port=port, error=str(exc))
                continue
            conn.writers.append(up_writer)
            return up_reader, up_writer
        return None

    async def _splice(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        # The sandbox may half-close after its request; the destination closing ends the connection.
        outbound = asyncio.create_task(self._pump(conn, reader, up_writer, sent=True))
        try:
            await self._pump(conn, up_reader, writer, sent=False)
        finally:
            outbound.cancel()
            await asyncio.gather(outbound, return_exceptions=True)

    async def _pump(
        self,
        conn: _Connection,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        sent: bool,
    ) -> None:
        while chunk := await source.read(CHUNK_BYTES):
            await self._forward(conn, sink, chunk, sent=sent)
        if sink.can_write_eof():
            sink.write_eof()

    async def _forward(
        self, conn: _Connection, sink: asyncio.StreamWriter, data: bytes, *, sent: bool
    ) -> None:
        """Pass bytes on, counted against the byte cap; past the cap, cut every connection."""
        allowance = max(self._grant.max_bytes - self._bytes, 0)
        passed = data[:allowance]
        self._bytes += len(passed)
        if sent:
            conn.bytes_sent += len(passed)
        else:
            conn.bytes_received += len(passed)
        if passed:
            sink.write(passed)
        if len(passed) < len(data):
            log.info("egress byte cap reached", max_bytes=self._grant.max_bytes)
            self._cut_all("byte_cap")
            raise _Cut  # this connection is cut too, like the others
        await sink.drain()


class EgressProxy:
    """Serves every gate of one worker process from an event loop on a daemon thread."""

    def __init__(
        self,
        *,
        extra_hosts: Mapping[str, str] = _NO_HOSTS,
        relaxed_networks: Sequence[IPNetwork] = (),
        host_networks: Sequence[IPNetwork] | None = None,
        connect_timeout_s: float = 10.0,
        head_timeout_s: float = 10.0,
    ) -> None:
        self._extra_hosts = {
            name.lower(): ipaddress.ip_address(address) for name, address in extra_hosts.items()
        }
        self.relaxed_networks = tuple(relaxed_networks)
        self._fixed_host_networks = None if host_networks is None else tuple(host_networks)
        self.host_networks: tuple[IPNetwork, ...] = self._fixed_host_networks or ()
        self._host_networks_at = float("-inf")
        self.connect_timeout_s, self.head_timeout_s = connect_timeout_s, head_timeout_s
        self._gates: set[EgressGate] = set()
        # One thread: records reach the sink in order, and a slow sink delays only later records.
        self._callbacks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-record")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="egress-proxy", daemon=True
        )
        self._thread.start()

    def open_gate(
        self, socket_path: Path, grant: EgressGrant, *, on_record: RecordCallback | None = None
    ) -> EgressGate:
        """Listen on `socket_path` for one execution; returns once the socket accepts."""
        self._refresh_host_networks()
        socket_path.unlink(missing_ok=True)
        gate = EgressGate(self, socket_path, grant, on_record or (lambda record: None))
        asyncio.run_coroutine_threadsafe(self._add(gate), self._loop).result()
        return gate

    def close(self) -> None:
        """Close every gate, then stop the loop and its thread."""
        if not self._thread.is_alive():
            return
        for gate in asyncio.run_coroutine_threadsafe(self._all_gates(), self._loop).result():
            gate.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._callbacks.shutdown(wait=True)

    async def _add(self, gate: EgressGate) -> None:
        await gate._start()
        self._gates.add(gate)

    async def _all_gates(self) -> list[EgressGate]:
        return list(self._gates)

    def _forget(self, gate: EgressGate) -> None:
        self._gates.discard(gate)

    def _deliver(self, callback: RecordCallback, record: EgressRecord) -> None:
        self._callbacks.submit(_call_on_record, callback, record)

    def _refresh_host_networks(self) -> None:
        # Read off the loop, in the caller's thread: /proc is cheap, but the loop reads no files.
        if self._fixed_host_networks is not None:
            return
        if time.monotonic() - self._host_networks_at >= HOST_NETWORKS_MAX_AGE_S:
            self.host_networks = discover_host_networks()
            self._host_networks_at = time.monotonic()

    async def _resolve(self, name: str, port: int) -> list[IPAddress]:
        """The name's addresses (a static entry instead of DNS); empty if none came in time."""
        if name.rstrip(".") in self._extra_hosts:
            return [self._extra_hosts[name.rstrip(".")]]
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                infos = await self._loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            return []
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        return list(dict.fromkeys(found))
