"""`executor-service`: serve the API, run a worker, run both, manage keys, build images, reap,
serve MCP over stdio."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from executor_service.errors import ConfigError, InvalidRequest, ServiceError
from executor_service.jobs.ids import utcnow
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.logging import configure_logging
from executor_service.settings import Settings

# The key `executor-service mcp` acts as: a secret, so never a command-line argument.
MCP_KEY_VARIABLE = "EXECUTOR_MCP_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="executor-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    worker = commands.add_parser("worker", help="run a Celery worker that executes code")
    worker.add_argument("--concurrency", type=int, help="parallel executions (default: settings)")
    worker.add_argument(
        "--unsupervised", action="store_true", help="run Celery in this process, no restarts"
    )
    up = commands.add_parser("up", help="a worker subprocess and the API: the one start command")
    up.add_argument("--concurrency", type=int)
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--policies", help="comma-separated policy names (default: all)")
    create.add_argument("--max-concurrency", type=int, default=8, help="queued or running")
    create.add_argument("--max-sessions", type=int, default=8, help="sessions open at once")
    create.add_argument("--max-event-streams", type=int, default=32, help="SSE streams at once")
    create.add_argument(
        "--max-stored-bytes", type=int, default=512 * 1024 * 1024, help="bytes of kept results"
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    key_commands.add_parser("list", help="list keys (ids and tenants, never the keys)")
    images = commands.add_parser("images", help="sandbox images")
    image_commands = images.add_subparsers(dest="images_command", required=True)
    build = image_commands.add_parser("build", help="build the catalogue's images locally")
    build.add_argument("--force", action="store_true")
    commands.add_parser("reap", help="remove every sandbox past its deadline")
    commands.add_parser(
        "mcp", help=f"serve the MCP tools over stdio, as the key in ${MCP_KEY_VARIABLE}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
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
        from executor_service.sandbox.images import build_images

        build_images(settings, force=args.force)
        return 0
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
    if key is None:
        print(f"API key: see {settings.state_dir / 'first-key'} or `keys create`", flush=True)
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
    """On the very first start, make a key for tenant "default", print it once, keep it 0600."""
    keys = redis_stores(settings)[0].keys
    key_id, key = new_key()
    record = ApiKey(key_id=key_id, tenant="default", policies=None, created_at=utcnow())
    if not keys.create_first(key, record):
        return None
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "first-key"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    print(f"Created the first API key (tenant 'default'); it is shown once:\n{key}", flush=True)
    print(f"(also written to {path}, mode 0600)", flush=True)
    return key


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
        print(key)
        return 0
    if args.keys_command == "revoke":
        if keys.revoke(args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    for record in keys.all():
        allowed = ",".join(record.policies) if record.policies is not None else "*"
        print(
            f"{record.key_id}\t{record.tenant}\tpolicies={allowed}\t"
            f"max_concurrency={record.max_concurrency}\t{record.created_at.isoformat()}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
