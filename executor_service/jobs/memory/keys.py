"""KeyStore in memory: records by the key's hash, an index key_id -> hash, a made-once flag."""

from __future__ import annotations

from executor_service.jobs.memory.base import Shared, wire
from executor_service.jobs.tenant import ApiKey, hash_key


class MemoryKeyStore:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._records: dict[str, ApiKey] = {}  # by sha256 of the key, as in Redis
        self._index: dict[str, str] = {}  # key_id -> hash
        self._bootstrapped = False

    def add(self, api_key: str, record: ApiKey) -> None:
        with self._shared.cond:
            digest = hash_key(api_key)
            self._records[digest] = wire(record)
            self._index[record.key_id] = digest

    def get(self, api_key: str) -> ApiKey | None:
        with self._shared.cond:
            return self._records.get(hash_key(api_key))

    def all(self) -> list[ApiKey]:
        with self._shared.cond:
            found = [self._records[d] for d in self._index.values() if d in self._records]
        return sorted(found, key=lambda record: record.created_at)

    def revoke(self, key_id: str) -> bool:
        with self._shared.cond:
            digest = self._index.pop(key_id, None)
            if digest is None:
                return False
            self._records.pop(digest, None)
            return True

    def create_first(self, api_key: str, record: ApiKey) -> bool:
        with self._shared.cond:
            # The flag is taken even when keys exist, so a later call also answers False.
            if self._bootstrapped:
                return False
            self._bootstrapped = True
            if self._index:
                return False
            self.add(api_key, record)
            return True
