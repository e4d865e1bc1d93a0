"""A sans-IO DHCP/BOOTP client that asks exactly what iPXE asks (reference §5).

Why hand-written: DHCP servers hand out different answers depending on what the client
sends (dnsmasq's ``dhcp-userclass=set:ipxe,iPXE``, ISC's ``if exists user-class``), so
pyipxe must send iPXE's options byte for byte, in iPXE's order, and follow iPXE's
timing and its ProxyDHCP and PXE boot-server rules. The Python DHCP libraries (scapy,
pydhcplib, dhcppython) either own sockets or cannot express iPXE's option layout and
state machine; the protocol is small enough to state here.

Rules of this module (everything that affects transitions lives here):
- No sockets, no clocks, no asyncio. A driver calls :meth:`DhcpClient.start` and
  :meth:`DhcpClient.handle` with the current monotonic time and acts on the outputs:
  :class:`Transmit`, :class:`SetTimer`, :class:`Bound`, :class:`Failed`.
- Nothing from the network raises. :func:`parse_packet` raises :class:`DhcpFormatError`
  on malformed bytes; the machines catch it, drop the packet and count it in
  :class:`DhcpStats`. A foreign xid or chaddr is dropped and counted likewise.
- One retransmission timer, iPXE's ``retry.c``: it starts at ``min`` (0 means 0.25 s),
  doubles on every expiry and fails when the doubled value would exceed ``max``.
  Entering a state fires it at once (iPXE's ``start_timer_nodelay``), which is why
  the first packet of every state goes out immediately and counts as a transmission.
  Each :class:`SetTimer` replaces the previous one; stale tokens are ignored.
- Options are kept in packet order as raw bytes; any option can be read as an
  encapsulation (``175.8`` is sub-option 8 inside option 175), as iPXE's settings do.

States and transitions (per received packet that passed xid/chaddr checks):

    state      accepts                                          then
    DISCOVER   OFFER/BOOTP from :67 with yiaddr (best 175.1)    REQUEST once (no-pxedhcp, or a
               any packet with 60=PXEClient: proxy candidate    proxy candidate, or > 2 s elapsed)
    REQUEST    ACK/BOOTP from :67, chosen server, same yiaddr   Bound, or PROXY if a candidate lacks
               NAK from the chosen server                       PXE data -> DISCOVER again
    PROXY      OFFER/ACK from :4011 of the candidate, PXE data  Bound (with proxy)
    (timer)    DISCOVER: offer and > 2 s -> REQUEST; PROXY: > 2 s -> Bound without proxy

:class:`PxeBootServerDiscovery` is the separate, smaller machine of reference §5.6
(``pxebs``): one target after another, each given up when more than 3 s have passed
at a timer expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address

from pyipxe.errors import ErrorSite, IpxeError
from pyipxe.proto.dhcp_packet import (
    BOOTPS_PORT,
    BROADCAST,
    EB_NO_PXEDHCP,
    EB_PRIORITY,
    ERR_NO_BOOT_SERVERS,
    ERR_TIMED_OUT,
    PXE_BOOT_MENU_ITEM,
    PXE_PORT,
    ZERO,
    DhcpFormatError,
    DhcpIdentity,
    DhcpPacket,
    MessageType,
    Tag,
    _ipv4,
    build_request,
    int8_value,
    parse_packet,
)
from pyipxe.proto.retry import RetryTimer, SetTimer, TimerExpired, Timing

# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A UDP payload that arrived for port 68 (or our pxebs port) and where it came from."""

    payload: bytes
    source_ip: IPv4Address
    source_port: int


Input = Received | TimerExpired


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``payload`` from port 68 to ``dest_ip:dest_port`` (broadcast, or unicast to a server).

    ``source_ip`` is the address to put in the IP header (0.0.0.0 before a lease).
    """

    payload: bytes
    dest_ip: IPv4Address
    dest_port: int
    source_ip: IPv4Address = ZERO


@dataclass(frozen=True)
class DhcpLease:
    """What a successful DHCP session produced: the ACK, and the ProxyDHCP/boot-server replies.

    The convenience properties read the ACK the way iPXE's settings would (first address
    of multi-address options is only a ``${…}`` rule; here every address is listed).
    """

    ack: DhcpPacket
    proxy: DhcpPacket | None = None
    pxebs: DhcpPacket | None = None

    @property
    def address(self) -> IPv4Address:
        return self.ack.yiaddr

    @property
    def netmask(self) -> IPv4Address:
        """Option 1, else the classful default (iPXE's rule for a missing netmask)."""
        given = _ipv4(self.ack.option(Tag.SUBNET_MASK))
        if given is not None:
            return given
        first = self.address.packed[0]
        return IPv4Address("255.0.0.0" if first < 128 else "255.255.0.0" if first < 192 else "255.255.255.0")

    @property
    def prefix_length(self) -> int:
        return bin(int(self.netmask)).count("1")

    @property
    def routers(self) -> list[IPv4Address]:
        return _addresses(self.ack.option(Tag.ROUTERS))

    @property
    def dns_servers(self) -> list[IPv4Address]:
        return _addresses(self.ack.option(Tag.DNS_SERVERS))

    @property
    def domain(self) -> str | None:
        value = self.ack.option(Tag.DOMAIN_NAME)
        return value.split(b"\0", 1)[0].decode("utf-8", "replace") if value else None

    @property
    def lease_time(self) -> int | None:
        value = self.ack.option(Tag.LEASE_TIME)
        return int.from_bytes(value[:4], "big") if value and len(value) >= 4 else None

    @property
    def server_id(self) -> IPv4Address:
        return self.ack.server_id


def _addresses(value: bytes | None) -> list[IPv4Address]:
    if not value:
        return []
    return [IPv4Address(value[i:i + 4]) for i in range(0, len(value) - 3, 4)]


@dataclass(frozen=True, slots=True)
class Bound:
    lease: DhcpLease


@dataclass(frozen=True, slots=True)
class Failed:
    error: IpxeError
    reason: str


Output = Transmit | SetTimer | Bound | Failed


@dataclass
class DhcpStats:
    """Counters for ``-v`` diagnostics and the fuzz tests' "dropped, not crashed" checks."""

    sent: int = 0
    received: int = 0
    malformed: int = 0  # not a BOOTP/DHCP reply we can parse
    foreign: int = 0  # another transaction's xid or another client's chaddr
    ignored: int = 0  # well-formed and ours, but not acceptable in this state
    offers: int = 0
    naks: int = 0


# ---- the retransmission timer ----------------------------------------------------------------


DISCOVER_TIMING = Timing(1.0, 10.0)
REQUEST_TIMING = Timing(0.0, 10.0)
PROXY_TIMING = Timing(0.0, 10.0)
PXEBS_TIMING = Timing(1.0, 10.0)
DISCOVER_PROXY_WAIT = 2.0  # DHCP_DISC_PROXY_TIMEOUT_SEC
REQUEST_PROXY_WAIT = 2.0  # DHCP_REQ_PROXY_TIMEOUT_SEC
PXEBS_MAX_WAIT = 3.0  # PXEBS_MAX_TIMEOUT_SEC


class Phase(Enum):
    IDLE = "idle"
    DISCOVER = "DHCPDISCOVER"
    REQUEST = "DHCPREQUEST"
    PROXY = "ProxyDHCPREQUEST"
    PXEBS = "BootServerREQUEST"
    BOUND = "bound"
    FAILED = "failed"


# ---- the DHCP client ---------------------------------------------------------------------------


class _Session:
    """What both machines share: identity, xid, the timer, iPXE's ``secs`` debug counter."""

    def __init__(self, identity: DhcpIdentity, xid: int) -> None:
        self.identity = identity
        self.xid = xid & 0xFFFFFFFF
        self.phase = Phase.IDLE
        self.stats = DhcpStats()
        self.count = 0  # transmissions so far (timer expiries, as iPXE counts them)
        self.started = 0.0  # when the current phase began
        self._timer = RetryTimer()

    def _accept(self, event: Received) -> DhcpPacket | None:
        """Parse and check xid/chaddr; anything else is dropped and counted, never raised."""
        self.stats.received += 1
        try:
            packet = parse_packet(event.payload)
        except DhcpFormatError:
            self.stats.malformed += 1
            return None
        mac = self.identity.mac[:16]
        if packet.op != 2:
            self.stats.ignored += 1
            return None
        if packet.xid != self.xid or packet.chaddr[:len(mac)] != mac:
            self.stats.foreign += 1
            return None
        return packet

    def _enter(self, phase: Phase, timing: Timing, now: float) -> list[Output]:
        self.phase = phase
        self.started = now
        self._timer.reset(timing)
        return self._expired(now)  # iPXE's start_timer_nodelay: fires at once

    def _expired(self, now: float) -> list[Output]:
        if self._timer.expire():
            return [self._fail(ERR_TIMED_OUT, f"{self.phase.value}: no reply")]
        self.count += 1
        return self._on_expired(now)

    def _on_timer(self, token: int, now: float) -> list[Output]:
        if token != self._timer.token or self.phase in (Phase.IDLE, Phase.BOUND, Phase.FAILED):
            return []
        return self._expired(now)

    def _send(self, packet: DhcpPacket, dest: IPv4Address, port: int, source: IPv4Address = ZERO) -> list[Output]:
        self.stats.sent += 1
        return [Transmit(packet.encode(), dest, port, source), self._timer.start()]

    def _fail(self, site: ErrorSite, reason: str) -> Failed:
        self.phase = Phase.FAILED
        return Failed(IpxeError(site), reason)

    def _on_expired(self, now: float) -> list[Output]:
        raise NotImplementedError


class DhcpClient(_Session):
    """One ``dhcp`` session on one interface; see the module docstring for the rules.

    ``proxy_wait`` is iPXE's 2 s wait for ProxyDHCP offers (``DHCP_DISC_PROXY_TIMEOUT_SEC``);
    lowering it is a deliberate departure (some iPXE builds set 0 for speed).
    """

    def __init__(self, identity: DhcpIdentity, xid: int, *, proxy_wait: float = DISCOVER_PROXY_WAIT) -> None:
        super().__init__(identity, xid)
        self.proxy_wait = proxy_wait
        self.offer: DhcpPacket | None = None
        self.offer_ip = ZERO
        self.server = ZERO
        self.priority = 0
        self.no_pxedhcp = False
        self.proxy_offer: DhcpPacket | None = None
        self.proxy_server = ZERO
        self.proxy_priority = 0
        self.ack: DhcpPacket | None = None
        self.leased = ZERO

    def start(self, now: float) -> list[Output]:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("DHCP session already started")
        return self._enter(Phase.DISCOVER, DISCOVER_TIMING, now)

    def handle(self, event: Input, now: float) -> list[Output]:
        if isinstance(event, TimerExpired):
            return self._on_timer(event.token, now)
        if self.phase not in (Phase.DISCOVER, Phase.REQUEST, Phase.PROXY):
            return []
        packet = self._accept(event)
        if packet is None:
            return []
        if self.phase is Phase.DISCOVER:
            return self._discover_rx(packet, event, now)
        if self.phase is Phase.REQUEST:
            return self._request_rx(packet, event, now)
        return self._proxy_rx(packet, event)

    # -- transmission (iPXE's dhcp_tx with the per-state tx)

    def _secs(self) -> int:
        return (self.count << 2) | (2 if self.offer_ip != ZERO else 0) | (1 if self.proxy_offer else 0)

    def _on_expired(self, now: float) -> list[Output]:
        if self.phase is Phase.DISCOVER:
            if self.offer_ip != ZERO and now - self.started > self.proxy_wait:
                return self._enter(Phase.REQUEST, REQUEST_TIMING, now)
            packet = build_request(self.identity, MessageType.DISCOVER, self.xid, secs=self._secs())
            return self._send(packet, BROADCAST, BOOTPS_PORT)
        if self.phase is Phase.REQUEST:
            extra = [(Tag.SERVER_IDENTIFIER, self.server.packed), (Tag.REQUESTED_ADDRESS, self.offer_ip.packed)]
            packet = build_request(self.identity, MessageType.REQUEST, self.xid, secs=self._secs(), extra=extra)
            return self._send(packet, BROADCAST, BOOTPS_PORT)
        # PROXY: give up waiting (successfully) before the timer would fail
        if now - self.started > REQUEST_PROXY_WAIT:
            return self._bound(None)
        extra = [(Tag.SERVER_IDENTIFIER, self.proxy_server.packed)]
        packet = build_request(self.identity, MessageType.REQUEST, self.xid, secs=self._secs(),
                               ciaddr=self.leased, extra=extra)
        return self._send(packet, self.proxy_server, PXE_PORT, self.leased)

    # -- reception

    def _discover_rx(self, packet: DhcpPacket, event: Received, now: float) -> list[Output]:
        msgtype = packet.message_type
        priority = int8_value(packet.option(EB_PRIORITY))
        no_pxedhcp = int8_value(packet.option(EB_NO_PXEDHCP)) != 0
        pseudo = packet.pseudo_id(event.source_ip)
        used = False
        if (packet.yiaddr != ZERO and event.source_port == BOOTPS_PORT
                and msgtype in (MessageType.OFFER, MessageType.BOOTP) and priority >= self.priority):
            self.offer, self.offer_ip, self.server = packet, packet.yiaddr, packet.server_id
            self.priority, self.no_pxedhcp = priority, no_pxedhcp
            self.stats.offers += 1
            used = True
        if pseudo != ZERO and packet.is_pxeclient() and priority >= self.proxy_priority:
            self.proxy_offer, self.proxy_server, self.proxy_priority = packet, pseudo, priority
            used = True
        if not used:
            self.stats.ignored += 1
        if self.offer_ip == ZERO:
            return []
        if not (self.no_pxedhcp or self.proxy_offer is not None or now - self.started > self.proxy_wait):
            return []
        return self._enter(Phase.REQUEST, REQUEST_TIMING, now)

    def _request_rx(self, packet: DhcpPacket, event: Received, now: float) -> list[Output]:
        msgtype = packet.message_type
        if event.source_port != BOOTPS_PORT or packet.server_id != self.server:
            self.stats.ignored += 1
            return []
        if msgtype == MessageType.NAK:
            # The server withdrew its offer: forget every offer and discover again.
            self.stats.naks += 1
            self._forget_offers()
            return self._enter(Phase.DISCOVER, DISCOVER_TIMING, now)
        if msgtype not in (MessageType.ACK, MessageType.BOOTP) or packet.yiaddr != self.offer_ip:
            self.stats.ignored += 1
            return []
        self.ack, self.leased = packet, packet.yiaddr
        if self.proxy_offer is not None and not self.no_pxedhcp:
            if self.proxy_offer.has_pxe_options():
                return self._bound(self.proxy_offer)
            return self._enter(Phase.PROXY, PROXY_TIMING, now)
        return self._bound(None)

    def _proxy_rx(self, packet: DhcpPacket, event: Received) -> list[Output]:
        acceptable = (event.source_port == PXE_PORT
                      and packet.message_type in (MessageType.OFFER, MessageType.ACK)
                      and packet.pseudo_id(event.source_ip) == self.proxy_server and packet.has_pxe_options())
        if not acceptable:
            self.stats.ignored += 1
            return []
        return self._bound(packet)

    def _forget_offers(self) -> None:
        self.offer, self.offer_ip, self.server, self.priority, self.no_pxedhcp = None, ZERO, ZERO, 0, False
        self.proxy_offer, self.proxy_server, self.proxy_priority = None, ZERO, 0

    def _bound(self, proxy: DhcpPacket | None) -> list[Output]:
        assert self.ack is not None
        self.phase = Phase.BOUND
        self._timer.token += 1
        return [Bound(DhcpLease(self.ack, proxy))]



# ---- PXE boot-server discovery (reference §5.6) ---------------------------------------------


PXEBS_NO_BROADCAST = 1
PXEBS_NO_MULTICAST = 2
PXEBS_NO_UNKNOWN_SERVERS = 4
PXEBS_SKIP = 8


def encode_pxe_type(pxe_type: int) -> bytes:
    """A boot-server type as iPXE puts it on the wire: little-endian.

    iPXE stores ``cpu_to_le16(type)`` in 43.71 and reads menu items (43.9) with
    ``le16_to_cpu``, so a type taken from a menu goes back byte for byte; a number typed
    at ``pxebs`` is sent little-endian. (The reference's "BE16" is what the PXE spec
    means; we follow iPXE's bytes.)
    """
    return (pxe_type & 0xFFFF).to_bytes(2, "little")


def boot_servers_of_type(raw: bytes, pxe_type: int) -> list[IPv4Address]:
    """Addresses from option 43.8 (type, count, IPv4s …) whose type matches; stops at garbage."""
    wanted = encode_pxe_type(pxe_type)
    found: list[IPv4Address] = []
    pos = 0
    while pos + 3 <= len(raw):
        kind, count = raw[pos:pos + 2], raw[pos + 2]
        end = pos + 3 + 4 * count
        if end > len(raw):
            break
        if kind == wanted:
            found.extend(IPv4Address(raw[i:i + 4]) for i in range(pos + 3, end, 4))
        pos = end
    return found


def pxebs_targets(pxe_type: int, control: int, multicast: IPv4Address | None,
                  servers: bytes | None) -> tuple[list[IPv4Address], list[IPv4Address] | None]:
    """(addresses to try in order, addresses to accept or None for any), from 43.6/43.7/43.8."""
    attempt: list[IPv4Address] = []
    if not control & PXEBS_NO_MULTICAST and multicast is not None and multicast != ZERO:
        attempt.append(multicast)
    if not control & PXEBS_NO_BROADCAST:
        attempt.append(BROADCAST)
    listed = boot_servers_of_type(servers or b"", pxe_type)
    attempt.extend(listed)
    accept = listed if control & PXEBS_NO_UNKNOWN_SERVERS else None
    return attempt, accept


class PxeBootServerDiscovery(_Session):
    """``pxebs <if> <type>``: ask each boot server in turn for the item ``pxe_type``.

    Each target gets requests at 0, 1 and 3 s; the first timer expiry more than 3 s into
    a target moves on to the next, and after the last one the session fails with
    ETIMEDOUT. A DHCPACK whose 43.71 matches the type (and, with 43.6 bit 4, which comes
    from a listed server) ends it: :class:`Bound` carries it as ``lease.pxebs``.
    """

    def __init__(self, identity: DhcpIdentity, xid: int, pxe_type: int, ciaddr: IPv4Address,
                 attempt: Sequence[IPv4Address], accept: Sequence[IPv4Address] | None,
                 ack: DhcpPacket | None = None) -> None:
        super().__init__(identity, xid)
        self.pxe_type = pxe_type
        self.ciaddr = ciaddr
        self.attempt = list(attempt)
        self.accept = list(accept) if accept is not None else None
        self.index = 0
        self.ack = ack

    def start(self, now: float) -> list[Output]:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("PXE boot server discovery already started")
        if not self.attempt:
            return [self._fail(ERR_NO_BOOT_SERVERS, f"no PXE boot servers for type {self.pxe_type:#06x}")]
        return self._enter(Phase.PXEBS, PXEBS_TIMING, now)

    def handle(self, event: Input, now: float) -> list[Output]:
        if isinstance(event, TimerExpired):
            return self._on_timer(event.token, now)
        if self.phase is not Phase.PXEBS:
            return []
        packet = self._accept(event)
        if packet is None:
            return []
        item = packet.option(PXE_BOOT_MENU_ITEM) or b""
        acceptable = (event.source_port in (BOOTPS_PORT, PXE_PORT) and packet.message_type == MessageType.ACK
                      and item[:2] == encode_pxe_type(self.pxe_type)
                      and (self.accept is None or packet.pseudo_id(event.source_ip) in self.accept))
        if not acceptable:
            self.stats.ignored += 1
            return []
        self.phase = Phase.BOUND
        return [Bound(DhcpLease(self.ack or packet, None, packet))]

    def _on_expired(self, now: float) -> list[Output]:
        if now - self.started > PXEBS_MAX_WAIT:
            self.index += 1
            if self.index >= len(self.attempt):
                return [self._fail(ERR_TIMED_OUT, "no PXE boot server answered")]
            return self._enter(Phase.PXEBS, PXEBS_TIMING, now)
        target = self.attempt[self.index]
        port = BOOTPS_PORT if target == BROADCAST else PXE_PORT
        item = encode_pxe_type(self.pxe_type) + b"\0\0"  # type, layer 0
        extra = [(Tag.VENDOR_ENCAP, bytes((PXE_BOOT_MENU_ITEM & 0xFF, 4)) + item)]
        packet = build_request(self.identity, MessageType.REQUEST, self.xid, secs=self.count << 2,
                               ciaddr=self.ciaddr, extra=extra)
        return self._send(packet, target, port, self.ciaddr)


__all__ = [
    "BOOTPS_PORT", "PXE_PORT", "Bound", "DhcpClient", "DhcpFormatError", "DhcpIdentity",
    "DhcpLease", "DhcpPacket", "DhcpStats", "Failed", "Input", "MessageType", "Output", "PxeBootServerDiscovery",
    "Received", "SetTimer", "Tag", "TimerExpired", "Transmit", "build_request", "parse_packet", "pxebs_targets",
]
