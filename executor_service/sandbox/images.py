"""Builds the catalogue's sandbox images locally, making a Debian base offline when none exists."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import requests
from docker.models.images import Image

from executor_service.errors import ConfigError, SandboxError, ServiceError
from executor_service.sandbox.catalogue import Catalogue, ImageSpec, load_catalogue
from executor_service.settings import Settings

Log = Callable[[str], None]

# Used unchanged when present (a machine that can reach a registry pulled it); otherwise the
# builder makes OFFLINE_BASE with debootstrap once and reuses it.
OFFICIAL_BASE = "debian:bookworm-slim"
OFFLINE_BASE = "agent-sandbox/base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

IMAGE_LABEL = "agent-sandbox.image"
SOURCE_HASH_LABEL = "agent-sandbox.source-hash"
# Bump when the way images are built changes (build arguments, labels), so every image rebuilds.
_RECIPE = "1"

# The official image's PATH: the Dockerfiles' RUN steps need the sbin tools (useradd, groupadd).
_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DEB_LINE = re.compile(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)")


def build_images(
    settings: Settings,
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    log: Log = print,
    offline_base: str = OFFLINE_BASE,
) -> list[str]:
    """Build the named catalogue images (all by default) and return the references rebuilt.

    An image whose tag already carries the source hash of its folder and base is skipped, so a
    second call returns an empty list and costs a few inspections. `offline_base` names the tag
    under which a debootstrapped base is cached (tests use another one).

    Raises:
        ConfigError: the catalogue is unreadable or names an image it does not hold.
        SandboxError: the engine, debootstrap or a build failed.
    """
    catalogue = load_catalogue(settings.images_dir)
    selected = _select(catalogue, names)
    built: list[str] = []
    with _docker_errors(), _client(settings) as client:
        base = ensure_base_image(client, log=log, offline_base=offline_base)
        base_id: str = client.images.get(base).attrs["Id"]
        for name in selected:
            spec = catalogue.images[name]
            ref = catalogue.image_ref(settings.image_prefix, name)
            folder = settings.images_dir / name
            digest = source_hash(folder, base_id=base_id, spec=spec)
            previous = _find(client, ref)
            if not force and previous and previous.labels.get(SOURCE_HASH_LABEL) == digest:
                log(f"{ref}: up to date ({digest[:12]}), skipped")
                continue
            log(f"{ref}: building from {folder} on {base}")
            started = time.monotonic()
            _build(client, folder, ref, base=base, spec=spec, digest=digest, log=log)
            log(f"{ref}: built in {time.monotonic() - started:.1f} s")
            if previous is not None:
                _drop_if_untagged(client, previous.attrs["Id"], log)
            built.append(ref)
    return built


def images_present(settings: Settings) -> dict[str, bool]:
    """Which catalogue images exist locally, by catalogue name."""
    catalogue = load_catalogue(settings.images_dir)
    with _docker_errors(), _client(settings) as client:
        return {
            name: _find(client, catalogue.image_ref(settings.image_prefix, name)) is not None
            for name in catalogue.images
        }


def ensure_base_image(
    client: docker.DockerClient, *, log: Log = print, offline_base: str = OFFLINE_BASE
) -> str:
    """The reference of a Debian bookworm base to build FROM, making it offline if need be."""
    for candidate in (OFFICIAL_BASE, offline_base):
        if _find(client, candidate) is not None:
            return candidate
    log(f"no {OFFICIAL_BASE} or {offline_base} here: making {offline_base} with debootstrap")
    _make_offline_base(client, offline_base, log)
    return offline_base


def source_hash(folder: Path, *, base_id: str, spec: ImageSpec) -> str:
    """A digest of everything an image is built from: its folder's files, base and version."""
    if not (folder / "Dockerfile").is_file():
        raise ConfigError(f"{folder}: no Dockerfile for this catalogue image")
    digest = hashlib.sha256()
    for part in (_RECIPE, base_id, spec.version):
        digest.update(part.encode() + b"\0")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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


def _select(catalogue: Catalogue, names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(catalogue.images)
    unknown = [name for name in names if name not in catalogue.images]
    if unknown:
        known = ", ".join(catalogue.images)
        raise ConfigError(f"unknown image {unknown[0]!r}; the catalogue holds: {known}")
    return list(dict.fromkeys(names))


@contextmanager
def _client(settings: Settings) -> Iterator[docker.DockerClient]:
    # Builds and imports stream for minutes; the long timeout bounds a silent engine, not work.
    if settings.docker_url:
        client = docker.DockerClient(base_url=settings.docker_url, timeout=600)
    else:
        client = docker.from_env(timeout=600)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _docker_errors() -> Iterator[None]:
    """Translate the engine's errors (docker-py's own, or the HTTP layer's) into SandboxError."""
    try:
        yield
    except ServiceError:
        raise
    except docker.errors.DockerException as exc:
        raise SandboxError(f"Docker engine: {exc}") from exc
    except requests.RequestException as exc:
        raise SandboxError(f"cannot talk to the Docker engine: {exc}") from exc


def _find(client: docker.DockerClient, ref: str) -> Image | None:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _build(
    client: docker.DockerClient,
    folder: Path,
    ref: str,
    *,
    base: str,
    spec: ImageSpec,
    digest: str,
    log: Log,
) -> None:
    # The low-level call streams the builder's output as it comes; images.build() only returns
    # the log once the build is over.
    chunks = client.api.build(
        path=str(folder),
        tag=ref,
        buildargs={"BASE_IMAGE": base, "IMAGE_VERSION": spec.version},
        labels={SOURCE_HASH_LABEL: digest},
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    for chunk in chunks:
        if "error" in chunk:
            raise SandboxError(f"building {ref}: {str(chunk['error']).strip()}")
        text = chunk.get("stream") or chunk.get("status")
        if text:
            for line in str(text).splitlines():
                if line.strip():
                    log(line)
    image = _find(client, ref)
    if image is None or image.labels.get(SOURCE_HASH_LABEL) != digest:
        raise SandboxError(f"building {ref}: the engine reported success but has no such image")


def _drop_if_untagged(client: docker.DockerClient, image_id: str, log: Log) -> None:
    """Remove the image a rebuild replaced, unless it is still tagged or used by a container."""
    try:
        old = client.images.get(image_id)
        if old.tags:
            return
        client.images.remove(image_id)
        log(f"removed the replaced image {image_id[:19]}")
    except docker.errors.ImageNotFound:
        return
    except docker.errors.APIError as exc:
        log(f"kept the replaced image {image_id[:19]}: {exc.explanation or exc}")


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
    if _find(client, tag) is None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m executor_service.sandbox.images [--force] [NAME...]`."""
    parser = argparse.ArgumentParser(
        prog="python -m executor_service.sandbox.images",
        description="Build the sandbox images of the catalogue (skips those already up to date).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="images to build (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        built = build_images(Settings(), args.names, force=args.force, log=log)
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"built: {', '.join(built) if built else 'nothing, all up to date'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
