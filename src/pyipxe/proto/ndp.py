"""IPv6 router discovery as iPXE's ``ipv6`` configurator does it (net/ndp.c), sans IO.

Why hand-written: what pyipxe needs from NDP is small and exact — one router
solicitation, iPXE's retry schedule, and the first router advertisement kept whole so
that its options stay addressable as settings (``${net0.ndp/dns6}``, per-prefix
``ip6``/``len6``/``gateway6``). The kernel's NDP does not hand RA options to userspace
and the Python packet libraries (scapy) cost a second of import time.

Rules of this module:
- No sockets, no clocks. :class:`RouterDiscovery` takes :class:`RaReceived` and
  :class:`~pyipxe.proto.dhcp.TimerExpired` events with the current time and answers with
  :class:`RsTransmit`, :class:`~pyipxe.proto.dhcp.SetTimer`, :class:`RouterFound` or
  :class:`~pyipxe.proto.dhcp.Failed`.
- Nothing from the network raises. :func:`parse_router_advertisement` raises
  :class:`NdpFormatError` for anything iPXE's option walk would reject (an option of zero
  length or running past the end, a prefix or link-layer option too short); the machine
  drops such packets and counts them. RFC 4861's hop-limit-255 check is the machine's
  (the driver passes the hop limit along); like iPXE, a router whose link-local address
  is not ready yet may advertise from a global one, so the source is not checked.
- Timing is iPXE 2019's: the retry timer at its defaults (0.25 s doubling to 10 s), so
  solicitations go out at 0, 0.25, 0.75, 1.75, 3.75 and 7.75 s and discovery fails with
  ETIMEDOUT at 15.75 s (measured against the real build: fifteen progress dots).
- Only the first acceptable advertisement counts, as in iPXE (later ones are ignored).

EUI-64 (:func:`eui64_address`) is iPXE's SLAAC rule: the interface identifier from the
MAC with the universal/local bit flipped, valid only on /64 prefixes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto.dhcp import DhcpStats, Failed
from pyipxe.proto.retry import RetryTimer, SetTimer, TimerExpired, Timing

ICMPV6_ROUTER_SOLICITATION = 133
ICMPV6_ROUTER_ADVERTISEMENT = 134
ALL_ROUTERS = IPv6Address("ff02::2")
NDP_HOP_LIMIT = 255

OPT_LL_SOURCE = 1
OPT_PREFIX = 3
OPT_MTU = 5
OPT_RDNSS = 25
OPT_DNSSL = 31
BLOCK = 8  # NDP options are measured in 8-byte blocks

ROUTER_MANAGED = 0x80
ROUTER_OTHER = 0x40
PREFIX_ON_LINK = 0x80
PREFIX_AUTONOMOUS = 0x40

RA_HEADER_LEN = 16  # ICMPv6 header (4) + hop limit, flags, lifetime (4) + reachable, retransmit (8)
PREFIX_OPTION_LEN = 32
MAX_RA_LEN = 65535

# retry.c defaults: ipv6conf (2019) sets no limits of its own.
DISCOVERY_TIMING = Timing(0.0, 10.0)

# net/ndp.c (ERRFILE_ndp): no router answered.
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x0760)


class NdpFormatError(ValueError):
    """Bytes that are not a router advertisement we can trust; the text says why."""


@dataclass(frozen=True)
class PrefixInformation:
    """One prefix information option (RFC 4861 §4.6.2)."""

    prefix: IPv6Address
    length: int
    flags: int
    valid: int
    preferred: int

    @property
    def on_link(self) -> bool:
        return bool(self.flags & PREFIX_ON_LINK)

    @property
    def autonomous(self) -> bool:
        return bool(self.flags & PREFIX_AUTONOMOUS)


@dataclass(frozen=True)
class RouterAdvertisement:
    """A parsed RA: the header fields, and every option raw (type, whole option bytes) in order."""

    router: IPv6Address
    hop_limit: int
    flags: int
    lifetime: int
    reachable: int
    retransmit: int
    options: tuple[tuple[int, bytes], ...]

    @property
    def managed(self) -> bool:
        return bool(self.flags & ROUTER_MANAGED)

    @property
    def other(self) -> bool:
        return bool(self.flags & ROUTER_OTHER)

    @property
    def prefixes(self) -> list[PrefixInformation]:
        return [_prefix(raw) for kind, raw in self.options if kind == OPT_PREFIX]

    @property
    def dns_servers(self) -> list[IPv6Address]:
        """RDNSS addresses (RFC 8106), every option in order."""
        found: list[IPv6Address] = []
        for kind, raw in self.options:
            if kind == OPT_RDNSS:
                found.extend(IPv6Address(raw[i:i + 16]) for i in range(8, len(raw) - 15, 16))
        return found

    def option_data(self, kind: int, offset: int = 0, length: int = 0, instance: int = 0) -> bytes | None:
        """iPXE's NDP setting tag lookup: bytes ``offset``… of the ``instance``-th option of a type.

        ``length`` 0 means "to the end of the option"; a window past the end finds nothing.
        """
        for found, raw in self.options:
            if found != kind:
                continue
            if instance:
                instance -= 1
                continue
            if offset + length > len(raw):
                return None
            return raw[offset:offset + length] if length else raw[offset:]
        return None


def _prefix(raw: bytes) -> PrefixInformation:
    length, flags, valid, preferred = struct.unpack_from("!BBII", raw, 2)
    return PrefixInformation(IPv6Address(raw[16:32]), length, flags, valid, preferred)


def parse_router_advertisement(data: bytes, source: IPv6Address) -> RouterAdvertisement:
    """Decode an ICMPv6 message (from its type byte on) that claims to be an RA from ``source``."""
    if len(data) < RA_HEADER_LEN:
        raise NdpFormatError(f"{len(data)} bytes is shorter than a router advertisement")
    if len(data) > MAX_RA_LEN:
        raise NdpFormatError(f"{len(data)} bytes is oversized")
    kind, code, _checksum, hop_limit, flags, lifetime, reachable, retransmit = struct.unpack_from(
        "!BBHBBHII", data)
    if kind != ICMPV6_ROUTER_ADVERTISEMENT or code != 0:
        raise NdpFormatError(f"ICMPv6 type {kind} code {code} is not a router advertisement")
    options: list[tuple[int, bytes]] = []
    pos = RA_HEADER_LEN
    while pos < len(data):
        if pos + 2 > len(data) or data[pos + 1] == 0 or pos + data[pos + 1] * BLOCK > len(data):
            raise NdpFormatError(f"bad option length at offset {pos}")
        raw = data[pos:pos + data[pos + 1] * BLOCK]
        if raw[0] == OPT_PREFIX and len(raw) < PREFIX_OPTION_LEN:
            raise NdpFormatError("prefix information option too short")
        options.append((raw[0], raw))
        pos += len(raw)
    return RouterAdvertisement(source, hop_limit, flags, lifetime, reachable, retransmit, tuple(options))


def build_router_solicitation(mac: bytes | None) -> bytes:
    """An RS as iPXE sends it: type 133, the checksum left to the kernel, a source link-layer option.

    ``mac`` None omits the option (required when the source address is ``::``).
    """
    message = struct.pack("!BBHI", ICMPV6_ROUTER_SOLICITATION, 0, 0, 0)
    if mac:
        blocks = (2 + len(mac) + BLOCK - 1) // BLOCK
        message += bytes((OPT_LL_SOURCE, blocks)) + mac.ljust(blocks * BLOCK - 2, b"\0")
    return message


def interface_identifier(mac: bytes) -> bytes:
    """RFC 2464's modified EUI-64 of a 6-byte MAC (the U/L bit flipped)."""
    if len(mac) != 6:
        raise ValueError("EUI-64 needs a 48-bit MAC")
    return bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]


def eui64_address(prefix: IPv6Address, mac: bytes) -> IPv6Address:
    """The SLAAC address of ``mac`` in a /64 ``prefix`` (iPXE's ipv6_eui64)."""
    return IPv6Address(prefix.packed[:8] + interface_identifier(mac))


def link_local_address(mac: bytes) -> IPv6Address:
    """iPXE's link-local address: fe80::/64 + EUI-64 (``${net0.link/ip6}``)."""
    return eui64_address(IPv6Address("fe80::"), mac)


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RaReceived:
    """An ICMPv6 message of type 134 as the kernel delivered it, with what the IPv6 header said."""

    payload: bytes
    source: IPv6Address
    hop_limit: int


@dataclass(frozen=True, slots=True)
class RsTransmit:
    """Send ``payload`` to ff02::2 with hop limit 255."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class RouterFound:
    advertisement: RouterAdvertisement


NdpInput = RaReceived | TimerExpired
NdpOutput = RsTransmit | SetTimer | RouterFound | Failed


class RouterDiscovery:
    """One ``ipv6`` configurator run up to the first router advertisement."""

    def __init__(self, mac: bytes | None) -> None:
        self.mac = mac
        self.stats = DhcpStats()
        self.done = False
        self._timer = RetryTimer()

    def start(self, now: float) -> list[NdpOutput]:
        self._timer.reset(DISCOVERY_TIMING)
        return self._expired()

    def handle(self, event: NdpInput, now: float) -> list[NdpOutput]:
        if self.done:
            return []
        if isinstance(event, TimerExpired):
            return self._expired() if event.token == self._timer.token else []
        self.stats.received += 1
        if event.hop_limit != NDP_HOP_LIMIT:
            self.stats.foreign += 1  # RFC 4861 §6.1.2: routed here, so not from a router on this link
            return []
        try:
            advertisement = parse_router_advertisement(event.payload, event.source)
        except NdpFormatError:
            self.stats.malformed += 1
            return []
        self.done = True
        self._timer.token += 1
        return [RouterFound(advertisement)]

    def _expired(self) -> list[NdpOutput]:
        if self._timer.expire():
            self.done = True
            return [Failed(IpxeError(ERR_TIMED_OUT), "no router advertisement")]
        self.stats.sent += 1
        return [RsTransmit(build_router_solicitation(self.mac)), self._timer.start()]
