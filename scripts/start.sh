#!/usr/bin/env bash
# The one start command: make the machine ready (idempotent), then run a worker and the API.
# A state directory without a key (the first start, or a second checkout on the same Redis) gets
# one: printed once and kept in .state/first-key (mode 0600). Arguments go to `up`, e.g.
# --host 0.0.0.0 --port 8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec uv run executor-service up "$@"
