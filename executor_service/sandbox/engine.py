"""A lean HTTP client for the engine calls on every run's path.

docker-py sends each call through requests and urllib3: about 0.8 ms of a worker's CPU per call
(session and cookie merging, environment and netrc lookups, runtime protocol checks), against
0.1 ms for the same request on a kept-alive `http.client` connection and 0.03 ms written and read
by hand on a socket (see _Connection). A fresh run makes five or six such calls and a session run
four, so on two cores that overhead alone was a fifth of what the service spent per run. The
calls made for every run (create, start, attach, rename, remove, wait, exec) go through here;
everything rarer (listing, stats, image builds) stays on docker-py, whose translation of
container options this module reuses.

Each thread keeps one connection: the worker's threads are few and long-lived, and the engine
keeps idle connections open. Attach and exec streams take a connection of their own, which the
engine hijacks (HTTP upgrade to a raw stream).
"""

from __future__ import annotations

import http.client  # for the reason phrases of error statuses
import json
import os
import socket
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from docker.models.containers import _create_container_args  # type: ignore[attr-defined]
from docker.types import ContainerConfig
from docker.utils import format_environment, parse_host

HEAD_MAX = 64 * 1024  # a response head; the engine's is a few hundred bytes
NO_BODY = frozenset({204, 304})


class EngineError(Exception):
    """The engine answered with an error status; `explanation` is its message."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status}: {explanation}")
        self.status = status
        self.explanation = explanation


class EngineNotFound(EngineError):
    """404: no such container, exec or image."""


class _Closed(ConnectionError):
    """The engine closed a kept-alive connection before answering (it had been idle too long)."""


# A kept-alive connection the engine closed in between shows as one of these on first use.
_STALE = (_Closed, BrokenPipeError, ConnectionResetError)


class _Connection:
    """One HTTP/1.1 connection to the engine: a request written in one piece, the answer read
    by hand. http.client parsed every answer's head through the email package, a tenth of a
    millisecond of CPU per call; the engine's answers need only the status, Content-Length or
    chunked transfer, and Connection: close."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def exchange(
        self, method: str, target: str, payload: bytes | None, json_body: bool
    ) -> tuple[int, bytes, bool]:
        """(status, body, whether the connection may be used again)."""
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n"
        if json_body:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(payload or b'')}\r\n\r\n"
        self.sock.sendall(head.encode() + (payload or b""))
        status, headers = self._read_head()
        if status in NO_BODY or 100 <= status < 200 or method == "HEAD":
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        elif (length := headers.get("content-length", "")).isdigit():
            body = self._read_exact(int(length))
        else:
            return status, self._read_to_end(), False
        return status, body, headers.get("connection", "").lower() != "close"

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed("the engine closed the connection")
        self._buffer += chunk

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > HEAD_MAX:
                raise ConnectionResetError("the engine's answer head is too long")
            self._fill()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(" ", 2)[1]), headers

    def _read_exact(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line

    def _read_chunked(self) -> bytes:
        parts = []
        while size := int(self._read_line().split(b";", 1)[0], 16):
            parts.append(self._read_exact(size))
            self._read_exact(2)  # the CRLF after each chunk
        while self._read_line():  # trailers, up to the empty line
            pass
        return b"".join(parts)

    def _read_to_end(self) -> bytes:
        data = self._buffer
        while chunk := self.sock.recv(65536):
            data += chunk
        self._buffer = b""
        return data


class Engine:
    """Requests to one engine, at one API version, over kept-alive per-thread connections."""

    def __init__(self, base_url: str | None, api_version: str) -> None:
        """`base_url` as docker-py takes it (None: DOCKER_HOST, else the local socket).

        Plain unix and tcp addresses only: an engine behind TLS is not supported here.
        """
        address = urlsplit(parse_host(base_url or os.environ.get("DOCKER_HOST")))
        if address.scheme == "http+unix":
            self._unix: str | None = address.path
            self._tcp: tuple[str, int] | None = None
        elif address.scheme == "http" and address.hostname:
            self._unix = None
            self._tcp = (address.hostname, address.port or 2375)
        else:
            raise ValueError(f"engine address {base_url!r}: only unix:// and tcp:// are supported")
        self._prefix = f"/v{api_version}"
        self._local = threading.local()

    def _connect(self, timeout: float | None) -> socket.socket:
        if self._unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self._unix)
            except BaseException:
                sock.close()
                raise
            return sock
        assert self._tcp is not None
        return socket.create_connection(self._tcp, timeout=timeout)

    def _target(self, path: str, query: dict[str, Any] | None) -> str:
        target = self._prefix + path
        if query:
            target += "?" + urlencode({key: str(value) for key, value in query.items()})
        return target

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (None when empty). Raises EngineError.

        With `timeout` the request gets a connection of its own, closed after it: a timed-out
        answer would leave a kept-alive connection out of step. OSError and TimeoutError pass
        through (the engine is unreachable, or slower than `timeout`).
        """
        payload = None if body is None else json.dumps(body).encode()
        target = self._target(path, query)
        if timeout is not None:
            conn = _Connection(self._connect(timeout))
            try:
                return self._exchange(conn, method, target, payload)
            finally:
                conn.close()
        kept: _Connection | None = getattr(self._local, "conn", None)
        if kept is not None:
            try:
                return self._exchange(kept, method, target, payload)
            except _STALE:
                kept.close()
            except EngineError:
                raise  # an answer: the connection is still in step
            except BaseException:
                kept.close()
                self._local.conn = None
                raise
        fresh = self._local.conn = _Connection(self._connect(None))
        try:
            return self._exchange(fresh, method, target, payload)
        except EngineError:
            raise
        except BaseException:
            fresh.close()
            self._local.conn = None
            raise

    def _exchange(self, conn: _Connection, method: str, target: str, payload: bytes | None) -> Any:
        status, data, reusable = conn.exchange(method, target, payload, payload is not None)
        if not reusable and getattr(self._local, "conn", None) is conn:
            conn.close()
            self._local.conn = None
        if status >= 400:
            raise _error(status, data)
        return json.loads(data) if data else None

    def hijack(
        self, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> socket.socket:
        """POST that the engine upgrades to a raw stream (attach, exec start); its socket.

        The head is read without consuming a byte past it, so nothing the stream says first is
        lost to a buffer.
        """
        sock = self._connect(None)
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"POST {self._target(path, query)} HTTP/1.1\r\nHost: docker\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        try:
            sock.sendall(head + payload)
            answer = _read_head(sock)
        except BaseException:
            sock.close()
            raise
        status = int(answer.split(b" ", 2)[1])
        if status not in (101, 200):
            body_bytes = _read_body(sock, answer)
            sock.close()
            raise _error(status, body_bytes)
        return sock


def _read_head(sock: socket.socket) -> bytes:
    """Bytes up to and including the blank line that ends a response head, and no further."""
    seen = b""
    while True:
        ahead = sock.recv(HEAD_MAX, socket.MSG_PEEK)
        if not ahead:
            raise ConnectionResetError("the engine closed the stream before answering")
        end = (seen + ahead).find(b"\r\n\r\n")
        take = len(ahead) if end < 0 else end + 4 - len(seen)
        seen += sock.recv(take)
        if end >= 0 and len(seen) == end + 4:
            return seen
        if len(seen) > HEAD_MAX:
            raise ConnectionResetError("the engine's answer head is too long")


def _read_body(sock: socket.socket, head: bytes) -> bytes:
    """The body of an error answer to a hijack (its Content-Length), for the message."""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = min(int(value), HEAD_MAX)
    body = b""
    sock.settimeout(2.0)
    try:
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    return body


def _error(status: int, data: bytes) -> EngineError:
    try:
        message = str(json.loads(data).get("message", ""))
    except (ValueError, AttributeError):
        message = data.decode(errors="replace").strip()
    kind = EngineNotFound if status == 404 else EngineError
    return kind(status, message or http.client.responses.get(status, "error"))


def container_path(container_id: str, action: str = "") -> str:
    """/containers/<id>[/<action>], the id quoted (it comes from the engine or our names)."""
    return f"/containers/{quote(container_id, safe='')}" + (f"/{action}" if action else "")


def create_body(options: dict[str, Any], api_version: str) -> tuple[dict[str, Any], str | None]:
    """POST /containers/create's JSON body and name, from `containers.create` keyword arguments.

    docker-py's own translation (`_create_container_args`, `ContainerConfig`) builds it, as its
    `create_container` would, without its HTTP call (and without the inspect that
    `containers.create` adds). A test holds the two equal.
    """
    options = dict(options)
    # docker-py sets StdinOnce only for a container it attaches to itself (detach=False).
    stdin_once = bool(options.pop("stdin_once", False))
    arguments = _create_container_args({**options, "version": api_version})
    name = arguments.pop("name", None)
    arguments.pop("platform", None)
    arguments.pop("use_config_proxy", None)  # never inject the engine client's proxy settings
    if isinstance(arguments.get("environment"), dict):
        arguments["environment"] = format_environment(arguments["environment"])
    config = ContainerConfig(api_version, **arguments)
    body = {key: value for key, value in config.items() if value is not None}
    if stdin_once:
        body["StdinOnce"] = True
    return body, name
