"""Identifiers and clocks for records: random, prefixed ids and timezone-aware UTC times."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    """A 128-bit random id; unguessable, so an id alone never reveals another tenant's work."""
    return f"{prefix}_{secrets.token_hex(16)}"


def utcnow() -> datetime:
    return datetime.now(UTC)
