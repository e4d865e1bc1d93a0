"""SNTP for the ``ntp`` command: iPXE's one-packet clock check (net/udp/ntp.c).

Why hand-written: the exchange is one 48-byte request and one reply; iPXE checks only a
few fields, and matching its checks (mode, its own magic in the originate timestamp,
kiss-o'-death) is the point. :func:`build_request` and :func:`parse_response` are pure;
:func:`query` is the asyncio driver with iPXE's retry timer (1 s doubling, give up past
10 s).

What the result changes: only pyipxe's clock (``${unixtime}`` and what pyipxe uses for
"now"), never the host's, in either network mode — setting the system clock is not a
network-ownership matter and a boot loader on a running host must not do it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

NTP_PORT = 123
NTP_EPOCH = 2208988800  # seconds from 1900 to 1970
FRACTION_MAGIC = 0x69505845  # "iPXE", iPXE's marker in the transmit fraction
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 10.0

# net/udp/ntp.c. The file id (0x45) is recalled from iPXE's errfile.h, not verified.
ERR_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x4560)
ERR_KISS_OF_DEATH = ErrorSite(ErrorClass.EPROTO, 0x4560)


def build_request(now: float) -> bytes:
    flags = (3 << 6) | (1 << 3) | 3  # leap unknown, version 1, client
    header = bytearray(48)
    header[0] = flags
    struct.pack_into("!II", header, 40, (int(now) + NTP_EPOCH) & 0xFFFFFFFF, FRACTION_MAGIC)
    return bytes(header)


@dataclass(frozen=True)
class NtpResult:
    delta: int  # seconds to add to the local clock


def parse_response(packet: bytes) -> NtpResult | None:
    """The clock delta from a server reply; None to ignore the packet; EPROTO on kiss-o'-death."""
    if len(packet) < 48 or packet[0] & 0x07 != 4:
        return None
    originate_seconds, originate_fraction = struct.unpack_from("!II", packet, 24)
    if originate_fraction != FRACTION_MAGIC:
        return None
    if packet[1] == 0:
        raise IpxeError(ERR_KISS_OF_DEATH)
    receive_seconds = struct.unpack_from("!I", packet, 32)[0]
    delta = (receive_seconds - originate_seconds) & 0xFFFFFFFF
    return NtpResult(delta - (1 << 32) if delta & 0x80000000 else delta)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        port = addr[1] if len(addr) > 1 and isinstance(addr[1], int) else 0
        self.replies.put_nowait((data, port))


async def query(address: str, now: float | None = None) -> NtpResult:
    """Ask ``address``; retransmit on iPXE's schedule; ETIMEDOUT when it runs out."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    transport, protocol = await loop.create_datagram_endpoint(_Protocol, remote_addr=(address, NTP_PORT),
                                                              family=family)
    try:
        timeout = MIN_TIMEOUT
        while timeout <= MAX_TIMEOUT:
            transport.sendto(build_request(time.time() if now is None else now))
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    data, port = await asyncio.wait_for(protocol.replies.get(), remaining)
                except TimeoutError:
                    break
                if port != NTP_PORT:
                    continue
                result = parse_response(data)
                if result is not None:
                    return result
            timeout *= 2
        raise IpxeError(ERR_TIMEOUT)
    finally:
        transport.close()
