"""The egress log of one execution: one record per connection the code asked the proxy for."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# Why the proxy refused a connection, or cut one short ("" for a connection that ran its course).
EgressReason = Literal[
    "",
    "not_allowlisted",  # no rule of the grant names this host (or address) and port
    "denied_address",  # the destination resolved only to always-denied addresses
    "resolve_failed",  # the name did not resolve
    "connect_failed",  # allowed, but no resolved address accepted the connection
    "connection_cap",  # the execution already opened its max_connections
    "byte_cap",  # the execution's max_bytes was reached: the connection was cut
    "bad_request",  # not a CONNECT or an absolute-form HTTP request the proxy understands
]
# Most records one execution's log keeps; the rest are only counted (EgressLog.dropped).
MAX_RECORDS = 256


class EgressRecord(BaseModel):
    """One connection the code asked for, and what became of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str  # as the code named it: a host name or an address literal
    port: int
    allowed: bool
    reason: EgressReason = ""
    method: Literal["CONNECT", "HTTP"] = "CONNECT"
    address: str | None = None  # the address connected to, or the denied one
    bytes_sent: int = 0  # from the sandbox to the destination
    bytes_received: int = 0  # from the destination to the sandbox


class EgressLog(BaseModel):
    """An execution's egress records, oldest first, with how many did not fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    records: tuple[EgressRecord, ...] = ()
    dropped: int = 0
