"""The Debian base every sandbox image is built FROM: the official one if pulled, else made
offline with debootstrap once and kept as an image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

from executor_service.errors import SandboxError
from executor_service.images.engine import find_image

Log = Callable[[str], None]

# Used unchanged when present (a machine that can reach a registry pulled it); otherwise the
# builder makes OFFLINE_BASE with debootstrap once and reuses it. scripts/setup.sh and
# scripts/compose-check.sh name both too.
OFFICIAL_BASE = "debian:bookworm-slim"
OFFLINE_BASE = "agent-sandbox/base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# The official image's PATH: the Dockerfiles' RUN steps need the sbin tools (useradd, groupadd).
_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DEB_LINE = re.compile(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)")


def ensure_base_image(
    client: docker.DockerClient, *, log: Log = print, offline_base: str = OFFLINE_BASE
) -> str:
    """The reference of a Debian bookworm base to build FROM, making it offline if need be."""
    for candidate in (OFFICIAL_BASE, offline_base):
        if find_image(client, candidate) is not None:
            return candidate
    log(f"no {OFFICIAL_BASE} or {offline_base} here: making {offline_base} with debootstrap")
    _make_offline_base(client, offline_base, log)
    return offline_base


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host's apt uses, so debootstrap fetches from the same place."""
    deb822 = apt_dir / "sources.list.d" / "debian.sources"
    if deb822.is_file():
        for line in deb822.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "uris" and value.split():
                return value.split()[0]
    legacy = apt_dir / "sources.list"
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            match = _DEB_LINE.match(line.strip())
            if match:
                return match.group(1)
    return DEFAULT_MIRROR


def _make_offline_base(client: docker.DockerClient, tag: str, log: Log) -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            f"no Debian base image here and making one offline needs root (debootstrap): "
            f"run `sudo scripts/setup.sh` once, or provide {OFFICIAL_BASE} "
            f"(docker pull, or docker load from a saved image)"
        )
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise SandboxError("making the Debian base needs debootstrap: apt-get install debootstrap")
    mirror = apt_mirror()
    # /var/tmp, not /tmp: /tmp is often a tmpfs mounted noexec or nodev, and debootstrap needs both.
    root = Path(tempfile.mkdtemp(prefix="agent-sandbox-base-", dir="/var/tmp"))
    try:
        started = time.monotonic()
        log(f"debootstrap --variant=minbase {SUITE} {root} {mirror}")
        _stream([debootstrap, "--variant=minbase", SUITE, str(root), mirror], log)
        _neutralise(root)
        log(f"debootstrap took {time.monotonic() - started:.1f} s; importing as {tag}")
        _import(client, root, tag)
        log(f"{tag}: made in {time.monotonic() - started:.1f} s")
    finally:
        _unmount_below(root)
        try:
            shutil.rmtree(root)
        except OSError as exc:
            log(f"could not remove {root}: {exc}")


def _neutralise(root: Path) -> None:
    """Drop the download caches and anything of this host that debootstrap copied in."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in root.glob(pattern):
            path.unlink()
    (root / "etc" / "resolv.conf").write_text("")
    (root / "etc" / "hostname").write_text("sandbox\n")
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")


def _import(client: docker.DockerClient, root: Path, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    archive = ["tar", "--numeric-owner", "-C", str(root), "-c", "."]
    with subprocess.Popen(archive, stdout=subprocess.PIPE) as tar:  # noqa: S603 - a fixed argument list
        client.api.import_image_from_stream(
            tar.stdout,
            repository=repository,
            tag=version,
            changes=[f"ENV PATH={_ROOT_PATH}", 'CMD ["bash"]'],
        )
    if tar.returncode != 0:
        raise SandboxError(f"tar of {root} failed with exit code {tar.returncode}")
    if find_image(client, tag) is None:
        raise SandboxError(f"importing {tag}: the engine reported success but has no such image")


def _stream(command: list[str], log: Log) -> None:
    last = "no output"
    with subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout or ():
            if line.strip():
                last = line.rstrip()
                log(last)
    if process.returncode != 0:
        raise SandboxError(f"{Path(command[0]).name} failed ({process.returncode}): {last}")


def _unmount_below(root: Path) -> None:
    """Undo mounts a failed debootstrap left inside its target, before the tree is deleted."""
    prefix = f"{root}/"
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if len(line.split()) > 1 and line.split()[1].startswith(prefix)
    ]
    for mountpoint in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mountpoint], check=False)  # noqa: S603, S607
