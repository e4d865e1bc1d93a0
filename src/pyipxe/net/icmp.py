"""ICMP echo for ``ping``: iPXE's pinger (core/pinger.c) over a Linux ICMP socket.

Why hand-written: an echo request is eight bytes of header; no library adds anything but a
dependency. The packet functions are pure (tested without sockets); :class:`EchoSocket` is
the thin driver. It prefers Linux's unprivileged ``SOCK_DGRAM`` ICMP socket (the kernel
picks the identifier and filters replies) and falls back to a raw socket (root), where
replies are matched on the identifier here.

iPXE's rules kept: one request per ``--timeout`` interval, sequence numbers from 1, the
payload is bytes 0, 1, 2… and a reply must match it in length and content.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pyipxe.net.rawpacket import checksum

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


def payload(length: int) -> bytes:
    return bytes(i & 0xFF for i in range(length))


def build_echo(version: int, ident: int, sequence: int, data: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, 0, ident & 0xFFFF, sequence & 0xFFFF)
    if version == 6:
        return header + data  # the kernel fills in the ICMPv6 checksum (it covers a pseudo-header)
    return header[:2] + struct.pack("!H", checksum(header + data)) + header[4:] + data


@dataclass(frozen=True)
class EchoReply:
    ident: int
    sequence: int
    data: bytes


def parse_reply(version: int, packet: bytes, *, ip_header: bool) -> EchoReply | None:
    """An echo reply in ``packet`` (with its IPv4 header on raw IPv4 sockets), else None."""
    if ip_header and version == 4:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < 8 or packet[0] != ECHO_REPLY[version] or packet[1] != 0:
        return None
    ident, sequence = struct.unpack_from("!HH", packet, 4)
    return EchoReply(ident, sequence, packet[8:])


class EchoSocket:
    """One ICMP socket towards one address."""

    def __init__(self, address: IPv4Address | IPv6Address) -> None:
        self.version = address.version
        self.address = str(address)
        family = socket.AF_INET if self.version == 4 else socket.AF_INET6
        proto = socket.IPPROTO_ICMP if self.version == 4 else socket.IPPROTO_ICMPV6
        try:
            self.sock = socket.socket(family, socket.SOCK_DGRAM, proto)
            self.raw = False
        except OSError:
            self.sock = socket.socket(family, socket.SOCK_RAW, proto)
            self.raw = True
        self.sock.setblocking(False)
        self.ident = os.getpid() & 0xFFFF

    def send(self, sequence: int, data: bytes) -> None:
        packet = build_echo(self.version, self.ident, sequence, data)
        with contextlib.suppress(OSError):  # like a dropped frame: the reply simply never comes
            self.sock.sendto(packet, (self.address, 0))

    async def receive(self, timeout: float) -> tuple[EchoReply, str] | None:
        """The next echo reply for us within ``timeout`` seconds, with its source address."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                packet, source = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), remaining)
            except TimeoutError:
                return None
            except OSError:
                continue
            reply = parse_reply(self.version, packet, ip_header=self.raw)
            if reply is None or (self.raw and reply.ident != self.ident):
                continue
            if self.raw and str(source[0]).split("%", 1)[0] != self.address:
                continue
            return reply, str(source[0]).split("%", 1)[0]
        return None

    def close(self) -> None:
        self.sock.close()
