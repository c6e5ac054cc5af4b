"""The lean engine client: the bytes it sends and how it reads answers, against a scripted peer on
a Unix socket (the real engine drives it in tests/integration and tests/security)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import _create_container_args  # type: ignore[attr-defined]

from executor_service.sandbox.engine import Engine, EngineError, EngineNotFound, create_body
from executor_service.sandbox.hardening import container_options
from executor_service.sandbox.spec import Limits, SandboxConfig

Handler = Callable[[socket.socket, bytes], bool]  # answers one request; False closes the connection


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[tuple[str, list[bytes], list[Handler]]]:
    """A Unix socket that answers requests with the handlers queued, recording each request."""
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    seen: list[bytes] = []
    handlers: list[Handler] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while handlers:
                    request = _read_request(conn)
                    if not request:
                        break
                    seen.append(request)
                    if not handlers.pop(0)(conn, request):
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", seen, handlers
    server.close()


def _answer(status: str, body: bytes, keep: bool = True) -> Handler:
    def handle(conn: socket.socket, _request: bytes) -> bool:
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
        head += "Content-Type: application/json\r\n\r\n"
        conn.sendall(head.encode() + body)
        return keep

    return handle


def test_create_body_is_what_docker_py_would_send() -> None:
    api = docker.APIClient(version="1.43")
    sent: dict[str, object] = {}

    def capture(
        config: dict[str, object], name: str | None = None, platform: object = None
    ) -> dict[str, str]:
        sent.update(config=config, name=name)
        return {"Id": "x"}

    api.create_container_from_config = capture  # type: ignore[method-assign]
    config = SandboxConfig(image="img", limits=Limits(), labels={"a": "b"}, name="ex_1")
    options = container_options(config, deadline=1.0, code_uid=60001, instance="i")
    api.create_container(**_create_container_args({**options, "version": "1.43"}))
    body, name = create_body(options, "1.43")
    assert name == sent["name"] == "ex_1"
    expected = {key: value for key, value in dict(sent["config"]).items() if value is not None}  # type: ignore[call-overload]
    assert json.dumps(body, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert body["HostConfig"]["CapDrop"] == ["ALL"]


def test_calls_keep_one_connection_and_send_json(
    peer: tuple[str, list[bytes], list[Handler]],
) -> None:
    url, seen, handlers = peer
    handlers += [_answer("201 Created", b'{"Id":"abc"}'), _answer("204 No Content", b"")]
    engine = Engine(url, "1.43")
    assert engine.call("POST", "/containers/create", query={"name": "ex 1"}, body={"A": 1}) == {
        "Id": "abc"
    }
    assert engine.call("POST", "/containers/abc/start") is None
    assert seen[0].startswith(b"POST /v1.43/containers/create?name=ex+1 HTTP/1.1\r\n")
    assert seen[0].endswith(b'\r\n\r\n{"A": 1}')
    assert seen[1].startswith(b"POST /v1.43/containers/abc/start HTTP/1.1\r\n")


def test_error_answers_are_typed(peer: tuple[str, list[bytes], list[Handler]]) -> None:
    url, _, handlers = peer
    handlers += [
        _answer("404 Not Found", b'{"message":"No such container: x"}'),
        _answer("409 Conflict", b'{"message":"removal in progress"}'),
    ]
    engine = Engine(url, "1.43")
    with pytest.raises(EngineNotFound) as missing:
        engine.call("GET", "/containers/x/json")
    assert missing.value.explanation == "No such container: x"
    with pytest.raises(EngineError) as conflict:
        engine.call("DELETE", "/containers/x")
    assert conflict.value.status == 409


def test_a_connection_the_engine_closed_is_replaced(
    peer: tuple[str, list[bytes], list[Handler]],
) -> None:
    url, seen, handlers = peer
    handlers += [_answer("200 OK", b'{"n":1}', keep=False), _answer("200 OK", b'{"n":2}')]
    engine = Engine(url, "1.43")
    assert engine.call("GET", "/a") == {"n": 1}
    assert engine.call("GET", "/b") == {"n": 2}
    assert len(seen) == 2


def _raw(answer: bytes, keep: bool = True) -> Handler:
    def handle(conn: socket.socket, _request: bytes) -> bool:
        for piece in (answer[:7], answer[7:40], answer[40:]):  # the head and body cut anywhere
            conn.sendall(piece)
        return keep

    return handle


def test_chunked_answers_and_answers_without_a_length_are_read_whole(
    peer: tuple[str, list[bytes], list[Handler]],
) -> None:
    """As Go's HTTP server answers: chunked once a body is over its buffer, and a body that runs
    to the connection's end when the answer says Connection: close."""
    url, seen, handlers = peer
    document = json.dumps({"State": {"Running": True}, "Pad": "x" * 5000}).encode()
    chunked = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (document[:3000], document[3000:])
    )
    handlers += [
        _raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"),
        _raw(b"HTTP/1.1 204 No Content\r\nDate: now\r\n\r\n"),
        _raw(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"n": 3}', keep=False),
        _answer("200 OK", b'{"n":4}'),
    ]
    engine = Engine(url, "1.43")
    assert engine.call("GET", "/containers/a/json") == json.loads(document)
    assert engine.call("POST", "/containers/a/start") is None
    assert engine.call("GET", "/c") == {"n": 3}
    assert engine.call("GET", "/d") == {"n": 4}  # on a new connection: the last one was closed
    assert len(seen) == 4


def test_a_hijacked_stream_loses_nothing_sent_with_the_head(
    peer: tuple[str, list[bytes], list[Handler]],
) -> None:
    url, seen, handlers = peer

    def upgrade(conn: socket.socket, _request: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst")
        conn.sendall(b" words")
        return False

    handlers.append(upgrade)
    stream = Engine(url, "1.43").hijack("/exec/e1/start", body={"Detach": False})
    received = b""
    while len(received) < len(b"first words"):
        received += stream.recv(64)
    stream.close()
    assert received == b"first words"
    assert seen[0].startswith(b"POST /v1.43/exec/e1/start HTTP/1.1\r\n")
    assert b"Upgrade: tcp" in seen[0]


def test_a_refused_hijack_says_why(peer: tuple[str, list[bytes], list[Handler]]) -> None:
    url, _, handlers = peer
    handlers.append(_answer("404 Not Found", b'{"message":"No such exec instance: e1"}'))
    with pytest.raises(EngineNotFound, match="No such exec instance"):
        Engine(url, "1.43").hijack("/exec/e1/start")


def test_only_plain_addresses_are_supported() -> None:
    with pytest.raises(ValueError, match="only unix:// and tcp://"):
        Engine("https://engine.example:2376", "1.43")
