"""A sans-IO DHCPv6 client that asks what iPXE asks (net/udp/dhcpv6.c, the 2019 build).

Why hand-written: servers choose answers by what the client sends (dnsmasq's
``dhcp-userclass``/``dhcp-vendorclass``, Kea's client classes on option 15 or 16), so
pyipxe must send iPXE's options in iPXE's order — checked against a capture of the real
build talking to dnsmasq: client ID, [server ID], [IA_NA], ORO (23 24 59 60), vendor class
(enterprise 343, ``PXEClient:Arch:…``), client architecture (61), NDI (62), user class
``iPXE``, elapsed time. No Python DHCPv6 library sends that or runs iPXE's machine
without owning the socket.

Rules of this module (everything that affects transitions lives here):
- No sockets, no clocks. :meth:`Dhcpv6Client.start` / :meth:`Dhcpv6Client.handle` take the
  current monotonic time and return :class:`Transmit` (always to ff02::1:2 port 547),
  :class:`~pyipxe.proto.dhcp.SetTimer`, :class:`Bound` or :class:`~pyipxe.proto.dhcp.Failed`.
- Nothing from the network raises. :func:`parse_message` raises :class:`Dhcpv6FormatError`
  on bytes that are not a well-formed message (stricter than iPXE, which keeps the options
  before a malformed one); the machine drops those and counts them, as it does replies
  with another transaction id or client DUID (foreign), or of the wrong type (ignored).
- iPXE's retry timer at its defaults (0.25 s doubling, fails past 10 s: sends at 0, 0.25,
  0.75, 1.75, 3.75, 7.75 s, gives up at 15.75 s). Entering a state fires at once.
- A reply that is ours but carries an error status (top level, IA_NA or IAADDR) or an
  unusable IA is not taken; its error is remembered and becomes the failure when the timer
  runs out (iPXE's "plausibly the error we want to return"), so a server without addresses
  ends the session with "No addresses available".

States (iPXE's three-entry table)::

    state                 sends                    accepts    records              then
    SOLICIT               IA_NA                    ADVERTISE  server ID, IA address REQUEST
    REQUEST               IA_NA + IAADDR, server   REPLY      IA address           Bound
    INFORMATION-REQUEST   (no IA)                  REPLY      —                    Bound

Stateful (SOLICIT) when the router advertisement has the M flag, stateless otherwise.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError, register_special
from pyipxe.proto.dhcp import DhcpStats, Failed
from pyipxe.proto.retry import RetryTimer, SetTimer, TimerExpired, Timing

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = IPv6Address("ff02::1:2")
HEADER_LEN = 4
MAX_LEN = 65535
ENTERPRISE_PXE = 343  # Intel: the PXE vendor class enterprise number
DUID_LL = 3
DUID_UUID = 4
HTYPE_ETHERNET = 1


class MessageType(IntEnum):
    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    REPLY = 7
    INFORMATION_REQUEST = 11


class Option(IntEnum):
    CLIENT_ID = 1
    SERVER_ID = 2
    IA_NA = 3
    IAADDR = 5
    ORO = 6
    ELAPSED_TIME = 8
    STATUS_CODE = 13
    USER_CLASS = 15
    VENDOR_CLASS = 16
    DNS_SERVERS = 23
    DOMAIN_LIST = 24
    BOOTFILE_URL = 59
    BOOTFILE_PARAM = 60
    CLIENT_ARCHITECTURE = 61
    CLIENT_NDI = 62


REQUESTED_OPTIONS = (Option.DNS_SERVERS, Option.DOMAIN_LIST, Option.BOOTFILE_URL, Option.BOOTFILE_PARAM)

# net/udp/dhcpv6.c is ERRFILE_dhcpv6 (net file 0x3b); status codes become EPROTO with the
# status as disambiguator, and only "No addresses available" has a text of its own.
_WHERE = 0x3B60
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, _WHERE)
ERR_NOT_FOUND = ErrorSite(ErrorClass.ENOENT, _WHERE)
ERR_INVALID = ErrorSite(ErrorClass.EINVAL, _WHERE)
ERR_NO_ADDRESSES = register_special(ErrorSite(ErrorClass.EPROTO, _WHERE | 2, "No addresses available"))


def status_error(status: int) -> ErrorSite:
    """iPXE's EPROTO_STATUS: EPROTO with ``status & 0x0f`` as the per-site disambiguator."""
    if status & 0x0F == 2:
        return ERR_NO_ADDRESSES
    return ErrorSite(ErrorClass.EPROTO, _WHERE | (status & 0x0F))


class Dhcpv6FormatError(ValueError):
    """Bytes that are not a DHCPv6 message we can trust; the text says why."""


# ---- codec --------------------------------------------------------------------------------


def iter_options(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(code, value) pairs; :class:`Dhcpv6FormatError` when an option runs past the end."""
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise Dhcpv6FormatError(f"option header truncated at offset {pos}")
        code, length = struct.unpack_from("!HH", data, pos)
        if pos + 4 + length > len(data):
            raise Dhcpv6FormatError(f"option {code} truncated at offset {pos}")
        yield code, data[pos + 4:pos + 4 + length]
        pos += 4 + length


def encode_options(options: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("!HH", code, len(value)) + value for code, value in options)


def find(options: Sequence[tuple[int, bytes]], code: int) -> bytes | None:
    """The first option ``code`` (iPXE looks options up by first match)."""
    for found, value in options:
        if found == code:
            return value
    return None


@dataclass(frozen=True)
class Dhcpv6Message:
    type: int
    xid: bytes
    options: tuple[tuple[int, bytes], ...]

    def encode(self) -> bytes:
        return bytes((self.type,)) + self.xid + encode_options(self.options)

    def option(self, code: int) -> bytes | None:
        return find(self.options, code)


def parse_message(data: bytes) -> Dhcpv6Message:
    if len(data) < HEADER_LEN:
        raise Dhcpv6FormatError(f"{len(data)} bytes is shorter than a DHCPv6 header")
    if len(data) > MAX_LEN:
        raise Dhcpv6FormatError(f"{len(data)} bytes is oversized")
    return Dhcpv6Message(data[0], data[1:4], tuple(iter_options(data[HEADER_LEN:])))


def check_status(options: Sequence[tuple[int, bytes]]) -> ErrorSite | None:
    """A status code option's error, if any (absent means success; shorter than 2 bytes, EINVAL)."""
    value = find(options, Option.STATUS_CODE)
    if value is None:
        return None
    if len(value) < 2:
        return ERR_INVALID
    status = int.from_bytes(value[:2], "big")
    return status_error(status) if status else None


def ia_address(options: Sequence[tuple[int, bytes]], iaid: int) -> IPv6Address | ErrorSite:
    """The leased address in our IA_NA, or the error iPXE's dhcpv6_iaaddr returns."""
    ia_na = find(options, Option.IA_NA)
    if ia_na is None:
        return ERR_NOT_FOUND
    if len(ia_na) < 12 or int.from_bytes(ia_na[:4], "big") != iaid:
        return ERR_INVALID
    try:
        sub = tuple(iter_options(ia_na[12:]))
    except Dhcpv6FormatError:
        return ERR_INVALID
    error = check_status(sub)
    if error is not None:
        return error
    iaaddr = find(sub, Option.IAADDR)
    if iaaddr is None:
        return ERR_NOT_FOUND
    if len(iaaddr) < 24:
        return ERR_INVALID
    try:
        error = check_status(tuple(iter_options(iaaddr[24:])))
    except Dhcpv6FormatError:
        return ERR_INVALID
    return error if error is not None else IPv6Address(iaaddr[:16])


# ---- what the client says about itself -----------------------------------------------------


def iaid_of(mac: bytes) -> int:
    """iPXE's IAID: ``crc32_le(0, mac)`` — the reflected CRC-32 without pre- or post-inversion."""
    return ~zlib.crc32(mac, 0xFFFFFFFF) & 0xFFFFFFFF


def duid_uuid(uuid: bytes) -> bytes:
    """DUID-UUID (RFC 6355) from ``${uuid}``'s bytes, as iPXE 2019 builds its client ID."""
    return DUID_UUID.to_bytes(2, "big") + uuid


def duid_ll(mac: bytes, htype: int = HTYPE_ETHERNET) -> bytes:
    """DUID-LL, which later iPXE builds use; pyipxe's fallback when there is no UUID."""
    return DUID_LL.to_bytes(2, "big") + htype.to_bytes(2, "big") + mac


@dataclass(frozen=True)
class Dhcpv6Identity:
    """What the client sends, gathered by the caller (see ``settings.dhcpv6.dhcpv6_identity``).

    ``vendor_class`` is the PXEClient string (iPXE compiles it in; the ``vendor-class``
    setting does not replace it for DHCPv6); ``user_class`` None means ``iPXE``.
    """

    duid: bytes
    iaid: int
    arch: int = 0
    ndi: bytes = b"\x01\x02\x01"
    vendor_class: bytes = b"PXEClient:Arch:00000:UNDI:002001"
    user_class: bytes | None = None

    def fixed_options(self) -> list[tuple[int, bytes]]:
        """ORO, vendor class, architecture and NDI: the constant block iPXE copies into every request."""
        return [
            (Option.ORO, b"".join(code.to_bytes(2, "big") for code in REQUESTED_OPTIONS)),
            (Option.VENDOR_CLASS, ENTERPRISE_PXE.to_bytes(4, "big") + _string(self.vendor_class)),
            (Option.CLIENT_ARCHITECTURE, self.arch.to_bytes(2, "big")),
            (Option.CLIENT_NDI, self.ndi),
        ]


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def build_message(identity: Dhcpv6Identity, msgtype: MessageType, xid: bytes, *, elapsed: float,
                  server_duid: bytes | None = None, ia_na: bool = False,
                  lease: IPv6Address | None = None) -> Dhcpv6Message:
    """One client message in iPXE's option order; ``elapsed`` seconds go out in centiseconds."""
    options: list[tuple[int, bytes]] = [(Option.CLIENT_ID, identity.duid)]
    if server_duid is not None:
        options.append((Option.SERVER_ID, server_duid))
    if ia_na:
        ia = struct.pack("!III", identity.iaid, 0, 0)
        if lease is not None:
            ia += encode_options([(Option.IAADDR, lease.packed + struct.pack("!II", 0, 0))])
        options.append((Option.IA_NA, ia))
    options += identity.fixed_options()
    options.append((Option.USER_CLASS, _string(identity.user_class if identity.user_class is not None else b"iPXE")))
    options.append((Option.ELAPSED_TIME, (int(elapsed * 100 + 1e-6) & 0xFFFF).to_bytes(2, "big")))
    return Dhcpv6Message(msgtype, xid, tuple(options))


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    payload: bytes
    source: IPv6Address


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``payload`` from port 546 to ff02::1:2 port 547."""

    payload: bytes


@dataclass(frozen=True)
class Dhcpv6Lease:
    """The final REPLY's options and the leased address (None for stateless configuration)."""

    options: tuple[tuple[int, bytes], ...]
    address: IPv6Address | None = None

    def option(self, code: int) -> bytes | None:
        return find(self.options, code)

    @property
    def dns_servers(self) -> list[IPv6Address]:
        value = self.option(Option.DNS_SERVERS) or b""
        return [IPv6Address(value[i:i + 16]) for i in range(0, len(value) - 15, 16)]

    @property
    def bootfile_url(self) -> str | None:
        value = self.option(Option.BOOTFILE_URL)
        return value.decode("utf-8", "replace") if value else None


@dataclass(frozen=True, slots=True)
class Bound:
    lease: Dhcpv6Lease


Input = Received | TimerExpired
Output = Transmit | SetTimer | Bound | Failed


@dataclass(frozen=True)
class _State:
    name: str
    tx: MessageType
    rx: MessageType
    ia_na: bool = False
    iaaddr: bool = False
    record_server: bool = False
    record_address: bool = False
    next: str | None = None


# iPXE's state table, as data.
STATES: dict[str, _State] = {
    "SOLICIT": _State("SOLICIT", MessageType.SOLICIT, MessageType.ADVERTISE, ia_na=True, record_server=True,
                      record_address=True, next="REQUEST"),
    "REQUEST": _State("REQUEST", MessageType.REQUEST, MessageType.REPLY, ia_na=True, iaaddr=True,
                      record_address=True),
    "INFORMATION-REQUEST": _State("INFORMATION-REQUEST", MessageType.INFORMATION_REQUEST, MessageType.REPLY),
}
TIMING = Timing(0.0, 10.0)


class Dhcpv6Client:
    """One DHCPv6 session on one interface; see the module docstring for the rules."""

    def __init__(self, identity: Dhcpv6Identity, xid: bytes, *, stateful: bool) -> None:
        if len(xid) != 3:
            raise ValueError("a DHCPv6 transaction id is 3 bytes")
        self.identity = identity
        self.xid = xid
        self.stateful = stateful
        self.stats = DhcpStats()
        self.state: _State | None = None
        self.started = 0.0
        self.server_duid: bytes | None = None
        self.lease: IPv6Address | None = None
        self.error = ERR_TIMED_OUT
        self.finished = False
        self._timer = RetryTimer()

    def start(self, now: float) -> list[Output]:
        if self.state is not None:
            raise RuntimeError("DHCPv6 session already started")
        self.started = now
        return self._enter("SOLICIT" if self.stateful else "INFORMATION-REQUEST", now)

    def handle(self, event: Input, now: float) -> list[Output]:
        if self.finished or self.state is None:
            return []
        if isinstance(event, TimerExpired):
            return self._expired(now) if event.token == self._timer.token else []
        return self._received(event, now)

    def _enter(self, name: str, now: float) -> list[Output]:
        self.state = STATES[name]
        self.error = ERR_TIMED_OUT
        self._timer.reset(TIMING)
        return self._expired(now)

    def _expired(self, now: float) -> list[Output]:
        assert self.state is not None
        if self._timer.expire():
            self.finished = True
            return [Failed(IpxeError(self.error), f"{self.state.name}: no usable reply")]
        state = self.state
        message = build_message(self.identity, state.tx, self.xid, elapsed=now - self.started,
                                server_duid=self.server_duid, ia_na=state.ia_na,
                                lease=self.lease if state.iaaddr else None)
        self.stats.sent += 1
        return [Transmit(message.encode()), self._timer.start()]

    def _received(self, event: Received, now: float) -> list[Output]:
        assert self.state is not None
        state = self.state
        self.stats.received += 1
        try:
            message = parse_message(event.payload)
        except Dhcpv6FormatError:
            self.stats.malformed += 1
            return []
        if message.xid != self.xid or message.option(Option.CLIENT_ID) != self.identity.duid:
            self.stats.foreign += 1
            return []
        if self.server_duid is not None and message.option(Option.SERVER_ID) != self.server_duid:
            self.stats.foreign += 1
            return []
        if message.type != state.rx:
            self.stats.ignored += 1
            return []
        error = check_status(message.options)
        if error is None and state.record_address:
            found = ia_address(message.options, self.identity.iaid)
            if isinstance(found, ErrorSite):
                error = found
            else:
                self.lease = found
        if error is not None:
            self.error = error
            self.stats.ignored += 1
            return []
        if state.record_server:
            server = message.option(Option.SERVER_ID)
            if server is None:
                self.stats.ignored += 1
                return []
            self.server_duid = server
        if state.next is not None:
            return self._enter(state.next, now)
        self.finished = True
        self._timer.token += 1
        return [Bound(Dhcpv6Lease(message.options, self.lease if self.stateful else None))]


__all__ = [
    "ALL_DHCP_RELAY_AGENTS_AND_SERVERS", "CLIENT_PORT", "SERVER_PORT", "Bound", "Dhcpv6Client",
    "Dhcpv6FormatError", "Dhcpv6Identity", "Dhcpv6Lease", "Dhcpv6Message", "Input", "MessageType", "Option",
    "Output", "Received", "Transmit", "build_message", "duid_ll", "duid_uuid", "iaid_of", "parse_message",
]
