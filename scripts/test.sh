#!/usr/bin/env bash
# The whole check, as CI runs it: set the machine up, then lint, format, types, import contracts
# and every test. Runs every check even after a failure, and exits non-zero if any failed.
# Under CI=true a test whose service (Docker, Redis) is missing fails instead of skipping.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
started=$SECONDS

if ! bash scripts/setup.sh; then
    echo "[test] set-up failed: nothing else was run" >&2
    exit 1
fi
PATH="$PATH:$HOME/.local/bin" # where set-up puts uv when it installs it without root

failed=()
check() {
    local name=$1
    shift
    local began=$SECONDS code=0
    echo "[test] ---- $name: $*"
    "$@" || code=$?
    if [ "$code" -eq 0 ]; then
        echo "[test] ---- $name: passed in $((SECONDS - began)) s"
        return
    fi
    # pytest's 5 means it collected no tests: a suite that tests nothing has not passed.
    [ "$name" = pytest ] && [ "$code" -eq 5 ] && echo "[test] pytest collected no tests"
    echo "[test] ---- $name: FAILED (exit $code) after $((SECONDS - began)) s"
    failed+=("$name")
}

check ruff-check uv run --frozen ruff check .
check ruff-format uv run --frozen ruff format --check .
check mypy uv run --frozen mypy
# The test fake must fit the runner protocol as the real runners do (as_sandbox_runner says so).
check mypy-fakes uv run --frozen mypy tests/unit/service/fake_runner.py
check lint-imports uv run --frozen lint-imports
# `llm` needs the local model server and minutes per test: opt-in (README, "Local model").
check pytest uv run --frozen pytest tests -m "not llm"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "[test] FAILED: ${failed[*]} (total $((SECONDS - started)) s)"
    exit 1
fi
echo "[test] all checks passed (total $((SECONDS - started)) s)"
