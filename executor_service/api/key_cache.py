"""A KeyStore that remembers each found key for a few seconds, so a request costs no key lookup.

Every request authenticates, and the lookup was a Redis round trip plus a parse each time. A
found key is reused for `ttl_s`; a revoked one therefore keeps working at most that long in
this process (revoking through this store forgets it at once). Misses are not remembered: a
key created a moment ago works at once, and an unknown key costs what it did before.
"""

from __future__ import annotations

import hashlib
import threading
import time

from executor_service.jobs.store import KeyStore
from executor_service.jobs.tenant import ApiKey

MAX_ENTRIES = 10_000  # far above the keys one API sees in a few seconds; bounds the memory


class CachedKeyStore:
    def __init__(self, keys: KeyStore, ttl_s: float) -> None:
        self._keys = keys
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._found: dict[str, tuple[float, ApiKey]] = {}  # sha256 of the key -> (until, record)

    def cached(self, key: str) -> ApiKey | None:
        """The record if it is remembered and fresh, without a lookup: safe on the event loop."""
        entry = self._found.get(_digest(key))  # a dict read is atomic; no lock needed
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def get(self, key: str) -> ApiKey | None:
        digest = _digest(key)
        now = time.monotonic()
        with self._lock:
            entry = self._found.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        record = self._keys.get(key)
        with self._lock:
            if record is None:
                self._found.pop(digest, None)
            else:
                if len(self._found) >= MAX_ENTRIES:
                    self._found = {d: e for d, e in self._found.items() if e[0] > now}
                    if len(self._found) >= MAX_ENTRIES:
                        self._found.clear()
                self._found[digest] = (now + self._ttl_s, record)
        return record

    def add(self, key: str, record: ApiKey) -> None:
        self._keys.add(key, record)

    def all(self) -> list[ApiKey]:
        return self._keys.all()

    def revoke(self, key_id: str) -> bool:
        revoked = self._keys.revoke(key_id)
        with self._lock:
            self._found = {d: e for d, e in self._found.items() if e[1].key_id != key_id}
        return revoked

    def create_first(self, key: str, record: ApiKey) -> bool:
        return self._keys.create_first(key, record)


def _digest(key: str) -> str:
    # Held by digest: the process keeps no caller's key longer than its request.
    return hashlib.sha256(key.encode()).hexdigest()


def cached_record(keys: KeyStore, key: str) -> ApiKey | None:
    """`key`'s record when `keys` remembers it (no I/O), else None: look it up then."""
    return keys.cached(key) if isinstance(keys, CachedKeyStore) else None


def cached_keys(keys: KeyStore, ttl_s: float) -> KeyStore:
    """`keys` behind a cache of `ttl_s` seconds; `keys` itself when ttl_s is 0 (no cache)."""
    return keys if ttl_s <= 0 else CachedKeyStore(keys, ttl_s)
