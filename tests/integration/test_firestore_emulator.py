"""The Firestore emulator the tests and the demo start (tools/firestore-emulator) has no
authentication, so it listens on loopback only: read from the kernel's own table of listening
sockets (/proc/net/tcp and tcp6), which says which address each is bound to."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tests.harness import FirestoreEmulator

pytestmark = pytest.mark.firestore

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp*


def listening_addresses(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local address of every socket listening on `port`, IPv4 and IPv6."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.append(_address(address))
    return found


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp* print each 32-bit word of the address in the host's (little-endian)
    byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def test_addresses_are_read_as_the_kernel_writes_them() -> None:
    assert _address("0100007F") == ipaddress.ip_address("127.0.0.1")
    assert _address("00000000") == ipaddress.ip_address("0.0.0.0")
    assert _address("00000000000000000000000001000000") == ipaddress.ip_address("::1")


def test_the_emulator_listens_on_loopback_only(firestore_emulator: FirestoreEmulator) -> None:
    addresses = listening_addresses(firestore_emulator.port)
    assert addresses, f"nothing listens on {firestore_emulator.port}"
    assert all(address.is_loopback for address in addresses), addresses
