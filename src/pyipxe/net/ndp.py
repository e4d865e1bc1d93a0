"""The asyncio driver of router discovery: an ICMPv6 raw socket that sends RS and hears RAs.

Why a raw ICMPv6 socket (and not AF_PACKET as DHCPv4 uses): by the time IPv6 runs, the
kernel has a link-local address on the interface, so it can build the IPv6 header and the
ICMPv6 checksum for us; an ``ICMP6_FILTER`` lets only type 134 through, and the kernel
delivers RAs to raw sockets whatever ``accept_ra`` says. The hop limit of each RA comes
with it (``IPV6_RECVHOPLIMIT``) so the machine can apply RFC 4861's hop-limit-255 rule.

While the link-local address is still tentative (DAD runs for about two seconds after a
link comes up) the kernel refuses to send (EADDRNOTAVAIL); the solicitation is then kept
and retried every 0.1 s until it leaves, so discovery starts as soon as Linux lets it.
The protocol itself is :mod:`pyipxe.proto.ndp`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto.dhcp import DhcpStats, Failed, SetTimer, TimerExpired
from pyipxe.proto.ndp import (
    ALL_ROUTERS,
    ICMPV6_ROUTER_ADVERTISEMENT,
    NDP_HOP_LIMIT,
    NdpOutput,
    RaReceived,
    RouterAdvertisement,
    RouterDiscovery,
    RouterFound,
    RsTransmit,
)

ICMP6_FILTER = 1  # linux/icmpv6.h, at level IPPROTO_ICMPV6
SEND_RETRY = 0.1
# pyipxe's own (iPXE always owns its NIC): Linux refused the raw socket. Numbered in ndp.c; a guess.
ERR_NO_RAW_SOCKET = ErrorSite(ErrorClass.EPERM, 0x0760)
ERR_NO_DEVICE = ErrorSite(ErrorClass.ENODEV, 0x0760)


def _quiet(message: str) -> None:
    pass


def icmp6_filter(*allowed: int) -> bytes:
    """``struct icmp6_filter``: 256 bits, a set bit *blocks* that type."""
    bits = bytearray(b"\xff" * 32)
    for kind in allowed:
        bits[kind >> 3] &= ~(1 << (kind & 7)) & 0xFF
    return bytes(bits)


def open_ndp_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(ICMPV6_ROUTER_ADVERTISEMENT))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, NDP_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, NDP_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return -1


async def _receive(sock: socket.socket, timeout: float) -> RaReceived | None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await asyncio.wait_for(future, max(0.0, timeout))
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(sock.fileno())
    try:
        data, ancillary, _, address = sock.recvmsg(65536, socket.CMSG_SPACE(4))
    except BlockingIOError:
        return None
    source = IPv6Address(address[0].split("%", 1)[0])
    return RaReceived(data, source, _hop_limit(ancillary))


async def solicit_router(ifname: str, ifindex: int, mac: bytes | None, *, log: Callable[[str], None] = _quiet,
                         stats: DhcpStats | None = None,
                         found: Callable[[], None] | None = None) -> RouterAdvertisement:
    """Send router solicitations on ``ifname`` until the first RA; ETIMEDOUT (ndp.c) at 15.75 s.

    ``found`` is called the moment an RA is accepted (ifconf uses it to know that IPv6 is
    worth waiting for).
    """
    try:
        sock = open_ndp_socket(ifname)
    except PermissionError as error:
        raise IpxeError(ERR_NO_RAW_SOCKET) from error
    except OSError as error:
        raise IpxeError(ERR_NO_DEVICE) from error
    machine = RouterDiscovery(mac)
    loop = asyncio.get_running_loop()
    timer: tuple[float, int] | None = None
    pending: bytes | None = None
    outputs: list[NdpOutput] = machine.start(loop.time())
    try:
        while True:
            for out in outputs:
                if isinstance(out, RsTransmit):
                    pending = out.payload
                elif isinstance(out, SetTimer):
                    timer = (loop.time() + out.seconds, out.token)
                elif isinstance(out, RouterFound):
                    log(f"NDP {ifname}: router advertisement from {out.advertisement.router}")
                    if found is not None:
                        found()
                    return out.advertisement
                elif isinstance(out, Failed):
                    log(f"NDP {ifname}: {out.reason}")
                    raise out.error
            outputs = []
            if pending is not None:
                try:
                    sock.sendto(pending, (str(ALL_ROUTERS), 0, 0, ifindex))
                    log(f"NDP {ifname}: router solicitation")
                    pending = None
                except OSError as error:
                    if error.errno not in (errno.EADDRNOTAVAIL, errno.EAGAIN, errno.ENETDOWN):
                        raise IpxeError(ERR_NO_DEVICE) from error
            deadline = timer[0] if timer is not None else loop.time() + 1.0
            if pending is not None:
                deadline = min(deadline, loop.time() + SEND_RETRY)
            received = await _receive(sock, deadline - loop.time())
            if received is not None:
                outputs = machine.handle(received, loop.time())
            if not outputs and timer is not None and loop.time() >= timer[0]:
                token, timer = timer[1], None
                outputs = machine.handle(TimerExpired(token), loop.time())
    finally:
        sock.close()
        if stats is not None:
            stats.__dict__.update(machine.stats.__dict__)
