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

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from ipaddress import IPv4Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

BOOTPS_PORT = 67
BOOTPC_PORT = 68
PXE_PORT = 4011
MAGIC_COOKIE = b"\x63\x82\x53\x63"
HEADER_LEN = 236  # BOOTP fixed part, before the magic cookie
MIN_LEN = HEADER_LEN  # a plain BOOTP reply may carry no vendor area at all
MAX_LEN = 16384  # far above any MTU we receive on; anything larger is hostile
MAX_MESSAGE_SIZE = 1472  # option 57: Ethernet MTU minus IP and UDP headers
ZERO = IPv4Address(0)
BROADCAST = IPv4Address("255.255.255.255")

# net/udp/dhcp.c (ERRFILE_dhcp): its failures carry no EUNIQ disambiguator.
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x1060)  # "Connection timed out (…/4c106035)"
ERR_NO_BOOT_SERVERS = ErrorSite(ErrorClass.EINVAL, 0x1060)  # start_pxebs: no target for that type


class MessageType(IntEnum):
    BOOTP = 0  # no option 53
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Tag(IntEnum):
    """Option numbers this module interprets (the rest are just bytes)."""

    PAD = 0
    SUBNET_MASK = 1
    ROUTERS = 3
    DNS_SERVERS = 6
    HOST_NAME = 12
    DOMAIN_NAME = 15
    VENDOR_ENCAP = 43
    REQUESTED_ADDRESS = 50
    LEASE_TIME = 51
    MESSAGE_TYPE = 53
    SERVER_IDENTIFIER = 54
    PARAMETER_REQUEST_LIST = 55
    MAX_MESSAGE_SIZE = 57
    VENDOR_CLASS_ID = 60
    CLIENT_ID = 61
    TFTP_SERVER_NAME = 66
    BOOTFILE_NAME = 67
    USER_CLASS_ID = 77
    CLIENT_ARCHITECTURE = 93
    CLIENT_NDI = 94
    CLIENT_UUID = 97
    EB_ENCAP = 175
    END = 255


def encap(option: int, sub: int) -> int:
    """iPXE's tag for sub-option ``sub`` of ``option`` (``175.8`` → 0xaf08)."""
    return (option << 8) | sub


# iPXE's own encapsulated option 175 and PXE's option 43, as they are used here.
EB_PRIORITY = encap(175, 1)
EB_YIADDR = encap(175, 2)
EB_SIADDR = encap(175, 3)
EB_NO_PXEDHCP = encap(175, 0xB0)
EB_BUS_ID = 0xB1
EB_VERSION = 0xEB
PXE_DISCOVERY_CONTROL = encap(43, 6)
PXE_BOOT_SERVER_MCAST = encap(43, 7)
PXE_BOOT_SERVERS = encap(43, 8)
PXE_BOOT_MENU = encap(43, 9)
PXE_BOOT_MENU_ITEM = encap(43, 71)

# Option 55 as iPXE sends it (reference §5.1).
PARAMETER_REQUEST_LIST = bytes([1, 3, 6, 7, 12, 15, 17, 26, 42, 43, 60, 66, 67, 119, 121,
                                128, 129, 130, 131, 132, 133, 134, 135, 175, 203])


class Feature(IntEnum):
    """Option 175 sub-options announcing compiled features (value ``01``)."""

    PXE_EXT = 0x10
    ISCSI = 0x11
    AOE = 0x12
    HTTP = 0x13
    HTTPS = 0x14
    TFTP = 0x15
    FTP = 0x16
    DNS = 0x17
    BZIMAGE = 0x18
    MULTIBOOT = 0x19
    SLAM = 0x1A
    SRP = 0x1B
    NBI = 0x20
    PXE = 0x21
    ELF = 0x22
    COMBOOT = 0x23
    EFI = 0x24
    FCOE = 0x25
    VLAN = 0x26
    MENU = 0x27
    SDI = 0x28
    NFS = 0x29


# What pyipxe can do, in the order of an iPXE build's feature table (its link order: the
# Debian 2019 build sends DNS ELF HTTP iSCSI Menu MBOOT NFS PXEXT PXE TFTP bzImage SRP AoE).
# pyipxe boots Linux kernels (bzImage via kexec) and speaks HTTPS, FTP and VLANs too.
DEFAULT_FEATURES: tuple[int, ...] = (
    Feature.DNS, Feature.HTTP, Feature.HTTPS, Feature.ISCSI, Feature.MENU, Feature.NFS, Feature.TFTP, Feature.FTP,
    Feature.BZIMAGE, Feature.VLAN, Feature.AOE,
)
# A feature's value is its version; iPXE announces its PXE extensions as version 2.
_FEATURE_VALUE: dict[int, int] = {Feature.PXE_EXT: 2}

# Client architecture (option 93, RFC 4578 registry) per (platform, buildarch).
_EFI_ARCH = {"i386": 6, "x86_64": 7, "arm32": 0x0A, "arm64": 0x0B, "riscv32": 0x19, "riscv64": 0x1B,
             "loong64": 0x27}
NDI_BIOS = b"\x01\x02\x01"  # UNDI 2.1
NDI_EFI = b"\x01\x03\x0a"  # UNDI 3.10


class DhcpFormatError(ValueError):
    """Bytes that are not a DHCP/BOOTP packet we can trust; the text says why."""


# ---- packets ------------------------------------------------------------------------------


def _iter_options(data: bytes, *, strict: bool) -> Iterator[tuple[int, bytes]]:
    """(tag, value) pairs of an option area, skipping PAD, stopping at END.

    ``strict`` raises on an option running past the end (a truncated packet); inside an
    encapsulated option a malformed tail just ends the list, as iPXE's lookup does.
    """
    pos = 0
    while pos < len(data):
        tag = data[pos]
        if tag == Tag.PAD:
            pos += 1
            continue
        if tag == Tag.END:
            return
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            if strict:
                raise DhcpFormatError(f"option {tag} truncated at offset {pos}")
            return
        length = data[pos + 1]
        yield tag, data[pos + 2:pos + 2 + length]
        pos += 2 + length


def encode_options(options: Sequence[tuple[int, bytes]]) -> bytes:
    """Options as TLVs (each at most 255 bytes; longer values are an encoder bug)."""
    out = bytearray()
    for tag, value in options:
        if not 0 < tag < 255 or len(value) > 255:
            raise ValueError(f"option {tag} of {len(value)} bytes cannot be encoded")
        out += bytes((tag, len(value))) + value
    return bytes(out)


@dataclass(frozen=True)
class DhcpPacket:
    """One BOOTP/DHCP packet: the fixed header plus its options in wire order.

    ``sname`` and ``file`` are the raw fixed fields (NUL padded); :meth:`fetch` gives
    the settings view where a non-empty fixed field wins over options 66/67.
    """

    op: int = 1
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = ZERO
    yiaddr: IPv4Address = ZERO
    siaddr: IPv4Address = ZERO
    giaddr: IPv4Address = ZERO
    chaddr: bytes = b""
    sname: bytes = b""
    file: bytes = b""
    options: tuple[tuple[int, bytes], ...] = ()

    # -- codec

    def encode(self) -> bytes:
        """Wire bytes: header, cookie, options, END (not padded, like iPXE)."""
        header = struct.pack(
            "!BBBBIHH4s4s4s4s16s64s128s", self.op, self.htype, self.hlen, self.hops, self.xid,
            self.secs & 0xFFFF, self.flags, self.ciaddr.packed, self.yiaddr.packed, self.siaddr.packed,
            self.giaddr.packed, self.chaddr[:16], self.sname[:64], self.file[:128],
        )
        return header + MAGIC_COOKIE + encode_options(self.options) + bytes([Tag.END])

    # -- options

    def option(self, tag: int) -> bytes | None:
        """Raw value of option ``tag`` (first occurrence), or of an encapsulated ``X.Y`` tag."""
        outer = tag >> 8
        if outer:
            if outer > 0xFF:
                return None
            container = self.option(outer)
            if container is None:
                return None
            return _first(_iter_options(container, strict=False), tag & 0xFF)
        return _first(iter(self.options), tag)

    def fetch(self, tag: int) -> bytes | None:
        """The settings view of ``tag``: fixed fields first when in use (reference §5.4)."""
        fixed = self._fixed_field(tag)
        if fixed:
            return fixed
        return self.option(tag)

    def _fixed_field(self, tag: int) -> bytes | None:
        if tag == EB_YIADDR:
            return self.yiaddr.packed if self.yiaddr != ZERO else None
        if tag == EB_SIADDR:
            return self.siaddr.packed if self.siaddr != ZERO else None
        if tag == Tag.TFTP_SERVER_NAME:
            return self.sname.split(b"\0", 1)[0] or None
        if tag == Tag.BOOTFILE_NAME:
            return self.file.split(b"\0", 1)[0] or None
        return None

    @property
    def message_type(self) -> MessageType | int:
        value = self.option(Tag.MESSAGE_TYPE)
        if not value:
            return MessageType.BOOTP
        try:
            return MessageType(value[0])
        except ValueError:
            return value[0]

    @property
    def server_id(self) -> IPv4Address:
        return _ipv4(self.option(Tag.SERVER_IDENTIFIER)) or ZERO

    def pseudo_id(self, source: IPv4Address) -> IPv4Address:
        """iPXE's server "pseudo-ID": server id, else siaddr, else the packet's source."""
        for candidate in (self.server_id, self.siaddr, source):
            if candidate != ZERO:
                return candidate
        return ZERO

    def is_pxeclient(self) -> bool:
        """Option 60 starts with ``PXEClient``: this server speaks (Proxy)DHCP for PXE."""
        return (self.option(Tag.VENDOR_CLASS_ID) or b"").startswith(b"PXEClient")

    def has_pxe_options(self) -> bool:
        """Already carries what a ProxyDHCP would give: next-server + filename, or a PXE menu."""
        if self.siaddr != ZERO and self.fetch(Tag.BOOTFILE_NAME):
            return True
        return bool(self.option(PXE_BOOT_MENU))


def int8_value(value: bytes | None) -> int:
    """An option read into an ``int8_t`` as iPXE does (175.1, 175.176): first byte, signed."""
    if not value:
        return 0
    return value[0] - 256 if value[0] >= 128 else value[0]


def _first(pairs: Iterator[tuple[int, bytes]], tag: int) -> bytes | None:
    for found, value in pairs:
        if found == tag:
            return value
    return None


def _ipv4(value: bytes | None) -> IPv4Address | None:
    return IPv4Address(value[:4]) if value and len(value) >= 4 else None


def parse_packet(data: bytes) -> DhcpPacket:
    """Decode untrusted bytes; :class:`DhcpFormatError` says why they are not a packet."""
    if len(data) < MIN_LEN:
        raise DhcpFormatError(f"{len(data)} bytes is shorter than a BOOTP header")
    if len(data) > MAX_LEN:
        raise DhcpFormatError(f"{len(data)} bytes is oversized")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
     file) = struct.unpack("!BBBBIHH4s4s4s4s16s64s128s", data[:HEADER_LEN])
    if op not in (1, 2):
        raise DhcpFormatError(f"op {op} is neither request nor reply")
    if hlen > 16:
        raise DhcpFormatError(f"hlen {hlen} exceeds chaddr")
    options: tuple[tuple[int, bytes], ...] = ()
    if data[HEADER_LEN:HEADER_LEN + 4] == MAGIC_COOKIE:
        options = tuple(_iter_options(data[HEADER_LEN + 4:], strict=True))
    return DhcpPacket(op, htype, hlen, hops, xid, secs, flags, IPv4Address(ciaddr), IPv4Address(yiaddr),
                      IPv4Address(siaddr), IPv4Address(giaddr), chaddr, sname, file, options)


# ---- what the client says about itself -------------------------------------------------------


def client_architecture(platform: str, buildarch: str) -> int:
    """Option 93: 0 for BIOS x86; EFI's value otherwise (iPXE's Linux platform claims EFI's)."""
    if platform == "pcbios":
        return 0
    return _EFI_ARCH.get(buildarch, 7)


@dataclass(frozen=True)
class DhcpIdentity:
    """Everything the client puts in its requests, gathered by the caller from settings.

    Keeping this explicit keeps the machine pure: the netdev layer builds it (see
    :func:`pyipxe.settings.dhcp.identity_from_settings`) from ``${net0/mac}``,
    ``${net0/busid}``, ``${uuid}``, ``${user-class}``, ``${vendor-class}``,
    ``${platform}`` and ``${buildarch}``.

    ``uuid`` is in the order ``${uuid}`` stores it (network order); option 97 sends the
    first three fields little-endian, as iPXE does. ``None`` user/vendor class means
    iPXE's defaults (``iPXE`` and ``PXEClient:Arch:…``). ``broadcast`` asks servers to
    broadcast replies; iPXE sets it when the interface already has an IPv4 address.
    """

    mac: bytes
    htype: int = 1
    arch: int = 0
    ndi: bytes = NDI_BIOS
    uuid: bytes | None = None
    user_class: bytes | None = None
    vendor_class: bytes | None = None
    busid: bytes = bytes(5)
    features: tuple[int, ...] = DEFAULT_FEATURES
    version: tuple[int, int, int] = (2, 0, 0)
    broadcast: bool = False

    @classmethod
    def for_platform(cls, mac: bytes, platform: str, buildarch: str, *, uuid: bytes | None = None,
                     user_class: bytes | None = None, vendor_class: bytes | None = None,
                     busid: bytes = bytes(5), broadcast: bool = False) -> DhcpIdentity:
        """Identity with options 93/94 as iPXE's build for ``platform``/``buildarch`` sends them."""
        return cls(mac=mac, arch=client_architecture(platform, buildarch),
                   ndi=NDI_BIOS if platform == "pcbios" else NDI_EFI, uuid=uuid, user_class=user_class,
                   vendor_class=vendor_class, busid=busid, broadcast=broadcast)

    def pxeclient(self) -> bytes:
        """iPXE's option 60: ``PXEClient:Arch:00007:UNDI:003010``."""
        major, minor = (self.ndi[1], self.ndi[2]) if len(self.ndi) >= 3 else (0, 0)
        return f"PXEClient:Arch:{self.arch:05d}:UNDI:{major:03d}{minor:03d}".encode()

    def features_option(self) -> bytes:
        """Option 175 as real iPXE lays it out: bus id (177), version (235), then the feature flags.

        (Checked against a capture of the 2019 Debian build, tests/fixtures/dhcp/real-ipxe-*.bin;
        iPXE inserts the bus id sub-option at the start of the existing option.)
        """
        flags = b"".join(bytes((code, 1, _FEATURE_VALUE.get(code, 1))) for code in self.features)
        return bytes((EB_BUS_ID, len(self.busid))) + self.busid + bytes((EB_VERSION, 3, *self.version)) + flags


def uuid_mangle(uuid: bytes) -> bytes:
    """Network-order UUID → first three fields little-endian (RFC 4578 / EFI order)."""
    return uuid[3::-1] + uuid[5:3:-1] + uuid[7:5:-1] + uuid[8:]


def request_options(identity: DhcpIdentity, msgtype: MessageType) -> list[tuple[int, bytes]]:
    """The options every iPXE request carries, in iPXE's order (reference §5.1)."""
    options: list[tuple[int, bytes]] = [
        (Tag.MESSAGE_TYPE, bytes([msgtype])),
        (Tag.MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE.to_bytes(2, "big")),
        (Tag.CLIENT_ARCHITECTURE, identity.arch.to_bytes(2, "big")),
        (Tag.CLIENT_NDI, identity.ndi),
        (Tag.VENDOR_CLASS_ID, identity.vendor_class if identity.vendor_class is not None else identity.pxeclient()),
        (Tag.USER_CLASS_ID, identity.user_class if identity.user_class is not None else b"iPXE"),
        (Tag.PARAMETER_REQUEST_LIST, PARAMETER_REQUEST_LIST),
        (Tag.EB_ENCAP, identity.features_option()),
        (Tag.CLIENT_ID, bytes([identity.htype]) + identity.mac),
    ]
    if identity.uuid is not None and len(identity.uuid) == 16:
        options.append((Tag.CLIENT_UUID, b"\0" + uuid_mangle(identity.uuid)))
    return options


def build_request(identity: DhcpIdentity, msgtype: MessageType, xid: int, *, secs: int = 0,
                  ciaddr: IPv4Address = ZERO, extra: Sequence[tuple[int, bytes]] = ()) -> DhcpPacket:
    """One client packet: iPXE's common options, then ``extra`` (54, 50, 43.71) in order."""
    chaddr = identity.mac if len(identity.mac) <= 16 else b""
    return DhcpPacket(
        op=1, htype=identity.htype, hlen=len(chaddr), xid=xid, secs=secs & 0xFFFF,
        flags=0x8000 if identity.broadcast else 0, ciaddr=ciaddr, chaddr=chaddr,
        options=tuple(request_options(identity, msgtype)) + tuple(extra),
    )


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A UDP payload that arrived for port 68 (or our pxebs port) and where it came from."""

    payload: bytes
    source_ip: IPv4Address
    source_port: int


@dataclass(frozen=True, slots=True)
class TimerExpired:
    token: int


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


@dataclass(frozen=True, slots=True)
class SetTimer:
    seconds: float
    token: int


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


@dataclass(frozen=True)
class Timing:
    """One state's retry limits and iPXE's waits (``config/dhcp.h``)."""

    min_timeout: float
    max_timeout: float


DISCOVER_TIMING = Timing(1.0, 10.0)
REQUEST_TIMING = Timing(0.0, 10.0)
PROXY_TIMING = Timing(0.0, 10.0)
PXEBS_TIMING = Timing(1.0, 10.0)
DEFAULT_MIN_TIMEOUT = 0.25  # retry.c: a zero minimum means a quarter second
DISCOVER_PROXY_WAIT = 2.0  # DHCP_DISC_PROXY_TIMEOUT_SEC
REQUEST_PROXY_WAIT = 2.0  # DHCP_REQ_PROXY_TIMEOUT_SEC
PXEBS_MAX_WAIT = 3.0  # PXEBS_MAX_TIMEOUT_SEC


class _RetryTimer:
    """iPXE's retry timer: backoff doubling between per-state limits, one live token."""

    def __init__(self) -> None:
        self.timing = DISCOVER_TIMING
        self.timeout = 0.0
        self.token = 0

    def reset(self, timing: Timing) -> None:
        self.timing, self.timeout = timing, 0.0
        self.token += 1  # any running timer is stale now

    def expire(self) -> bool:
        """Back off; True when this expiry is the failure (the doubled value passed max)."""
        self.timeout *= 2
        if self.timeout > self.timing.max_timeout:
            self.timeout = self.timing.max_timeout
            return True
        return False

    def start(self) -> SetTimer:
        low = self.timing.min_timeout or DEFAULT_MIN_TIMEOUT
        self.timeout = min(max(self.timeout, low), self.timing.max_timeout)
        self.token += 1
        return SetTimer(self.timeout, self.token)


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
        self._timer = _RetryTimer()

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
    "BOOTPC_PORT", "BOOTPS_PORT", "PXE_PORT", "Bound", "DhcpClient", "DhcpFormatError", "DhcpIdentity",
    "DhcpLease", "DhcpPacket", "DhcpStats", "Failed", "Input", "MessageType", "Output", "PxeBootServerDiscovery",
    "Received", "SetTimer", "Tag", "TimerExpired", "Transmit", "build_request", "parse_packet", "pxebs_targets",
    "request_options",
]
