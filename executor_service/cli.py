"""`executor-service`: serve the API, run a worker, run both, manage keys, build images, reap,
serve MCP over stdio."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from executor_service import __version__
from executor_service.errors import ConfigError, InvalidRequest, ServiceError
from executor_service.jobs.ids import utcnow
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.store import KeyStore
from executor_service.jobs.tenant import KEY_PREFIX, ApiKey, new_key
from executor_service.logging import configure_logging
from executor_service.settings import Settings

# The key `executor-service mcp` acts as: a secret, so never a command-line argument.
MCP_KEY_VARIABLE = "EXECUTOR_MCP_API_KEY"
# Where `serve` and `up` keep this state directory's key (README: export KEY=$(cat ...)).
FIRST_KEY_FILE = "first-key"


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _add_listen_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", help="address the API binds (default: EXECUTOR_HOST, 127.0.0.1)")
    command.add_argument(
        "--port", type=_port, help="port of the API (default: EXECUTOR_PORT, 8000)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="executor-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    _add_listen_options(serve)
    worker = commands.add_parser("worker", help="run a Celery worker that executes code")
    worker.add_argument("--concurrency", type=int, help="parallel executions (default: settings)")
    worker.add_argument(
        "--unsupervised", action="store_true", help="run Celery in this process, no restarts"
    )
    up = commands.add_parser("up", help="a worker subprocess and the API: the one start command")
    up.add_argument("--concurrency", type=int)
    _add_listen_options(up)
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create", help="create a key and print it once (the key alone on stdout, notes on stderr)"
    )
    create.add_argument("--tenant", required=True)
    create.add_argument("--policies", help="comma-separated policy names (default: all)")
    create.add_argument("--max-concurrency", type=int, default=8, help="queued or running")
    create.add_argument("--max-sessions", type=int, default=8, help="sessions open at once")
    create.add_argument("--max-event-streams", type=int, default=32, help="SSE streams at once")
    create.add_argument(
        "--max-stored-bytes", type=int, default=512 * 1024 * 1024, help="bytes of kept results"
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id (or the key itself)")
    revoke.add_argument("key_id", help="the id `keys list` shows; a whole key works too")
    key_commands.add_parser("list", help="list keys (ids and tenants, never the keys)")
    images = commands.add_parser("images", help="sandbox images")
    image_commands = images.add_subparsers(dest="images_command", required=True)
    build = image_commands.add_parser(
        "build", help="build the catalogue's images locally (skips those already up to date)"
    )
    build.add_argument("names", nargs="*", metavar="NAME", help="images to build (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    commands.add_parser("reap", help="remove every sandbox past its deadline")
    commands.add_parser(
        "mcp", help=f"serve the MCP tools over stdio, as the key in ${MCP_KEY_VARIABLE}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Flags win over EXECUTOR_* variables; passed to Settings so they are validated the same way.
    overrides: dict[str, Any] = {
        name: value for name in ("host", "port") if (value := getattr(args, name, None)) is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings)
    try:
        return _run(args, settings)
    except ServiceError as exc:
        print(f"executor-service: {exc.code}: {exc.message}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        check_store(settings)
        ensure_first_key(settings)
        return _serve(settings)
    if args.command == "worker":
        check_store(settings)
        if args.unsupervised:
            return _worker(settings, args.concurrency)
        from executor_service.worker.supervisor import supervise

        child = [sys.executable, "-m", "executor_service.cli", "worker", "--unsupervised"]
        if args.concurrency:
            child.append(f"--concurrency={args.concurrency}")
        return supervise(child)
    if args.command == "up":
        check_store(settings)
        return _up(settings, args.concurrency)
    if args.command == "keys":
        return _keys(args, settings)
    if args.command == "images":
        from executor_service.images.command import build_command

        return build_command(settings, args.names, force=args.force)
    if args.command == "reap":
        from executor_service.sandbox.docker_runner import create_runner

        print(f"removed {create_runner(settings).reap()} sandboxes")
        return 0
    if args.command == "mcp":
        check_store(settings)
        return _mcp(settings)
    return 2


def _mcp(settings: Settings) -> int:
    """Stdio belongs to the protocol here: nothing but MCP may reach stdout."""
    from executor_service.api.app import build_services
    from executor_service.api.mcp.stdio import serve_stdio

    api_key = os.environ.get(MCP_KEY_VARIABLE, "").strip()
    if not api_key:
        raise ConfigError(
            f"set {MCP_KEY_VARIABLE} to an API key (`executor-service keys create --tenant ...`)"
        )
    serve_stdio(build_services(settings), api_key)
    return 0


def check_store(settings: Settings) -> None:
    """Refuse to start on a Redis that would lose what the service accepts."""
    health = redis_stores(settings)[0].health
    if not health.ping():
        raise ConfigError(f"no Redis answers at {settings.redis_url}")
    if settings.require_persistence and not health.persistent():
        raise ConfigError(
            f"Redis at {settings.redis_url} would lose accepted work on a restart: turn on "
            "appendonly (AOF) and use maxmemory-policy noeviction (or a volatile-* policy), or "
            "set EXECUTOR_REQUIRE_PERSISTENCE=false for a throw-away setup"
        )


def _serve(settings: Settings) -> int:
    from executor_service.api.server import serve

    serve(settings)
    return 0


def _worker(settings: Settings, concurrency: int | None) -> int:
    from executor_service.worker.celery_app import create_celery

    app = create_celery(settings)
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--loglevel={settings.log_level.upper()}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",  # Celery's event heartbeat; nobody listens (ours is in the store)
        "--hostname=agent-sandbox@%h-" + str(os.getpid()),
    ]
    app.worker_main(argv)
    return 0


def _up(settings: Settings, concurrency: int | None) -> int:
    """A worker in a child process and the API in this one; stopping the API stops the worker."""
    key = ensure_first_key(settings)
    command = [sys.executable, "-m", "executor_service.cli", "worker"]
    if concurrency:
        command.append(f"--concurrency={concurrency}")
    worker = subprocess.Popen(command)  # noqa: S603 - our own module, fixed arguments
    print(f"agent-sandbox API on http://{settings.host}:{settings.port}", flush=True)
    path = settings.state_dir / FIRST_KEY_FILE
    if key is None and path.exists():
        print(f"API key: in {path} (export KEY=$(cat {path}))", flush=True)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; make that an exit that runs
    # the `finally` below, so the worker is never left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return _serve(settings)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def ensure_first_key(settings: Settings) -> str | None:
    """Make sure this state directory holds a key its Redis knows; return a key made now.

    The first start on a Redis makes its first key. Later checkouts (state directories) on the
    same Redis used to get nothing, so the README's `export KEY=$(cat .state/first-key)` read a
    missing file and answered 401: each state directory without a key now gets one of its own,
    of tenant "default" like the first. Whoever can start the service can reach its Redis and
    make keys anyway, so this grants nothing new. A key already in the file that the Redis does
    not know (revoked, or made for another Redis) is never replaced, so a revocation sticks;
    the message says how to get a new one.
    """
    path = settings.state_dir / FIRST_KEY_FILE
    keys = redis_stores(settings)[0].keys
    kept = path.read_text().strip() if path.exists() else None
    if kept and keys.get(kept) is not None:
        return None
    key_id, key = new_key()
    record = ApiKey(key_id=key_id, tenant="default", policies=None, created_at=utcnow())
    if keys.create_first(key, record):
        _write_key(path, key, replace=True)
        _announce(key, path, "the first API key of this Redis (tenant 'default')")
        return key
    if kept:
        print(
            f"warning: the key in {path} is unknown to this service's Redis (revoked, or made "
            "for another Redis). Make one with `executor-service keys create --tenant default` "
            "and write it there, or delete the file and the next start makes one.",
            file=sys.stderr,
            flush=True,
        )
        return None
    if not _claim_state_dir(keys, path, key, record):
        return None
    _announce(key, path, "an API key for this state directory (tenant 'default')")
    return key


def _claim_state_dir(keys: KeyStore, path: Path, key: str, record: ApiKey) -> bool:
    """Add the key, then write it only if no other start wrote the file meanwhile."""
    keys.add(key, record)
    if _write_key(path, key, replace=False):
        return True
    keys.revoke(record.key_id)  # another process made this directory's key first
    return False


def _write_key(path: Path, key: str, *, replace: bool) -> bool:
    """Write the key mode 0600; without `replace`, False if the file already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return True


def _announce(key: str, path: Path, what: str) -> None:
    print(f"Created {what}; it is shown once:\n{key}", flush=True)
    print(f"(also written to {path}, mode 0600: export KEY=$(cat {path}))", flush=True)


def _shown(text: str) -> str:
    """A key cut to its public prefix (`ask_<id>_`) so it never reaches a terminal or a log."""
    parts = text.split("_", 2)
    if text.startswith(KEY_PREFIX + "_") and len(parts) == 3:
        return f"{parts[0]}_{parts[1]}_…"
    return text


def _key_id(text: str) -> str:
    """A key id, or the id a whole key carries (keys embed their id: `ask_<id>_<secret>`)."""
    parts = text.split("_", 2)
    return parts[1] if text.startswith(KEY_PREFIX + "_") and len(parts) == 3 else text


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    keys = redis_stores(settings)[0].keys
    if args.keys_command == "create":
        policies = (
            tuple(name.strip() for name in args.policies.split(",") if name.strip())
            if args.policies
            else None
        )
        known = Planner.load(settings).policies
        unknown = sorted(set(policies or ()) - set(known))
        if unknown:
            raise InvalidRequest(f"no such policies: {', '.join(unknown)}", field="policies")
        key_id, key = new_key()
        record = ApiKey(
            key_id=key_id,
            tenant=args.tenant,
            policies=policies,
            max_concurrency=args.max_concurrency,
            max_sessions=args.max_sessions,
            max_event_streams=args.max_event_streams,
            max_stored_bytes=args.max_stored_bytes,
            created_at=utcnow(),
        )
        keys.add(key, record)
        allowed = ",".join(policies) if policies is not None else "all"
        # The key alone on stdout, so `KEY=$(executor-service keys create ...)` captures it.
        print(
            f"Created key {key_id} for tenant {args.tenant!r} (policies: {allowed}). "
            "It is shown once, here; only its hash is stored. Revoke it with "
            f"`executor-service keys revoke {key_id}`.",
            file=sys.stderr,
            flush=True,
        )
        print(key)
        return 0
    if args.keys_command == "revoke":
        key_id = _key_id(args.key_id)
        if keys.revoke(key_id):
            print(f"revoked {key_id}")
            return 0
        print(f"no key with id {_shown(args.key_id)} (see `keys list`)", file=sys.stderr)
        return 1
    print("KEY_ID\tTENANT\tPOLICIES\tMAX_CONCURRENCY\tCREATED_AT")
    for record in keys.all():
        allowed = ",".join(record.policies) if record.policies is not None else "*"
        print(
            f"{record.key_id}\t{record.tenant}\t{allowed}\t"
            f"{record.max_concurrency}\t{record.created_at.isoformat()}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
