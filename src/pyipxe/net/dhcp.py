"""The asyncio driver of the DHCP client: raw frames on one interface, timers, progress dots.

Why raw frames: an unconfigured interface has no address, so the kernel cannot deliver the
server's unicast reply (to ``yiaddr``) to a UDP socket, and unicast ProxyDHCP/boot-server
requests must leave from the leased address before it is configured. iPXE owns its NIC;
we do the same with an ``AF_PACKET`` socket (see :mod:`pyipxe.net.rawpacket`). Needs
CAP_NET_RAW (root). The protocol itself is :mod:`pyipxe.proto.dhcp`; this module only
moves its bytes and runs its timer.

Interface for the network commands (``dhcp``/``ifconf``, ``pxebs``, autoboot)::

    from pyipxe.net.dhcp import acquire_lease, pxe_boot_server_discovery
    from pyipxe.settings.dhcp import identity_from_settings, register_lease, register_pxebs, pxebs_parameters

    identity = identity_from_settings(ctx.settings, dev_block, mac, platform=ctx.platform,
                                      buildarch=host_buildarch(), broadcast=<interface has an IPv4 address>)
    console.write(f"Configuring (net0 {mac_text})...")
    lease = await acquire_lease(ifname, ifindex, mac, identity, progress=lambda: console.write("."))
    register_lease(ctx.settings, dev_block, lease)        # net0.dhcp, root proxydhcp/pxebs
    # own mode: configure lease.address/lease.prefix_length, lease.routers[0], lease.dns_servers

    # pxebs <if> <type> (or autoboot's PXE menu):
    control, mcast, servers = pxebs_parameters(ctx.settings)
    lease = await pxe_boot_server_discovery(ifname, ifindex, mac, identity, pxe_type, ciaddr=<${net0/ip}>,
                                            control=control, multicast=mcast, servers=servers)
    register_pxebs(ctx.settings, lease.pxebs)

Both raise :class:`pyipxe.errors.IpxeError` (ETIMEDOUT ``0x4c106035`` on BIOS numbering when
no server answers, as iPXE) and never anything else for network input. Cancellation
(Ctrl-C) propagates as ``asyncio.CancelledError`` after the socket is closed. ``progress``
is called once per elapsed second (iPXE's dot); ``log`` receives ``-v`` diagnostics.
Pass a :class:`DhcpStats` as ``stats`` to see what was sent, received and dropped.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from ipaddress import IPv4Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net import rawpacket as raw
from pyipxe.proto.dhcp import (
    Bound,
    DhcpClient,
    DhcpLease,
    DhcpStats,
    Failed,
    PxeBootServerDiscovery,
    Received,
    SetTimer,
    TimerExpired,
    Transmit,
    pxebs_targets,
)
from pyipxe.proto.dhcp_packet import BOOTPC_PORT, BROADCAST, ZERO, DhcpIdentity, DhcpPacket

__all__ = ["DhcpIdentity", "DhcpLease", "DhcpStats", "acquire_lease", "pxe_boot_server_discovery"]

# pyipxe-specific (iPXE cannot lack permission on its own NIC): the raw socket could not be
# opened, e.g. without CAP_NET_RAW. Numbered in DHCP's error file; a guess, not iPXE's.
ERR_NO_RAW_SOCKET = ErrorSite(ErrorClass.EPERM, 0x1060)
ERR_NO_DEVICE = ErrorSite(ErrorClass.ENODEV, 0x1060)
ARP_WAIT = 0.5  # seconds to wait for a boot server's ARP reply before broadcasting the frame


def _quiet(message: str) -> None:
    pass


class _Link:
    """One interface seen through a packet socket: send UDP from port 68, receive replies to it."""

    def __init__(self, ifname: str, mac: bytes, log: Callable[[str], None]) -> None:
        try:
            self.sock = raw.open_packet_socket(ifname)
        except PermissionError as error:
            raise IpxeError(ERR_NO_RAW_SOCKET) from error
        except OSError as error:
            raise IpxeError(ERR_NO_DEVICE) from error
        self.mac = mac
        self.log = log
        self.neighbours: dict[IPv4Address, bytes] = {}
        self.claimed: IPv4Address | None = None  # the address we answer ARP for while using it
        self.pending: list[raw.UdpDatagram] = []
        self._ident = secrets.randbelow(0x10000)

    def close(self) -> None:
        self.sock.close()

    async def send(self, out: Transmit) -> None:
        dest = out.dest_ip
        if dest == BROADCAST:
            dst_mac = raw.BROADCAST_MAC
        elif dest.is_multicast:
            dst_mac = raw.multicast_mac(dest)
        else:
            dst_mac = self.neighbours.get(dest) or await self._resolve(dest, out.source_ip)
        if out.source_ip != ZERO:
            self.claimed = out.source_ip
        self._ident += 1
        frame = raw.build_udp_frame(self.mac, dst_mac, out.source_ip, dest, BOOTPC_PORT, out.dest_port,
                                    out.payload, ident=self._ident)
        await asyncio.get_running_loop().sock_sendall(self.sock, frame)

    async def _resolve(self, target: IPv4Address, source: IPv4Address) -> bytes:
        """ARP for a server we never heard from; fall back to a broadcast frame (still delivered)."""
        request = raw.Arp(1, self.mac, source, bytes(6), target)
        await asyncio.get_running_loop().sock_sendall(self.sock, raw.build_arp_frame(self.mac, raw.BROADCAST_MAC,
                                                                                       request))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ARP_WAIT
        while target not in self.neighbours:
            datagram = await self.receive(deadline - loop.time())
            if datagram is None:
                break
            self.pending.append(datagram)
        return self.neighbours.get(target, raw.BROADCAST_MAC)

    async def receive(self, timeout: float) -> raw.UdpDatagram | None:
        """The next UDP datagram for port 68 within ``timeout`` s; ARP is handled on the way."""
        if self.pending:
            return self.pending.pop(0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                frame, address = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65536), remaining)
            except TimeoutError:
                return None
            if len(address) > 2 and address[2] == raw.PACKET_OUTGOING:
                continue
            datagram = raw.parse_udp_frame(frame)
            if datagram is not None:
                if datagram.dst_port == BOOTPC_PORT:
                    self.neighbours[datagram.src_ip] = datagram.src_mac
                    return datagram
                continue
            await self._on_arp(raw.parse_arp_frame(frame))

    async def _on_arp(self, arp: raw.Arp | None) -> None:
        if arp is None:
            return
        if arp.sender_ip != ZERO:
            self.neighbours[arp.sender_ip] = arp.sender_mac
        if arp.op == 1 and self.claimed is not None and arp.target_ip == self.claimed:
            # A server answering our unicast request asks who has the leased address.
            reply = raw.Arp(2, self.mac, self.claimed, arp.sender_mac, arp.sender_ip)
            await asyncio.get_running_loop().sock_sendall(self.sock, raw.build_arp_frame(self.mac, arp.sender_mac,
                                                                                           reply))


async def _drive(link: _Link, machine: DhcpClient | PxeBootServerDiscovery, log: Callable[[str], None],
                 progress: Callable[[], None] | None) -> DhcpLease:
    loop = asyncio.get_running_loop()
    timer: tuple[float, int] | None = None
    next_dot = loop.time() + 1.0
    outputs = machine.start(loop.time())
    while True:
        for out in outputs:
            if isinstance(out, Transmit):
                log(f"DHCP {machine.phase.value} to {out.dest_ip}:{out.dest_port} ({len(out.payload)} bytes)")
                await link.send(out)
            elif isinstance(out, SetTimer):
                timer = (loop.time() + out.seconds, out.token)
            elif isinstance(out, Bound):
                return out.lease
            elif isinstance(out, Failed):
                log(f"DHCP failed: {out.reason}")
                raise out.error
        outputs = []
        deadline = timer[0] if timer is not None else loop.time() + 1.0
        if progress is not None:
            deadline = min(deadline, next_dot)
        datagram = await link.receive(deadline - loop.time())
        if datagram is not None:
            log(f"DHCP reply from {datagram.src_ip}:{datagram.src_port} ({len(datagram.payload)} bytes)")
            outputs = machine.handle(Received(datagram.payload, datagram.src_ip, datagram.src_port), loop.time())
        now = loop.time()
        if progress is not None and now >= next_dot:
            next_dot += 1.0
            progress()
        if not outputs and timer is not None and now >= timer[0]:
            token = timer[1]
            timer = None
            outputs = machine.handle(TimerExpired(token), now)


def _copy_stats(source: DhcpStats, target: DhcpStats | None) -> None:
    if target is not None:
        target.__dict__.update(source.__dict__)


async def acquire_lease(ifname: str, ifindex: int, mac: bytes, identity: DhcpIdentity, *,
                        log: Callable[[str], None] = _quiet, progress: Callable[[], None] | None = None,
                        stats: DhcpStats | None = None, proxy_wait: float = 2.0) -> DhcpLease:
    """Run one DHCP session (DISCOVER … ACK, ProxyDHCP) on ``ifname`` and return the lease.

    ``ifindex`` identifies the same interface for callers that track it; the socket is
    bound by name. ``proxy_wait`` is iPXE's 2 s wait for ProxyDHCP offers; keep it unless
    the user asked for speed over fidelity. Nothing is configured and no settings change
    here: the caller registers the lease (:func:`pyipxe.settings.dhcp.register_lease`).
    """
    del ifindex  # bound by name; kept in the signature so callers pass what they know
    machine = DhcpClient(identity, secrets.randbits(32), proxy_wait=proxy_wait)
    link = _Link(ifname, mac, log)
    try:
        return await _drive(link, machine, log, progress)
    finally:
        link.close()
        _copy_stats(machine.stats, stats)


async def pxe_boot_server_discovery(ifname: str, ifindex: int, mac: bytes, identity: DhcpIdentity,
                                    pxe_type: int, *, ciaddr: IPv4Address, control: int = 0,
                                    multicast: IPv4Address | None = None, servers: bytes | None = None,
                                    ack: DhcpPacket | None = None, log: Callable[[str], None] = _quiet,
                                    progress: Callable[[], None] | None = None,
                                    stats: DhcpStats | None = None) -> DhcpLease:
    """PXE boot-server discovery for ``pxe_type`` (reference §5.6); the reply is ``lease.pxebs``.

    ``control``/``multicast``/``servers`` are options 43.6/43.7/43.8 as the settings hold
    them (:func:`pyipxe.settings.dhcp.pxebs_parameters`). Fails with EINVAL when no
    target exists for the type, ETIMEDOUT when none answers.
    """
    del ifindex
    attempt, accept = pxebs_targets(pxe_type, control, multicast, servers)
    machine = PxeBootServerDiscovery(identity, secrets.randbits(32), pxe_type, ciaddr, attempt, accept, ack)
    link = _Link(ifname, mac, log)
    link.claimed = ciaddr if ciaddr != ZERO else None
    try:
        return await _drive(link, machine, log, progress)
    finally:
        link.close()
        _copy_stats(machine.stats, stats)


def interface_has_ipv4(ifname: str) -> bool:
    """Whether ``ifname`` already has an IPv4 address (iPXE then asks for broadcast replies)."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", ifname.encode()[:15]))  # SIOCGIFADDR
        except OSError:
            return False
    return True
