"""KeyStore on Redis: `key:<sha256>` holds the record, `keys` maps key_id -> hash."""

from __future__ import annotations

import redis

from executor_service.jobs.redis_base import key
from executor_service.jobs.tenant import ApiKey, hash_key

_INDEX = key("keys")


class RedisKeyStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def add(self, api_key: str, record: ApiKey) -> None:
        digest = hash_key(api_key)
        pipe = self._redis.pipeline()
        pipe.set(key("key", digest), record.model_dump_json())
        pipe.hset(_INDEX, record.key_id, digest)
        pipe.execute()

    def get(self, api_key: str) -> ApiKey | None:
        raw = self._redis.get(key("key", hash_key(api_key)))
        return None if raw is None else ApiKey.model_validate_json(str(raw))

    def all(self) -> list[ApiKey]:
        digests: dict[str, str] = self._redis.hgetall(_INDEX)  # type: ignore[assignment]
        records = []
        for digest in digests.values():
            raw = self._redis.get(key("key", digest))
            if raw is not None:
                records.append(ApiKey.model_validate_json(str(raw)))
        return sorted(records, key=lambda record: record.created_at)

    def revoke(self, key_id: str) -> bool:
        digest = self._redis.hget(_INDEX, key_id)
        if digest is None:
            return False
        pipe = self._redis.pipeline()
        pipe.delete(key("key", str(digest)))
        pipe.hdel(_INDEX, key_id)
        pipe.execute()
        return True

    def create_first(self, api_key: str, record: ApiKey) -> bool:
        if not self._redis.set(key("bootstrap"), record.key_id, nx=True):
            return False
        if self._redis.hlen(_INDEX):
            return False
        self.add(api_key, record)
        return True
