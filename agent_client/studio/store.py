"""The studio's database: runs with their full event streams and files, and the connections.

Two small protocols split by concern (``RunStore``, ``ConnectionStore``), each implemented
once over SQLAlchemy Core so any SQLAlchemy URL works (SQLite by default). Calls are
synchronous and short; async callers run them in a worker thread.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    create_engine,
    delete,
    insert,
    select,
    update,
)

RunStatus = Literal["running", "finished", "stopped", "failed"]

_metadata = MetaData()

_runs = Table(
    "studio_runs",
    _metadata,
    Column("id", String(40), primary_key=True),
    Column("task", Text, nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stop_reason", Text),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)
_events = Table(
    "studio_run_events",
    _metadata,
    Column("run_id", String(40), ForeignKey("studio_runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("payload", Text, nullable=False),
)
_files = Table(
    "studio_run_files",
    _metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), ForeignKey("studio_runs.id"), nullable=False, index=True),
    Column("path", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
)
_secrets = Table(
    "studio_secrets",
    _metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)
_endpoints = Table(
    "studio_endpoints",
    _metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "model" or "sandbox"
    Column("base_url", Text, nullable=False),
    Column("model", Text),
)

SANDBOX = "sandbox"


class RunRecord(BaseModel):
    """One run as history shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    task: str
    spec: dict[str, Any]
    status: RunStatus
    stop_reason: str | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class StoredFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    run_id: str
    path: str
    content: bytes


class Endpoint(BaseModel):
    """A model endpoint or the sandbox service; the key itself never leaves the store's owner."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["model", "sandbox"]
    base_url: str
    model: str | None = None
    key_name: str
    has_key: bool


class RunStore(Protocol):
    """Runs, their ordered events and the files their sandbox runs produced."""

    def create_run(self, task: str, spec: Mapping[str, Any]) -> RunRecord: ...

    def append_event(self, run_id: str, seq: int, event: Mapping[str, Any]) -> None: ...

    def finish_run(
        self, run_id: str, status: RunStatus, stop_reason: str | None, error: str | None
    ) -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, limit: int = 100) -> list[RunRecord]: ...

    def events(self, run_id: str) -> list[dict[str, Any]]: ...

    def add_file(self, run_id: str, path: str, content: bytes) -> str: ...

    def get_file(self, run_id: str, file_id: str) -> StoredFile | None: ...

    def mark_interrupted(self) -> int: ...


class ConnectionStore(Protocol):
    """Model endpoints, the sandbox service, and their keys (write-only from the page)."""

    def put_endpoint(
        self,
        name: str,
        kind: Literal["model", "sandbox"],
        base_url: str,
        model: str | None,
        key: str | None,
    ) -> Endpoint: ...

    def delete_endpoint(self, name: str) -> bool: ...

    def endpoints(self) -> list[Endpoint]: ...

    def secrets(self) -> dict[str, str]: ...


def key_name(endpoint: str) -> str:
    """The environment name a spec's ``api_key_env`` uses for an endpoint's key."""
    return f"STUDIO_{endpoint.upper().replace('-', '_')}_KEY"


def open_engine(url: str) -> Engine:
    """An engine with the studio's tables created (idempotent)."""
    engine = create_engine(url)
    _metadata.create_all(engine)
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone=True columns; they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SqlRunStore:
    """RunStore over any SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_run(self, task: str, spec: Mapping[str, Any]) -> RunRecord:
        record = RunRecord(
            id=uuid.uuid4().hex, task=task, spec=dict(spec), status="running", created_at=_now()
        )
        with self._engine.begin() as conn:
            conn.execute(
                insert(_runs).values(
                    id=record.id,
                    task=task,
                    spec=json.dumps(record.spec),
                    status=record.status,
                    created_at=record.created_at,
                )
            )
        return record

    def append_event(self, run_id: str, seq: int, event: Mapping[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(_events).values(run_id=run_id, seq=seq, payload=json.dumps(event)))

    def finish_run(
        self, run_id: str, status: RunStatus, stop_reason: str | None, error: str | None
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(_runs)
                .where(_runs.c.id == run_id)
                .values(status=status, stop_reason=stop_reason, error=error, finished_at=_now())
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_runs).where(_runs.c.id == run_id)).first()
        return _run(row._mapping) if row is not None else None

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        query = select(_runs).order_by(_runs.c.created_at.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_run(row._mapping) for row in conn.execute(query)]

    def events(self, run_id: str) -> list[dict[str, Any]]:
        query = select(_events.c.payload).where(_events.c.run_id == run_id).order_by(_events.c.seq)
        with self._engine.connect() as conn:
            return [json.loads(payload) for (payload,) in conn.execute(query)]

    def add_file(self, run_id: str, path: str, content: bytes) -> str:
        file_id = uuid.uuid4().hex
        with self._engine.begin() as conn:
            conn.execute(
                insert(_files).values(id=file_id, run_id=run_id, path=path, content=content)
            )
        return file_id

    def get_file(self, run_id: str, file_id: str) -> StoredFile | None:
        query = select(_files).where(_files.c.id == file_id, _files.c.run_id == run_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return StoredFile.model_validate(dict(row._mapping)) if row is not None else None

    def mark_interrupted(self) -> int:
        """Runs left ``running`` by a studio that stopped; called once at start-up."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_runs)
                .where(_runs.c.status == "running")
                .values(
                    status="failed", error="the studio stopped during the run", finished_at=_now()
                )
            )
        return int(result.rowcount)


def _run(row: RowMapping) -> RunRecord:
    return RunRecord(
        id=row["id"],
        task=row["task"],
        spec=json.loads(row["spec"]),
        status=row["status"],
        stop_reason=row["stop_reason"],
        error=row["error"],
        created_at=_aware(row["created_at"]),
        finished_at=_aware(row["finished_at"]),
    )


class SqlConnectionStore:
    """ConnectionStore over any SQLAlchemy engine; keys are stored as given (protect the file)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put_endpoint(
        self,
        name: str,
        kind: Literal["model", "sandbox"],
        base_url: str,
        model: str | None,
        key: str | None,
    ) -> Endpoint:
        """Create or replace an endpoint; ``key=None`` keeps the saved key, ``""`` removes it."""
        secret = key_name(name)
        with self._engine.begin() as conn:
            conn.execute(delete(_endpoints).where(_endpoints.c.name == name))
            conn.execute(
                insert(_endpoints).values(name=name, kind=kind, base_url=base_url, model=model)
            )
            if key is not None:
                conn.execute(delete(_secrets).where(_secrets.c.name == secret))
                if key:
                    conn.execute(insert(_secrets).values(name=secret, value=key))
        found = next(e for e in self.endpoints() if e.name == name)
        return found

    def delete_endpoint(self, name: str) -> bool:
        with self._engine.begin() as conn:
            gone = conn.execute(delete(_endpoints).where(_endpoints.c.name == name)).rowcount
            conn.execute(delete(_secrets).where(_secrets.c.name == key_name(name)))
        return bool(gone)

    def endpoints(self) -> list[Endpoint]:
        with self._engine.connect() as conn:
            rows = list(conn.execute(select(_endpoints).order_by(_endpoints.c.name)))
            keys = {name for (name,) in conn.execute(select(_secrets.c.name))}
        return [
            Endpoint(
                name=row.name,
                kind=row.kind,
                base_url=row.base_url,
                model=row.model,
                key_name=key_name(row.name),
                has_key=key_name(row.name) in keys,
            )
            for row in rows
        ]

    def secrets(self) -> dict[str, str]:
        """Every saved key by its environment name: for building a run, never for a response."""
        with self._engine.connect() as conn:
            return {name: value for name, value in conn.execute(select(_secrets))}


def sql_stores(url: str) -> tuple[SqlRunStore, SqlConnectionStore]:
    engine = open_engine(url)
    return SqlRunStore(engine), SqlConnectionStore(engine)
