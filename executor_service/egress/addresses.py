"""Which addresses a sandbox may never reach, whatever its grant says, and the host's own addresses.

A grant names destinations, but a name can resolve anywhere: these checks run on every address the
proxy is about to connect to, so that no rule (and no DNS answer) can lead code to the host, its
neighbours or the cloud's metadata service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path

from executor_service.egress.rules import IPAddress, IPNetwork

# Always refused, even inside relaxed networks: they hand out the host's cloud credentials.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Counted among the host's own addresses, whatever the interfaces said when they were read.
ALWAYS_HOST_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Checked in order, so the most specific reason wins; anything else not global is caught after.
_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address (RFC 1918)"),
    (_V4("172.16.0.0/12"), "a private address (RFC 1918)"),
    (_V4("192.168.0.0/16"), "a private address (RFC 1918)"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("100.64.0.0/10"), "a shared address (carrier-grade NAT)"),
    (_V4("224.0.0.0/4"), "a multicast address"),  # is_global says True for these
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
    (_V4("192.0.0.0/24"), "an IETF protocol address"),  # Python versions disagree on parts
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("::/96"), "an IPv4-compatible address (deprecated)"),  # is_global says True for these
    (_V6("ff00::/8"), "a multicast address"),
    (_V6("fc00::/7"), "a unique local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),  # is_global says True for these
    (_V6("2001::/32"), "a Teredo tunnel address"),
    (_V6("2001:db8::/32"), "a documentation address"),
)
_NAT64 = _V6("64:ff9b::/96")


def _within(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    # Membership across versions compares bare integers in some Python versions: keep them apart.
    return any(address.version == net.version and address in net for net in networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries and would deliver to, if it is one of those forms."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _range_denial(address: IPAddress) -> str | None:
    ranges: Iterable[tuple[IPNetwork, str]] = (
        _V4_RANGES if isinstance(address, ipaddress.IPv4Address) else _V6_RANGES
    )
    for network, why in ranges:
        if _within(address, (network,)):
            return why
    if not address.is_global:
        return "not a public address"
    return None


def denial(
    address: IPAddress, *, host_networks: Sequence[IPNetwork], relaxed: Sequence[IPNetwork] = ()
) -> str | None:
    """Why `address` may never be reached (a phrase that reads after "is"), or None if it may.

    `relaxed` (a test-only setting) lifts the range checks inside those networks, but never for
    the host's own addresses or the metadata service.
    """
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if _within(address, host_networks):
        return "the host's own address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return denial(embedded, host_networks=host_networks, relaxed=relaxed)
    if _within(address, relaxed):
        return None
    return _range_denial(address)


def _fib_trie_locals(text: str) -> list[IPNetwork]:
    # An address line ("|-- 10.0.0.5") is followed by its kinds; "/32 host LOCAL" marks our own.
    found: list[IPNetwork] = []
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif stripped == "/32 host LOCAL" and last:
            found.append(ipaddress.ip_network(f"{last}/32"))
    return found


def _if_inet6_addresses(text: str) -> list[IPNetwork]:
    found: list[IPNetwork] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.append(ipaddress.ip_network(f"{ipaddress.IPv6Address(int(fields[0], 16))}/128"))
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:  # no IPv6 on this host, or /proc not mounted: the fixed networks remain
        return ""


def discover_host_networks() -> tuple[IPNetwork, ...]:
    """Every address of this host's interfaces as a /32 or /128, plus all of loopback."""
    found = [
        *ALWAYS_HOST_NETWORKS,
        *_fib_trie_locals(_read("/proc/net/fib_trie")),
        *_if_inet6_addresses(_read("/proc/net/if_inet6")),
    ]
    return tuple(dict.fromkeys(found))
