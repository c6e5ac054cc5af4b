"""SessionStore in memory: records, the tenant's open sessions (its bound) and the active set."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from executor_service.errors import NotFound
from executor_service.jobs.memory.base import Shared, alive, wire
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.store_rules import over_sessions
from executor_service.settings import Settings


class MemorySessionStore:
    def __init__(self, shared: Shared, settings: Settings) -> None:
        self._shared = shared
        self._settings = settings
        self._records: dict[str, Session] = {}
        self._ends: dict[str, float] = {}  # ended sessions: when their record goes
        self._of_tenant: dict[str, set[str]] = defaultdict(set)  # any state
        self._open: dict[str, set[str]] = defaultdict(set)  # active: the tenant's bound
        self._active: set[str] = set()

    def create(self, session: Session, *, limit: int) -> None:
        with self._shared.cond:
            if len(self._open[session.tenant]) >= limit:
                raise over_sessions(limit)
            self._records[session.id] = wire(session)
            self._ends.pop(session.id, None)
            self._open[session.tenant].add(session.id)
            self._of_tenant[session.tenant].add(session.id)
            self._active.add(session.id)

    def get(self, session_id: str, tenant: str | None = None) -> Session:
        with self._shared.cond:
            session = self._live(session_id)
        if session is None or (tenant is not None and session.tenant != tenant):
            raise NotFound(f"no session {session_id!r}")
        return session

    def of_tenant(self, tenant: str) -> list[Session]:
        with self._shared.cond:
            found = [self._live(ident) for ident in sorted(self._of_tenant[tenant])]
            self._of_tenant[tenant] = {s.id for s in found if s is not None}
        sessions = [session for session in found if session is not None]
        return sorted(sessions, key=lambda session: session.created_at, reverse=True)

    def update(
        self, session_id: str, change: Callable[[Session], Session], known: Session | None = None
    ) -> Session:
        with self._shared.cond:
            current = self._live(session_id)
            if current is None:
                raise NotFound(f"no session {session_id!r}")
            updated = wire(change(current))
            self._records[session_id] = updated
            # As a SET does in Redis: an active record loses any expiry, an ended one gets a
            # fresh one.
            self._ends.pop(session_id, None)
            if updated.state != SessionState.ACTIVE:
                self._active.discard(session_id)
                self._open[updated.tenant].discard(session_id)
                self._ends[session_id] = time.time() + self._settings.result_ttl_s
            return updated

    def active_ids(self) -> list[str]:
        with self._shared.cond:
            return sorted(self._active)

    def _live(self, session_id: str) -> Session | None:
        if not alive(self._ends.get(session_id), time.time()):
            self._records.pop(session_id, None)
            self._ends.pop(session_id, None)
        return self._records.get(session_id)
