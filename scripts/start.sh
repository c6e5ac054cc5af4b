#!/usr/bin/env bash
# The one start command: make the machine ready (idempotent), then run a worker and the API.
# The first start prints an API key once and keeps it in .state/first-key (mode 0600).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec uv run executor-service up "$@"
