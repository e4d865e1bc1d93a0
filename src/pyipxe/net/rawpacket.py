"""Ethernet/ARP/IPv4/UDP frames built and parsed by hand, and the raw socket that carries them.

Why: a DHCP client must talk before the interface has an address, and the kernel will not
deliver a unicast reply to ``yiaddr`` to a UDP socket on an unconfigured interface (nor
let us send from 0.0.0.0 on one of several NICs reliably). iPXE owns its NIC; the
Linux equivalent is an ``AF_PACKET`` socket bound to the interface. The headers are
twenty lines of ``struct``; a library (scapy) would cost a second of import time.

Rules: parsing untrusted frames never raises; it returns ``None`` for anything that is
not a well-formed IPv4/UDP datagram (bad header length, bad checksum, fragment,
truncated) or ARP packet. Checksums are verified when present (UDP checksum 0 means
none, RFC 768).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6
PACKET_OUTGOING = 4  # sll_pkttype of our own transmissions, seen by an ETH_P_ALL socket
SO_ATTACH_FILTER = 26
_IP_TTL = 64

# Classic BPF for "arp or (ip and udp dst port 68)", as ``tcpdump -dd`` compiles it: the
# kernel then wakes us only for DHCP replies and ARP, not for every frame on the LAN.
_BPF_DHCP_CLIENT = (
    (0x28, 0, 0, 0x0000000C), (0x15, 8, 0, 0x00000806), (0x15, 0, 8, 0x00000800),
    (0x30, 0, 0, 0x00000017), (0x15, 0, 6, 0x00000011), (0x28, 0, 0, 0x00000014),
    (0x45, 4, 0, 0x00001FFF), (0xB1, 0, 0, 0x0000000E), (0x48, 0, 0, 0x00000010),
    (0x15, 0, 1, 0x00000044), (0x06, 0, 0, 0x00040000), (0x06, 0, 0, 0x00000000),
)


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _udp_checksum(src: IPv4Address, dst: IPv4Address, segment: bytes) -> int:
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(segment))
    value = checksum(pseudo + segment)
    return value or 0xFFFF  # 0 would mean "no checksum"


def multicast_mac(address: IPv4Address) -> bytes:
    """RFC 1112: 01:00:5e + the low 23 bits of the group."""
    return b"\x01\x00\x5e" + bytes([address.packed[1] & 0x7F]) + address.packed[2:]


def build_udp_frame(src_mac: bytes, dst_mac: bytes, src_ip: IPv4Address, dst_ip: IPv4Address,
                    src_port: int, dst_port: int, payload: bytes, *, ident: int = 0) -> bytes:
    """One Ethernet frame carrying one UDP datagram, both checksums filled in."""
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    udp = udp[:6] + struct.pack("!H", _udp_checksum(src_ip, dst_ip, udp)) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, _IP_TTL,
                         socket.IPPROTO_UDP, 0, src_ip.packed, dst_ip.packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + header + udp


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    src_mac: bytes
    src_ip: IPv4Address
    dst_ip: IPv4Address
    src_port: int
    dst_port: int
    payload: bytes


def parse_udp_frame(frame: bytes) -> UdpDatagram | None:
    """The UDP datagram in an Ethernet frame, or ``None`` if it is not a sound IPv4/UDP one."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    version_ihl = ip[0]
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < 20 or len(ip) < ihl + 8:
        return None
    total = int.from_bytes(ip[2:4], "big")
    if total < ihl + 8 or total > len(ip) or ip[9] != socket.IPPROTO_UDP:
        return None
    if int.from_bytes(ip[6:8], "big") & 0x3FFF:  # more-fragments flag or an offset
        return None
    if checksum(ip[:ihl]) != 0:
        return None
    src, dst = IPv4Address(ip[12:16]), IPv4Address(ip[16:20])
    udp = ip[ihl:total]
    src_port, dst_port, length, udp_sum = struct.unpack("!HHHH", udp[:8])
    if length < 8 or length > len(udp):
        return None
    udp = udp[:length]
    if udp_sum:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
        if checksum(pseudo + udp) != 0:
            return None
    return UdpDatagram(frame[6:12], src, dst, src_port, dst_port, udp[8:])


@dataclass(frozen=True, slots=True)
class Arp:
    op: int  # 1 request, 2 reply
    sender_mac: bytes
    sender_ip: IPv4Address
    target_mac: bytes
    target_ip: IPv4Address


def parse_arp_frame(frame: bytes) -> Arp | None:
    if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4 or op not in (1, 2):
        return None
    body = frame[22:42]
    return Arp(op, body[0:6], IPv4Address(body[6:10]), body[10:16], IPv4Address(body[16:20]))


def build_arp_frame(src_mac: bytes, dst_mac: bytes, arp: Arp) -> bytes:
    body = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, arp.op) + arp.sender_mac + arp.sender_ip.packed
    body += arp.target_mac + arp.target_ip.packed
    return dst_mac + src_mac + struct.pack("!H", ETH_P_ARP) + body


def open_packet_socket(ifname: str) -> socket.socket:
    """A non-blocking ``AF_PACKET`` socket on ``ifname`` that sees DHCP replies and ARP only."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        program = b"".join(struct.pack("HBBI", *insn) for insn in _BPF_DHCP_CLIENT)
        import ctypes  # only here: the filter needs a pointer to the program

        buffer = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(_BPF_DHCP_CLIENT), ctypes.addressof(buffer))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
