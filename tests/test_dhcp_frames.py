"""Raw Ethernet/IPv4/UDP/ARP frames of the DHCP driver: round trips, checksums, hostile frames."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.net import rawpacket as raw

MAC = bytes.fromhex("525400123456")
SERVER_MAC = bytes.fromhex("027700000001")


def frame(payload: bytes = b"hello dhcp") -> bytes:
    return raw.build_udp_frame(SERVER_MAC, MAC, IPv4Address("10.0.0.1"), IPv4Address("10.0.0.50"), 67, 68, payload,
                               ident=7)


def test_udp_round_trip_and_checksums() -> None:
    data = frame()
    assert raw.checksum(data[14:34]) == 0  # the IPv4 header checksum verifies
    datagram = raw.parse_udp_frame(data)
    assert datagram == raw.UdpDatagram(SERVER_MAC, IPv4Address("10.0.0.1"), IPv4Address("10.0.0.50"), 67, 68,
                                       b"hello dhcp")


def test_known_checksum_vector() -> None:
    # RFC 1071 example: words 0001 f203 f4f5 f6f7 sum to ddf2, complement 220d.
    assert raw.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_broadcast_from_zero_address() -> None:
    data = raw.build_udp_frame(MAC, raw.BROADCAST_MAC, IPv4Address(0), IPv4Address("255.255.255.255"), 68, 67, b"x")
    assert data[:6] == raw.BROADCAST_MAC and raw.parse_udp_frame(data) is not None


def test_corrupted_frames_are_refused() -> None:
    good = bytearray(frame())
    bad_payload = bytes(good[:-1]) + bytes([good[-1] ^ 1])  # UDP checksum no longer verifies
    bad_header = bytes(good[:22]) + bytes([good[22] ^ 1]) + bytes(good[23:])  # TTL flipped: IP checksum fails
    fragment = bytearray(good)
    fragment[20] |= 0x20  # more-fragments flag
    short = bytes(good[:40])
    not_udp = bytearray(good)
    not_udp[23] = 6
    for data in (bad_payload, bad_header, bytes(fragment), short, bytes(not_udp), b"", bytes(60)):
        assert raw.parse_udp_frame(data) is None


def test_zero_udp_checksum_means_none() -> None:
    data = bytearray(frame())
    data[40:42] = b"\0\0"
    assert raw.parse_udp_frame(bytes(data)) is not None


def test_arp_round_trip() -> None:
    arp = raw.Arp(1, MAC, IPv4Address("10.0.0.50"), bytes(6), IPv4Address("10.0.0.1"))
    data = raw.build_arp_frame(MAC, raw.BROADCAST_MAC, arp)
    assert raw.parse_arp_frame(data) == arp and raw.parse_udp_frame(data) is None
    assert raw.parse_arp_frame(data[:30]) is None


def test_multicast_mac() -> None:
    assert raw.multicast_mac(IPv4Address("239.129.2.3")).hex() == "01005e010203"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_frames_never_raise(data: bytes) -> None:
    raw.parse_udp_frame(data)
    raw.parse_arp_frame(data)


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_fuzz_mutated_udp_frames(data: st.DataObject) -> None:
    good = bytearray(frame(data.draw(st.binary(max_size=64))))
    position = data.draw(st.integers(0, len(good) - 1))
    good[position] ^= data.draw(st.integers(1, 255))
    parsed = raw.parse_udp_frame(bytes(good))
    if parsed is not None:  # the checksums catch every single-byte change past the MAC addresses
        assert position < 12
