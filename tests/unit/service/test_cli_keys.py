"""`executor-service`'s key handling: the key each state directory keeps (issue 11: a second
checkout on the same Redis had none, and the README's `export KEY=...` gave 401), what `keys`
prints, and that a key given to `revoke` never comes back whole."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from executor_service import __version__
from executor_service.cli import FIRST_KEY_FILE, _claim_state_dir, ensure_first_key, main
from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.store import KeyStore
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.settings import Settings

pytestmark = pytest.mark.redis


@pytest.fixture
def fresh_redis(redis_url: str) -> Iterator[str]:
    """The module's Redis, emptied."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: it configures logging for a whole process."""
    return subprocess.run(
        [sys.executable, "-m", "executor_service.cli", *args],
        env={**os.environ, "EXECUTOR_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _keys(redis_url: str) -> KeyStore:
    return redis_stores(Settings(redis_url=redis_url))[0].keys


def _kept(state_dir: Path) -> str:
    return (state_dir / FIRST_KEY_FILE).read_text().strip()


def test_each_state_directory_on_one_redis_gets_a_key_of_its_own(
    fresh_redis: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "clone-1" / ".state", tmp_path / "clone-2" / ".state"
    made_first = ensure_first_key(Settings(redis_url=fresh_redis, state_dir=first))
    made_second = ensure_first_key(Settings(redis_url=fresh_redis, state_dir=second))
    assert made_first is not None
    assert made_second is not None
    assert made_first != made_second
    assert (_kept(first), _kept(second)) == (made_first, made_second)
    keys = _keys(fresh_redis)
    for made in (made_first, made_second):
        record = keys.get(made)
        assert record is not None
        assert record.tenant == "default"
    assert (first / FIRST_KEY_FILE).stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    assert "first API key of this Redis" in out
    assert "for this state directory" in out
    # A later start keeps what each directory has: nothing new is made or printed.
    assert ensure_first_key(Settings(redis_url=fresh_redis, state_dir=first)) is None
    assert _kept(first) == made_first
    assert len(keys.all()) == 2


def test_a_revoked_key_in_the_state_directory_is_not_replaced(
    fresh_redis: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(redis_url=fresh_redis, state_dir=tmp_path)
    made = ensure_first_key(settings)
    assert made is not None
    record = _keys(fresh_redis).get(made)
    assert record is not None
    assert _keys(fresh_redis).revoke(record.key_id)
    capsys.readouterr()
    assert ensure_first_key(settings) is None
    assert _kept(tmp_path) == made
    assert _keys(fresh_redis).all() == []
    err = capsys.readouterr().err
    assert "unknown to this service's Redis" in err
    assert "keys create --tenant default" in err


def test_keys_create_prints_the_key_alone_on_stdout_and_says_it_is_shown_once(
    fresh_redis: str,
) -> None:
    captured = _cli(fresh_redis, "keys", "create", "--tenant", "acme", "--policies", "default")
    assert captured.returncode == 0, captured.stderr
    key = captured.stdout.strip()
    assert key.startswith("ask_")
    assert "\n" not in key
    assert "shown once" in captured.stderr
    assert "'acme'" in captured.stderr
    record = _keys(fresh_redis).get(key)
    assert record is not None
    assert record.policies == ("default",)
    listed = _cli(fresh_redis, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split("\t") == ["KEY_ID", "TENANT", "POLICIES", "MAX_CONCURRENCY", "CREATED_AT"]
    assert row.split("\t")[:4] == [record.key_id, "acme", "default", "8"]


def test_revoke_given_a_whole_key_revokes_it_and_never_prints_it(fresh_redis: str) -> None:
    key = _cli(fresh_redis, "keys", "create", "--tenant", "acme").stdout.strip()
    secret = key.split("_", 2)[2]
    revoked = _cli(fresh_redis, "keys", "revoke", key)
    assert revoked.returncode == 0, revoked.stderr
    assert _keys(fresh_redis).get(key) is None
    again = _cli(fresh_redis, "keys", "revoke", key)
    assert again.returncode == 1  # already gone: refused, still not echoed
    for stream in (revoked.stdout, revoked.stderr, again.stdout, again.stderr):
        assert secret not in stream
    assert key.split("_", 2)[1] in revoked.stdout
    assert f"ask_{key.split('_', 2)[1]}_…" in again.stderr


def test_version_and_listen_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # Both end in argparse, before main() configures any logging.
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"executor-service {__version__}"
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--port", "70000"])
    assert refused.value.code == 2
    assert "not a port" in capsys.readouterr().err


def test_a_start_that_loses_the_race_for_the_file_withdraws_its_key(
    fresh_redis: str, tmp_path: Path
) -> None:
    path = tmp_path / FIRST_KEY_FILE
    path.write_text("ask_theirs_written-first\n")
    key_id, key = new_key()
    record = ApiKey(key_id=key_id, tenant="default", policies=None, created_at=utcnow())
    assert not _claim_state_dir(_keys(fresh_redis), path, key, record)
    assert _keys(fresh_redis).get(key) is None
    assert path.read_text() == "ask_theirs_written-first\n"
