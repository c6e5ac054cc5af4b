#!/usr/bin/env bash
# Makes this machine ready to run and test agent-sandbox: uv and the Python environment, a Docker
# engine, Redis, what an offline Debian base needs, the example data, headless Chromium for the
# browser tests, and the sandbox images.
#
# As root on a fresh Debian 12 it installs and starts what is missing (no systemd needed). As a
# user with Docker already running it uses what is there and installs nothing system-wide.
# Idempotent: a second run finds everything in place, changes nothing and takes seconds.
#
# gVisor: Debian's runsc is installed and registered with the engine as the runtime `runsc` (see
# step 2b), so a policy with `runtime: runsc` can run its sandboxes in gVisor's user-space kernel.
#
# Environment: EXECUTOR_REDIS_URL (default redis://127.0.0.1:6379/0) and the other EXECUTOR_*
# settings the image builder reads (EXECUTOR_IMAGE_PREFIX, EXECUTOR_DOCKER_URL).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
REDIS_URL="${EXECUTOR_REDIS_URL:-redis://127.0.0.1:6379/0}"
DATA_DIR=/srv/agent-sandbox/data
LOG_DIR=/var/log/agent-sandbox
DAEMON_JSON=/etc/docker/daemon.json
# ptrace: the kvm platform hangs in these VMs; network none: gVisor's own network stack fails on
# this kernel, and sandboxes have no network anyway.
RUNSC_ARGS=(--platform=ptrace --network=none --host-uds=open)
# Kept in step with executor_service/images/base.py (OFFICIAL_BASE, OFFLINE_BASE).
BASE_IMAGES=(debian:bookworm-slim agent-sandbox/base:bookworm)

started=$SECONDS
incomplete=()

say() { printf '[setup] %-9s %s\n' "$1" "$2"; }
die() {
    printf '[setup] error: %s\n' "$*" >&2
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. uv and the project's environment, exactly as locked.
step_uv() {
    if ! command -v uv >/dev/null 2>&1 && [ -x "$HOME/.local/bin/uv" ]; then
        PATH="$HOME/.local/bin:$PATH"
    fi
    if command -v uv >/dev/null 2>&1; then
        say uv "found $(uv --version)"
    else
        if ! python3 -m pip --version >/dev/null 2>&1; then
            is_root || die "uv is missing and python3 has no pip: install uv (pip install --user uv) and rerun"
            apt_install python3-pip
        fi
        local scope=(--user)
        is_root && scope=()
        # Debian marks its Python externally managed; uv is a self-contained binary, so the
        # override is safe here.
        PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
            python3 -m pip install --quiet "${scope[@]}" uv
        PATH="$HOME/.local/bin:$PATH"
        hash -r
        say uv "installed $(uv --version) with pip"
    fi
    uv sync --frozen --quiet
    say env "uv sync --frozen: .venv matches uv.lock"
}

# 2. A Docker engine: use one that answers; as root install and start dockerd if need be.
engine_answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

dockerd_alive() {
    [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null
}

step_docker() {
    if engine_answers; then
        say docker "engine answers (server $(docker version --format '{{.Server.Version}}'))"
        return
    fi
    is_root || die "no Docker engine answers and this is not root: start Docker (and make sure \
your user may use its socket, e.g. the docker group), or run this script as root on Debian 12"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        apt_install docker.io
        say docker "installed docker.io"
    fi
    local how="waited for the dockerd already starting"
    # The package's init script may have started one; never start a second.
    if ! dockerd_alive && ! engine_answers; then
        mkdir -p "$LOG_DIR"
        setsid nohup dockerd >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
        how="started dockerd (log: $LOG_DIR/dockerd.log)"
    fi
    local waited=0
    until engine_answers; do
        [ "$waited" -ge 60 ] && die "no answer from \`docker info\` within 60 s (dockerd pid \
$(cat /var/run/docker.pid 2>/dev/null || echo none); DOCKER_HOST=${DOCKER_HOST:-unset}); see $LOG_DIR/dockerd.log"
        sleep 1
        waited=$((waited + 1))
    done
    say docker "$how; engine answers after ${waited} s"
}

# 2b. gVisor: Debian's runsc, registered with the engine as the runtime `runsc`. The daemon.json
# entry is written before step 2 so a dockerd started there reads it; an engine already running
# is told to reload its configuration (SIGHUP), never restarted under other people's containers.
runsc_path() { command -v runsc 2>/dev/null || true; }

# Merges the runsc entry into daemon.json, keeping every other key and any further runsc flags
# (e.g. --host-uds=...); prints what it did. Writes nothing when the entry is already right.
runsc_merge() {
    uv run --frozen --no-sync python - "$DAEMON_JSON" "$1" "${RUNSC_ARGS[@]}" <<'PY'
import json
import os
import sys
from pathlib import Path

path, binary, required = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
config = json.loads(path.read_text()) if path.exists() else {}
entry = config.setdefault("runtimes", {}).setdefault("runsc", {})
keys = {arg.split("=", 1)[0] for arg in required}
kept = [arg for arg in entry.get("runtimeArgs", []) if arg.split("=", 1)[0] not in keys]
wanted = {"path": binary, "runtimeArgs": required + kept}
if entry == wanted:
    print("unchanged")
    sys.exit(0)
entry.clear()
entry.update(wanted)
path.parent.mkdir(parents=True, exist_ok=True)
temporary = path.with_name(path.name + ".tmp")
temporary.write_text(json.dumps(config, indent=4) + "\n")
os.chmod(temporary, 0o644)
os.replace(temporary, path)
print("written")
PY
}

# The engine's loaded runsc entry: "absent", "stale" (not as in daemon.json) or "as-configured"
# followed by its path and arguments.
runsc_in_engine() {
    docker info --format '{{json .Runtimes}}' 2>/dev/null |
        uv run --frozen --no-sync python -c '
import json, sys
from pathlib import Path

loaded = json.loads(sys.stdin.read() or "{}").get("runsc")
path = Path(sys.argv[1])
wanted = json.loads(path.read_text()).get("runtimes", {}).get("runsc") if path.exists() else None
if loaded is None:
    print("absent")
elif wanted is None or {"runtimeArgs": [], **loaded} == {"runtimeArgs": [], **wanted}:
    print("as-configured", loaded["path"], *loaded.get("runtimeArgs", []))
else:
    print("stale")
' "$DAEMON_JSON"
}

register_runsc() {
    is_root || return 0
    if [ -z "$(runsc_path)" ]; then
        apt_install runsc
        say runsc "installed Debian's runsc ($(runsc_path))"
    fi
    if [ "$(runsc_merge "$(runsc_path)")" = written ]; then
        say runsc "wrote runtime runsc ($(runsc_path) ${RUNSC_ARGS[*]}) into $DAEMON_JSON"
    fi
}

step_runsc() {
    local state loaded
    read -r state loaded < <(runsc_in_engine)
    if [ "$state" = as-configured ]; then
        say runsc "engine lists runtime runsc ($loaded)"
        return
    fi
    if ! is_root; then
        incomplete+=("gVisor: the engine's runtime runsc is $state (run this script as root once)")
        say runsc "engine's runtime runsc is $state"
        return
    fi
    dockerd_alive || die "runsc is in $DAEMON_JSON but the engine's entry is $state, and no \
dockerd pid in /var/run/docker.pid to reload: restart the engine yourself"
    kill -HUP "$(cat /var/run/docker.pid)"
    local waited=0
    until read -r state loaded < <(runsc_in_engine) && [ "$state" = as-configured ]; do
        [ "$waited" -ge 10 ] && die "dockerd did not load runsc within 10 s of SIGHUP; check \
$DAEMON_JSON and $LOG_DIR/dockerd.log"
        sleep 1
        waited=$((waited + 1))
    done
    say runsc "dockerd reloaded $DAEMON_JSON (SIGHUP); engine lists runsc ($loaded) after \
${waited} s"
}

# 3. Redis at EXECUTOR_REDIS_URL; tests also need the redis-server binary for their own servers.
redis_endpoint() {
    uv run --frozen --no-sync python - "$REDIS_URL" <<'PY'
import sys
from urllib.parse import urlsplit

url = urlsplit(sys.argv[1])
print(url.scheme, url.hostname or "", url.port or 6379)
PY
}

redis_answers() {
    uv run --frozen --no-sync python - "$REDIS_URL" <<'PY'
import sys

import redis

try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2, socket_timeout=2).ping()
except (redis.RedisError, OSError):
    sys.exit(1)
PY
}

# A local Redis that answers but would lose work on a restart gets AOF and no eviction turned
# on (at run time; the service refuses to start without them). A remote one is only reported.
redis_persist() {
    uv run --frozen --no-sync python - "$REDIS_URL" <<'PY'
import sys
from urllib.parse import urlsplit

import redis

client = redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2, socket_timeout=5)
aof = int(client.info("persistence").get("aof_enabled", 0)) == 1
policy = str(client.info("memory").get("maxmemory_policy", ""))
local = urlsplit(sys.argv[1]).hostname in {"127.0.0.1", "localhost", "::1"}
changed = []
if local and not aof:
    client.config_set("appendonly", "yes")
    changed.append("appendonly yes")
if local and policy.startswith("allkeys"):
    client.config_set("maxmemory-policy", "noeviction")
    changed.append("maxmemory-policy noeviction")
if changed:
    print("turned on " + ", ".join(changed))
elif aof and not policy.startswith("allkeys"):
    print("persistent (AOF on, no eviction of unexpiring keys)")
else:
    print("NOT persistent: the service will refuse it (set appendonly yes, noeviction)")
PY
}

step_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        if is_root; then
            apt_install redis-server
            say redis "installed redis-server"
        else
            incomplete+=("redis-server binary (the tests start their own servers): apt-get install redis-server")
        fi
    fi
    if redis_answers; then
        say redis "answers at $REDIS_URL; $(redis_persist)"
        return
    fi
    local scheme host port
    read -r scheme host port < <(redis_endpoint)
    case "$host" in 127.0.0.1 | localhost | ::1) ;; *) host="" ;; esac
    if ! is_root || [ "$scheme" != redis ] || [ -z "$host" ] || ! command -v redis-server >/dev/null; then
        incomplete+=("Redis at $REDIS_URL (start one, or set EXECUTOR_REDIS_URL)")
        say redis "nothing answers at $REDIS_URL and this script will not start it"
        return
    fi
    mkdir -p "$LOG_DIR" /var/lib/agent-sandbox/redis
    # AOF (fsync every second) and no eviction: accepted executions and API keys survive a
    # restart, and nothing queued is ever dropped for memory (a full Redis answers 503 instead).
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --daemonize yes \
        --dir /var/lib/agent-sandbox/redis --logfile "$LOG_DIR/redis.log" \
        --appendonly yes --appendfsync everysec --maxmemory-policy noeviction
    local waited=0
    until redis_answers; do
        [ "$waited" -ge 10 ] && die "redis-server did not answer within 10 s; see $LOG_DIR/redis.log"
        sleep 1
        waited=$((waited + 1))
    done
    say redis "started redis-server on 127.0.0.1:$port (log: $LOG_DIR/redis.log)"
}

# 4. debootstrap, only when no Debian base image exists to build the sandbox images from.
step_base() {
    local image
    for image in "${BASE_IMAGES[@]}"; do
        if docker image inspect "$image" >/dev/null 2>&1; then
            say base "$image present"
            return
        fi
    done
    if command -v debootstrap >/dev/null 2>&1; then
        say base "no base image yet; debootstrap present to make one"
    elif is_root; then
        apt_install debootstrap
        say base "no base image yet; installed debootstrap to make one"
    else
        die "no Debian base image (${BASE_IMAGES[*]}) and not root to debootstrap one: \
docker load a saved debian:bookworm-slim, or run this script as root once"
    fi
}

# 5. The example data set that the data-readonly policy mounts read-only at /data.
step_data() {
    if [ -f "$DATA_DIR/example.csv" ]; then
        say data "$DATA_DIR/example.csv present"
    elif is_root; then
        install -d -m 0755 "$DATA_DIR"
        cat >"$DATA_DIR/example.csv" <<'CSV'
city,country,population_millions,area_km2
Tokyo,Japan,37.2,2194
Delhi,India,32.9,1484
Shanghai,China,29.2,6341
Sao Paulo,Brazil,22.6,1521
Mexico City,Mexico,22.3,1485
Cairo,Egypt,22.2,3085
Mumbai,India,21.3,603
Beijing,China,21.8,16411
CSV
        chmod 0644 "$DATA_DIR/example.csv"
        say data "wrote $DATA_DIR/example.csv"
    else
        incomplete+=("$DATA_DIR (the data-readonly policy's mount source; needs root)")
        say data "skipped: $DATA_DIR needs root"
    fi
}

# 5b. Headless Chromium and its driver, for the tests that load pages in a real browser (/docs,
# the studio); Selenium is given the driver's path, so it never downloads one.
step_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        say browser "chromium and chromedriver present"
    elif is_root; then
        apt_install chromium chromium-driver
        say browser "installed Debian's chromium and chromium-driver"
    else
        incomplete+=("chromium and chromedriver (browser tests): apt-get install chromium chromium-driver")
        say browser "skipped: installing chromium needs root"
    fi
}

# 5c. Debian's docker-compose (1.29): the deployment check (scripts/compose-check.sh) brings the
# compose stack up with it.
step_compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        say compose "docker-compose present ($(docker-compose version --short 2>/dev/null))"
    elif is_root; then
        apt_install docker-compose
        say compose "installed Debian's docker-compose"
    else
        incomplete+=("docker-compose (the deployment check): apt-get install docker-compose")
        say compose "skipped: installing docker-compose needs root"
    fi
}

# 6. The sandbox images; the builder skips those whose sources did not change.
step_images() {
    mkdir -p .state
    local log=.state/images-build.log
    if ! uv run --frozen --no-sync executor-service images build >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "building the sandbox images failed; full log: $log"
    fi
    local line
    while IFS= read -r line; do
        say images "$line"
    done < <(grep -E '^(no |debootstrap took|[^ ]+: (built in|up to date|made in))' "$log")
}

step_uv
register_runsc
step_docker
step_runsc
step_redis
step_base
step_data
step_browser
step_compose
step_images

if [ "${#incomplete[@]}" -gt 0 ]; then
    for item in "${incomplete[@]}"; do
        say missing "$item"
    done
    say total "incomplete after $((SECONDS - started)) s"
    exit 1
fi
say total "everything in place after $((SECONDS - started)) s"
