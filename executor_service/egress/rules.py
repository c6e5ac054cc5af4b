"""What one execution may reach: host-name and address rules with ports, plus its caps.

Pure data and matching, shared by the policy (which holds the rules), the request check (which may
only narrow them) and the proxy (which applies them to each connection).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_matches(pattern: str, host: str) -> bool:
    """`pattern` is a lower-case name, or `*.suffix` for any name strictly below suffix."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def pattern_covers(outer: str, inner: str) -> bool:
    """Whether every name `inner` matches is also matched by `outer` (used to narrow)."""
    if inner.startswith("*."):
        return outer.startswith("*.") and (inner == outer or inner.endswith(outer[1:]))
    return host_matches(outer, inner)


@dataclass(frozen=True)
class EgressRule:
    """One allowed destination: a host pattern or a network (exactly one), on some ports."""

    ports: frozenset[int]
    host: str | None = None  # "pypi.org" or "*.example.org", lower case
    network: IPNetwork | None = None

    def __post_init__(self) -> None:
        if (self.host is None) == (self.network is None):
            raise ValueError("an egress rule names a host or a network, not both or neither")

    def allows_name(self, host: str, port: int) -> bool:
        return self.host is not None and port in self.ports and host_matches(self.host, host)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        return self.network is not None and port in self.ports and address in self.network

    def covers(self, other: EgressRule) -> bool:
        if not other.ports <= self.ports:
            return False
        if other.host is not None:
            return self.host is not None and pattern_covers(self.host, other.host)
        assert other.network is not None
        return (
            self.network is not None
            and self.network.version == other.network.version
            and other.network.subnet_of(self.network)  # type: ignore[arg-type]
        )

    def __str__(self) -> str:
        ports = ",".join(str(port) for port in sorted(self.ports))
        return f"{self.host or self.network}:{ports}"


@dataclass(frozen=True)
class EgressGrant:
    """Everything the proxy needs to judge one execution's connections."""

    rules: tuple[EgressRule, ...]
    max_connections: int
    max_bytes: int  # both directions together, over the whole execution

    def allows_name(self, host: str, port: int) -> bool:
        """A name rule lets this name through (its addresses are still checked after resolving)."""
        return any(rule.allows_name(host, port) for rule in self.rules)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """A network rule lets this address literal through (names never match networks: the
        proxy resolves only names a rule lists)."""
        return any(rule.allows_address(address, port) for rule in self.rules)
