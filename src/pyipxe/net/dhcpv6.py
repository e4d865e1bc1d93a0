"""The asyncio driver of the DHCPv6 client: one UDP socket on the link-local address, port 546.

Why a UDP socket (DHCPv4 needs raw frames): DHCPv6 runs link-local. The interface has its
fe80:: address as soon as the link is up with IPv6 enabled, servers answer that address
by unicast, and the kernel delivers it like any datagram. The socket is bound to the
link-local address (more specific than a host DHCPv6 client's wildcard bind, and with
SO_REUSEADDR) and to the device; requests go to ff02::1:2 port 547 with hop limit 255,
as iPXE's do. If the address is still tentative (DAD just after link-up) the driver
waits for it, up to :data:`LINK_LOCAL_WAIT`.

The protocol is :mod:`pyipxe.proto.dhcpv6`; nothing here changes settings or the
interface: the caller registers the lease (:func:`pyipxe.settings.dhcpv6.register_dhcpv6`).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from ipaddress import IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto.dhcp import DhcpStats, Failed, SetTimer, TimerExpired
from pyipxe.proto.dhcpv6 import (
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    CLIENT_PORT,
    SERVER_PORT,
    Bound,
    Dhcpv6Client,
    Dhcpv6Identity,
    Dhcpv6Lease,
    Output,
    Received,
    Transmit,
)

LINK_LOCAL_WAIT = 3.0
HOP_LIMIT = 255
# pyipxe's own: the socket could not be opened or bound (port 546 held exclusively by a host
# DHCPv6 client, no such device). Numbered in dhcpv6.c; iPXE's "could not open socket".
ERR_SOCKET = ErrorSite(ErrorClass.EADDRINUSE, 0x3B60)


def _quiet(message: str) -> None:
    pass


def link_local(ifindex: int) -> IPv6Address | None:
    """The interface's usable (not tentative, not failed) link-local address, if any."""
    from pyipxe.net.devices import IFA_F_DADFAILED, IFA_F_TENTATIVE, ipv6_addresses

    for address, _, flags in ipv6_addresses().get(ifindex, []):
        if address.is_link_local and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            return address
    return None


async def wait_link_local(ifindex: int, timeout: float = LINK_LOCAL_WAIT) -> IPv6Address | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            found = link_local(ifindex)
        except OSError:
            return None
        if found is not None or loop.time() >= deadline:
            return found
        await asyncio.sleep(0.1)


def open_client_socket(ifname: str, ifindex: int, source: IPv6Address | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        sock.bind((str(source) if source is not None else "::", CLIENT_PORT, 0, ifindex if source else 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def acquire_dhcpv6(ifname: str, ifindex: int, identity: Dhcpv6Identity, *, stateful: bool,
                         log: Callable[[str], None] = _quiet, stats: DhcpStats | None = None) -> Dhcpv6Lease:
    """One DHCPv6 session (SOLICIT … REPLY, or INFORMATION-REQUEST … REPLY) on ``ifname``.

    Raises :class:`IpxeError`: ETIMEDOUT (dhcpv6.c) when no usable reply came, or the
    server's status ("No addresses available"); never anything else for network input.
    """
    source = await wait_link_local(ifindex)
    try:
        sock = open_client_socket(ifname, ifindex, source)
    except OSError as error:
        raise IpxeError(ERR_SOCKET) from error
    machine = Dhcpv6Client(identity, secrets.token_bytes(3), stateful=stateful)
    loop = asyncio.get_running_loop()
    server = (str(ALL_DHCP_RELAY_AGENTS_AND_SERVERS), SERVER_PORT, 0, ifindex)
    timer: tuple[float, int] | None = None
    outputs: list[Output] = machine.start(loop.time())
    try:
        while True:
            for out in outputs:
                if isinstance(out, Transmit):
                    log(f"DHCPv6 {machine.state.name if machine.state else ''} from {source} ({len(out.payload)} bytes)")
                    try:
                        await loop.sock_sendto(sock, out.payload, server)
                    except OSError as error:
                        log(f"DHCPv6 could not transmit: {error}")
                elif isinstance(out, SetTimer):
                    timer = (loop.time() + out.seconds, out.token)
                elif isinstance(out, Bound):
                    return out.lease
                elif isinstance(out, Failed):
                    log(f"DHCPv6 failed: {out.reason}")
                    raise out.error
            outputs = []
            deadline = timer[0] if timer is not None else loop.time() + 1.0
            try:
                data, address = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536),
                                                       max(0.0, deadline - loop.time()))
            except TimeoutError:
                data = None
            except OSError:
                data = None
            if data is not None:
                origin = IPv6Address(address[0].split("%", 1)[0])
                log(f"DHCPv6 reply from {origin} ({len(data)} bytes)")
                outputs = machine.handle(Received(data, origin), loop.time())
            if not outputs and timer is not None and loop.time() >= timer[0]:
                token, timer = timer[1], None
                outputs = machine.handle(TimerExpired(token), loop.time())
    finally:
        sock.close()
        if stats is not None:
            stats.__dict__.update(machine.stats.__dict__)
