#!/usr/bin/env bash
# Proves compose.yaml works: builds its images, brings the stack up under a project name of its
# own, waits for every container to be healthy and the API ready, creates a key the way an
# operator would (`docker-compose exec api executor-service keys create`), runs print(1) through
# the API and a refused egress request through the worker's proxy, checks the containers'
# hardening, and tears everything down. Whatever happens, a trap removes this run's containers,
# network and volumes, and the sandboxes its workers made; a leftover after `down -v` fails the
# check.
#
# Runs beside anything else on the engine: a unique project name (containers, network, volumes),
# a free port on 127.0.0.1, its own sandbox instance label and egress directory. It never touches
# what it did not create; the images stay, tagged :compose-check, as the cache of the next run.
#
# Needs: scripts/setup.sh done (the sandbox images and the Debian base), docker-compose (Debian's
# 1.29) or `docker compose` (COMPOSE_CHECK_COMPOSE names another binary), curl, and Debian 12's
# python3 (see deploy/wheels.sh).
# Exit status: 0 passed, 1 failed, 2 a prerequisite is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
READY_WITHIN_S=${COMPOSE_CHECK_READY_WITHIN_S:-240}
started=$SECONDS

say() { printf '[compose-check] %s\n' "$*"; }
fail() {
    printf '[compose-check] FAILED: %s\n' "$*" >&2
    exit 1
}
need() {
    printf '[compose-check] missing: %s\n' "$*" >&2
    exit 2
}

if [ -n "${COMPOSE_CHECK_COMPOSE:-}" ]; then
    read -r -a COMPOSE <<<"$COMPOSE_CHECK_COMPOSE" # e.g. "docker compose", to try the other one
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    need "docker-compose (apt-get install docker-compose) or the Compose v2 plugin"
fi
command -v curl >/dev/null 2>&1 || need "curl"
docker info >/dev/null 2>&1 || need "a Docker engine that answers"
for image in agent-sandbox/python:1 agent-sandbox/shell:1; do
    docker image inspect "$image" >/dev/null 2>&1 || need "sandbox image $image (run scripts/setup.sh)"
done
# The same choice as executor_service/sandbox/images.py: the official base where one was pulled,
# else the one setup.sh made offline.
if [ -z "${AGENT_SANDBOX_BASE_IMAGE:-}" ]; then
    for base in debian:bookworm-slim agent-sandbox/base:bookworm; do
        if docker image inspect "$base" >/dev/null 2>&1; then
            AGENT_SANDBOX_BASE_IMAGE=$base
            break
        fi
    done
fi
[ -n "${AGENT_SANDBOX_BASE_IMAGE:-}" ] || need "a Debian base image (run scripts/setup.sh)"

PROJECT="ascheck$$$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# compose.yaml puts the workers' egress directory here, named for the instance.
EGRESS_PARENT=/run/agent-sandbox/$PROJECT
LOG=$(mktemp) # the builder's and up's chatter, shown only when they fail
export AGENT_SANDBOX_BASE_IMAGE AGENT_SANDBOX_PORT=$PORT AGENT_SANDBOX_INSTANCE=$PROJECT \
    AGENT_SANDBOX_TAG=compose-check
compose() { "${COMPOSE[@]}" --project-name "$PROJECT" --file "$ROOT/compose.yaml" "$@"; }
say "project $PROJECT, API on 127.0.0.1:$PORT, base $AGENT_SANDBOX_BASE_IMAGE, ${COMPOSE[*]}"

# What this run made and `down -v` did not remove, by the labels compose and the workers set.
leftovers() {
    {
        docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/container /'
        docker ps -aq --filter "label=agent-sandbox.managed=$PROJECT" | sed 's/^/sandbox /'
        docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/network /'
        docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/volume /'
    } 2>/dev/null
}

teardown() {
    local code=$? left
    if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
        say "logs of the failed stack (last 40 lines each):"
        compose logs --no-color --tail=40 >&2 2>&1 || true
    fi
    compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
    left=$(leftovers)
    if [ -n "$left" ]; then
        printf '[compose-check] FAILED: left after down -v:\n%s\n' "$left" >&2
        # Removed all the same: each carries this run's unique project or instance name.
        while read -r kind id; do
            case "$kind" in
                container | sandbox) docker rm -f "$id" >/dev/null 2>&1 || true ;;
                network) docker network rm "$id" >/dev/null 2>&1 || true ;;
                volume) docker volume rm -f "$id" >/dev/null 2>&1 || true ;;
            esac
        done <<<"$left"
        [ "$code" -eq 0 ] && code=1
    fi
    # Made by the engine as root for the bind mount: as another user this may stay behind.
    rm -rf "$EGRESS_PARENT" "$LOG" 2>/dev/null || true
    say "total $((SECONDS - started)) s, exit $code"
    exit "$code"
}
trap teardown EXIT
trap 'exit 130' INT TERM

began=$SECONDS
bash deploy/wheels.sh
compose build --quiet >"$LOG" 2>&1 || fail "building the images: $(tail -n 30 "$LOG")"
say "wheels and images in $((SECONDS - began)) s"

began=$SECONDS
compose up --detach >"$LOG" 2>&1 || fail "docker-compose up: $(tail -n 30 "$LOG")"
mapfile -t ids < <(compose ps -q)
expected=${#ids[@]}
[ -n "$(compose ps -q worker)" ] || fail "no worker container was created"
deadline=$((SECONDS + READY_WITHIN_S))
ready=""
while :; do
    healthy=0
    for id in "${ids[@]}"; do
        status=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$id")
        [ "$status" = healthy ] && healthy=$((healthy + 1))
        [ "$status" = unhealthy ] && fail "container $(docker inspect --format '{{.Name}}' "$id") is unhealthy"
    done
    if [ "$healthy" -eq "$expected" ]; then
        # Healthy containers; ready also means a worker's heartbeat and the sandbox images seen.
        ready=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/readyz" || true)
        case "$ready" in *'"worker":true'*'"images":true'*'"draining":false'*) break ;; esac
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "not ready within ${READY_WITHIN_S} s: $healthy of \
$expected containers healthy; /readyz: ${ready:-no answer}"
    sleep 2
done
say "$expected containers healthy and the API ready in $((SECONDS - began)) s"

# The hardening compose.yaml promises, as the engine applied it.
inspect() { docker inspect --format "$2" "$(compose ps -q "$1" | head -n1)"; }
[ "$(inspect api '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.Config.User}}')" = \
    "true [ALL] 10001:10001" ] || fail "api: not read-only, capabilities kept or not user 10001"
case "$(inspect api '{{range .Mounts}}{{.Source}} {{end}}')" in
    *docker.sock*) fail "api: has the Docker socket" ;;
esac
case "$(inspect worker '{{range .Mounts}}{{.Source}} {{end}}')" in
    *docker.sock*) ;;
    *) fail "worker: has no Docker socket" ;;
esac
[ "$(inspect worker '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}')" = \
    "true [ALL] [no-new-privileges:true]" ] || fail "worker: hardening missing"
# shellcheck disable=SC2016 # a Go template's variables, not the shell's
ports=$(inspect api '{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}}:{{.HostPort}} {{end}}{{end}}')
[ "$ports" = "127.0.0.1:$PORT " ] || fail "api: published on '$ports', not on 127.0.0.1:$PORT alone"
say "hardening as declared: api read-only, no capabilities, user 10001, no socket, 127.0.0.1 only"

# A key the way the README tells an operator to make one.
key=$(compose exec -T api executor-service keys create --tenant compose-check 2>"$LOG" | tr -d '\r')
case "$key" in ask_*) ;; *) fail "keys create printed no key: $key $(cat "$LOG")" ;; esac
answer=$(curl -s --max-time 60 "http://127.0.0.1:$PORT/v1/executions" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"language": "python", "code": "print(1)", "wait": true}')
verdict=$(python3 -c '
import json, sys
body = json.loads(sys.argv[1])
result = body.get("result") or {}
ok = body.get("state") == "finished" and result.get("status") == "ok" and result.get("stdout") == "1\n"
print("ok" if ok else "unexpected")
' "$answer" 2>/dev/null || echo "not JSON")
[ "$verdict" = ok ] || fail "print(1) through the API: $verdict answer: $answer"
say "print(1) through the API printed 1"

# Egress: the worker's proxy socket, made in the directory the engine bind-mounts at the same path,
# answers the sandbox's relay. A name that is not on the allowlist is refused by the proxy itself
# (403) before any lookup, so no packet leaves this machine.
answer=$(curl -s --max-time 60 "http://127.0.0.1:$PORT/v1/executions" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"language": "python", "policy": "pypi", "wait": true, "code": "import urllib.request\ntry:\n    urllib.request.urlopen(\"http://blocked.invalid/\", timeout=20)\nexcept Exception as exc:\n    print(exc)"}')
verdict=$(python3 -c '
import json, sys
result = json.loads(sys.argv[1]).get("result") or {}
egress = result.get("egress") or [{}]
refused = egress[0].get("host") == "blocked.invalid" and egress[0].get("allowed") is False
ok = result.get("stdout") == "HTTP Error 403: Forbidden\n" and refused
print("ok" if ok else "unexpected")
' "$answer" 2>/dev/null || echo "not JSON")
[ "$verdict" = ok ] || fail "egress through the proxy: $verdict answer: $answer"
say "egress: the sandbox reached the worker's proxy, which refused a host off the allowlist"
