"""API keys and the tenants they stand for; only a key's sha256 is ever stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

KEY_PREFIX = "ask"


class ApiKey(BaseModel):
    """What a key may do. `policies` None means every policy, including ones added later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    tenant: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    policies: tuple[str, ...] | None = None
    max_concurrency: int = Field(default=8, gt=0, le=10_000)  # queued or running executions
    max_sessions: int = Field(default=8, ge=0, le=10_000)  # sessions open at once
    max_event_streams: int = Field(default=32, gt=0, le=10_000)  # SSE streams open at once
    # Bytes of ended executions kept in the store (results and their events, for result_ttl_s).
    max_stored_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    created_at: datetime

    def may_use(self, policy: str) -> bool:
        return self.policies is None or policy in self.policies


def new_key() -> tuple[str, str]:
    """A fresh (key_id, key); the key embeds its id so `keys revoke` needs no secret."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
