"""A web server and package index that an egress test starts on this machine, and nowhere else.

Tests may only send traffic to servers they start themselves: this one runs in a container of the
python sandbox image on the engine's default bridge, serving a directory the test fills (a small
page, a large file, and a PEP 503 "simple" index holding one wheel built here). Its address is
private, so the proxy reaches it only when a test relaxes the always-deny list for it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

PORT = 8080
NAME = "pkgs.test"  # what the proxy resolves to the server (EXECUTOR_EGRESS_EXTRA_HOSTS)
PACKAGE = "tinypkg"
HELLO = b"hello from the egress test server\n"
TEST_LABEL = "agent-sandbox.test-server"


@dataclass(frozen=True)
class EgressServer:
    address: str  # the container's address on the bridge
    gateway: str  # the bridge's address on the host: one of the host's own addresses
    subnet: str  # the bridge's network

    @property
    def url(self) -> str:
        return f"http://{NAME}:{PORT}"


def wheel(name: str = PACKAGE, version: str = "1.0") -> tuple[str, bytes]:
    """A minimal pure-Python wheel whose module holds VALUE = 42."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(content)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


def fill(root: Path, big_bytes: int) -> None:
    """The served tree: /hello, /big (big_bytes), /simple/<package>/ and its wheel."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello").write_bytes(HELLO)
    (root / "big").write_bytes(b"x" * big_bytes)
    filename, content = wheel()
    (root / "files").mkdir()
    (root / "files" / filename).write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    index = root / "simple" / PACKAGE
    index.mkdir(parents=True)
    (index / "index.html").write_text(
        f'<html><body><a href="/files/{filename}#sha256={digest}">{filename}</a></body></html>\n'
    )
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def egress_server(
    client: docker.DockerClient, image: str, root: Path, big_bytes: int = 1024 * 1024
) -> Iterator[EgressServer]:
    fill(root, big_bytes)
    container = client.containers.run(
        image,
        ["python3", "-m", "http.server", str(PORT), "--directory", "/srv"],
        detach=True,
        labels={TEST_LABEL: "1"},
        mounts=[docker.types.Mount("/srv", str(root), type="bind", read_only=True)],
        read_only=True,
        cap_drop=["ALL"],
    )
    try:
        container.reload()
        settings = container.attrs["NetworkSettings"]
        network = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        server = EgressServer(
            address=settings["IPAddress"],
            gateway=settings["Gateway"],
            subnet=str(ipaddress.ip_network(network["Subnet"])),
        )
        _wait_serving(server)
        yield server
    finally:
        container.remove(force=True)


def _wait_serving(server: EgressServer, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://{server.address}:{PORT}/hello", timeout=2).content == HELLO:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)
