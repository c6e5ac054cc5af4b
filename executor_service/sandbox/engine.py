"""A lean HTTP client for the engine calls on every run's path.

docker-py sends each call through requests and urllib3: about 0.8 ms of a worker's CPU per call
(session and cookie merging, environment and netrc lookups, runtime protocol checks), against
0.15 ms for the same request on a kept-alive `http.client` connection. A fresh run makes five or
six such calls and a session run four, so on two cores that overhead alone was a fifth of what the
service spent per run. The calls made for every run (create, start, attach, rename, remove, wait,
exec) go through here; everything rarer (listing, stats, image builds) stays on docker-py, whose
translation of container options this module reuses.

Each thread keeps one connection: the worker's threads are few and long-lived, and the engine
keeps idle connections open. Attach and exec streams take a connection of their own, which the
engine hijacks (HTTP upgrade to a raw stream).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from docker.models.containers import _create_container_args  # type: ignore[attr-defined]
from docker.types import ContainerConfig
from docker.utils import format_environment, parse_host

HEAD_MAX = 64 * 1024  # a hijack's response head; the engine's is a few hundred bytes
# A kept-alive connection the engine closed in between shows as one of these on first use.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class EngineError(Exception):
    """The engine answered with an error status; `explanation` is its message."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status}: {explanation}")
        self.status = status
        self.explanation = explanation


class EngineNotFound(EngineError):
    """404: no such container, exec or image."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


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

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._unix is not None:
            return _UnixConnection(self._unix, timeout)
        assert self._tcp is not None
        return http.client.HTTPConnection(*self._tcp, timeout=timeout)

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
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        target = self._target(path, query)
        if timeout is not None:
            conn = self._connect(timeout)
            try:
                return self._exchange(conn, method, target, payload, headers)
            finally:
                conn.close()
        kept: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if kept is not None:
            try:
                return self._exchange(kept, method, target, payload, headers)
            except _STALE:
                kept.close()
            except EngineError:
                raise  # an answer: the connection is still in step
            except BaseException:
                kept.close()
                self._local.conn = None
                raise
        fresh = self._local.conn = self._connect(None)
        try:
            return self._exchange(fresh, method, target, payload, headers)
        except EngineError:
            raise
        except BaseException:
            fresh.close()
            self._local.conn = None
            raise

    @staticmethod
    def _exchange(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
    ) -> Any:
        conn.request(method, target, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise _error(response.status, data)
        return json.loads(data) if data else None

    def hijack(
        self, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> socket.socket:
        """POST that the engine upgrades to a raw stream (attach, exec start); its socket.

        The head is read without consuming a byte past it, so nothing the stream says first is
        lost to a buffer.
        """
        conn = self._connect(None)
        payload = b"" if body is None else json.dumps(body).encode()
        conn.connect()
        sock = conn.sock
        assert isinstance(sock, socket.socket)
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
    arguments = _create_container_args({**options, "version": api_version})
    name = arguments.pop("name", None)
    arguments.pop("platform", None)
    arguments.pop("use_config_proxy", None)  # never inject the engine client's proxy settings
    if isinstance(arguments.get("environment"), dict):
        arguments["environment"] = format_environment(arguments["environment"])
    config = ContainerConfig(api_version, **arguments)
    return {key: value for key, value in config.items() if value is not None}, name
