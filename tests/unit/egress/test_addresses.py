"""Which addresses are never reachable, and reading the host's own addresses from /proc."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from executor_service.egress.addresses import denial, discover_host_networks

HOST = (ip_network("203.0.113.7/32"), ip_network("2001:db8::7/128"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::1", None),
        ("64:ff9b::808:808", None),
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - judged, never bound
        ("10.1.2.3", "a private address (RFC 1918)"),
        ("172.16.0.1", "a private address (RFC 1918)"),
        ("192.168.1.1", "a private address (RFC 1918)"),
        ("169.254.1.1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.64.0.1", "a shared address (carrier-grade NAT)"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.1", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("192.0.0.8", "an IETF protocol address"),
        ("100::1", "not a public address"),
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("::8.8.8.8", "an IPv4-compatible address (deprecated)"),
        ("ff02::1", "a multicast address"),
        ("fd12:3456::1", "a unique local address"),
        ("fe80::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("2001::1", "a Teredo tunnel address"),
        ("2001:db8::1", "a documentation address"),
        ("::ffff:10.0.0.1", "a private address (RFC 1918)"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("2002:a00:1::", "a private address (RFC 1918)"),
        ("2002:a9fe:a9fe::", "a cloud metadata address"),
        ("64:ff9b::a00:1", "a private address (RFC 1918)"),
        ("203.0.113.7", "the host's own address"),
        ("::ffff:203.0.113.7", "the host's own address"),
        ("2001:db8::7", "the host's own address"),
    ],
)
def test_denial_table(address: str, expected: str | None) -> None:
    assert denial(ip_address(address), host_networks=HOST) == expected


def test_relaxed_networks_lift_range_checks_but_never_host_or_metadata() -> None:
    relaxed = [ip_network("127.0.0.0/8"), ip_network("169.254.0.0/16"), ip_network("10.0.0.0/8")]
    assert denial(ip_address("127.0.0.1"), host_networks=(), relaxed=relaxed) is None
    assert denial(ip_address("::ffff:10.0.0.1"), host_networks=(), relaxed=relaxed) is None
    assert denial(
        ip_address("10.9.9.9"), host_networks=[ip_network("10.9.9.9/32")], relaxed=relaxed
    )
    assert denial(ip_address("169.254.169.254"), host_networks=(), relaxed=relaxed) == (
        "a cloud metadata address"
    )
    assert denial(ip_address("192.168.0.1"), host_networks=(), relaxed=relaxed) is not None


def test_host_networks_hold_loopback_and_this_hosts_addresses_as_single_hosts() -> None:
    networks = discover_host_networks()
    assert ip_network("127.0.0.0/8") in networks
    assert ip_network("::1/128") in networks
    singles = [net for net in networks if net not in (ip_network("127.0.0.0/8"),)]
    assert all(net.prefixlen == net.max_prefixlen for net in singles)
    assert denial(
        ip_address("127.0.0.1"), host_networks=networks, relaxed=[ip_network("0.0.0.0/0")]
    )
