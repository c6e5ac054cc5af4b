"""The studio's SQL stores on a real SQLite file: runs, events in order, files, connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_client.studio.store import SqlConnectionStore, SqlRunStore, open_engine


@pytest.fixture
def engine_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studio.db'}"


def test_a_run_keeps_its_spec_events_outcome_and_files(engine_url: str) -> None:
    store = SqlRunStore(open_engine(engine_url))
    first = store.create_run("task one", {"team": {"type": "round_robin"}})
    second = store.create_run("task two", {"team": {"type": "swarm"}})
    for seq in range(3):
        store.append_event(first.id, seq, {"seq": seq, "kind": "message", "n": seq})
    file_id = store.add_file(first.id, "out/plot.png", b"\x89PNG\x00")
    store.finish_run(first.id, "finished", "approved", None)

    # A second store on the same URL reads what the first wrote: it is in the database.
    reopened = SqlRunStore(open_engine(engine_url))
    run = reopened.get_run(first.id)
    assert run is not None
    assert (run.status, run.stop_reason, run.spec) == (
        "finished",
        "approved",
        {"team": {"type": "round_robin"}},
    )
    assert run.finished_at is not None
    assert run.created_at.tzinfo is not None
    assert [e["n"] for e in reopened.events(first.id)] == [0, 1, 2]
    assert [r.id for r in reopened.list_runs()] == [second.id, first.id]
    stored = reopened.get_file(first.id, file_id)
    assert stored is not None
    assert (stored.path, stored.content) == ("out/plot.png", b"\x89PNG\x00")
    assert reopened.get_file(second.id, file_id) is None  # a file belongs to its run
    assert reopened.get_run("missing") is None


def test_runs_left_running_are_marked_failed_at_start(engine_url: str) -> None:
    store = SqlRunStore(open_engine(engine_url))
    live = store.create_run("t", {})
    done = store.create_run("t", {})
    store.finish_run(done.id, "stopped", "Stopped from the studio.", None)
    assert store.mark_interrupted() == 1
    run = store.get_run(live.id)
    assert run is not None
    assert run.status == "failed"
    assert run.error is not None
    stopped = store.get_run(done.id)
    assert stopped is not None
    assert stopped.status == "stopped"


def test_keys_are_kept_replaced_and_removed_but_never_listed(engine_url: str) -> None:
    store = SqlConnectionStore(open_engine(engine_url))
    endpoint = store.put_endpoint("main", "model", "http://m/v1", "qwen", "secret-1")
    assert endpoint.has_key
    assert endpoint.key_name == "STUDIO_MAIN_KEY"
    assert "secret-1" not in repr(store.endpoints())
    store.put_endpoint("main", "model", "http://m2/v1", "qwen", None)  # None keeps the key
    assert store.secrets() == {"STUDIO_MAIN_KEY": "secret-1"}
    assert store.endpoints()[0].base_url == "http://m2/v1"
    store.put_endpoint("main", "model", "http://m2/v1", "qwen", "secret-2")
    assert store.secrets() == {"STUDIO_MAIN_KEY": "secret-2"}
    store.put_endpoint("main", "model", "http://m2/v1", "qwen", "")  # "" removes it
    assert store.secrets() == {}
    assert not store.endpoints()[0].has_key
    assert store.delete_endpoint("main")
    assert not store.delete_endpoint("main")
    assert store.endpoints() == []
