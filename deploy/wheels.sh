#!/usr/bin/env bash
# Fetches, on this host, everything the service image installs: the locked dependencies as wheels
# and the project as a wheel, under build/deploy/ (the image's build context reads them there).
#
# Why on the host: pip inside a container fails TLS on these machines (its trust store is not the
# host's), while the image build itself reaches only Debian's mirror. The image installs from these
# files with `pip --no-index --require-hashes`, so what runs is exactly what uv.lock pins.
#
# Idempotent and cheap when nothing changed: the wheels are fetched again only when the exported
# requirements differ from the last fetch's, and the project's wheel is reproducible (same sources,
# same bytes), so Docker's layer cache still hits on a second build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=build/deploy
WHEELS=$OUT/wheels
PROJECT=$OUT/project
# The image's Python is Debian 12's python3 (3.11.2). pip evaluates the lock's environment markers
# (e.g. async-timeout's `python_full_version < '3.11.3'`) against the interpreter it runs on, so it
# must run on that same Python: Debian 12's own, which every machine of this project has.
PYTHON=${DEPLOY_PYTHON:-/usr/bin/python3}

say() { printf '[wheels] %s\n' "$*"; }
die() {
    printf '[wheels] error: %s\n' "$*" >&2
    exit 1
}

command -v uv >/dev/null 2>&1 || die "uv is missing: run scripts/setup.sh first"
[ -x "$PYTHON" ] || die "$PYTHON is missing: the wheels must match the image's Debian 12 python3 \
(set DEPLOY_PYTHON to a CPython 3.11.2 on linux x86_64)"
version=$("$PYTHON" -c 'import platform; print(platform.python_version())')
[ "$version" = 3.11.2 ] || die "$PYTHON is Python $version; the image runs Debian 12's 3.11.2 and \
the wheels must be chosen for it (set DEPLOY_PYTHON to a CPython 3.11.2)"

mkdir -p "$WHEELS" "$PROJECT"
requirements=$OUT/requirements.txt
# --extra service: the image runs the service, whose dependencies are that extra (the project's
# base dependencies are the agent client's alone).
uv export --frozen --no-dev --no-emit-project --extra service --format requirements-txt --quiet \
    >"$requirements.new"
if cmp -s "$requirements.new" "$WHEELS/requirements.txt"; then
    rm "$requirements.new"
    say "dependencies unchanged since the last fetch ($(find "$WHEELS" -name '*.whl' | wc -l) wheels)"
else
    rm -f "$WHEELS"/*.whl "$WHEELS/requirements.txt"
    started=$SECONDS
    # --only-binary: an sdist would need a compiler in the image; every locked package has a wheel
    # for CPython 3.11 on manylinux x86_64. pip checks each file against the lock's hashes.
    # The machine's pip configuration (extra local indexes) is kept; its warnings about missing
    # local folders are noise.
    uvx --quiet --python "$PYTHON" pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --dest "$WHEELS" -r "$requirements.new" 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    # Written last: a fetch cut short is redone next time.
    mv "$requirements.new" "$WHEELS/requirements.txt"
    say "fetched $(find "$WHEELS" -name '*.whl' | wc -l) wheels in $((SECONDS - started)) s"
fi

rm -f "$PROJECT"/*.whl
uv build --wheel --quiet --out-dir "$PROJECT"
say "project wheel: $(basename "$PROJECT"/*.whl)"
