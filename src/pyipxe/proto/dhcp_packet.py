"""DHCP/BOOTP packets as iPXE writes and reads them: the codec and what the client says.

Why separate from the state machine (:mod:`pyipxe.proto.dhcp`): the settings layer and the
tests need the packet format (parse untrusted bytes, address options by ``X.Y`` tag, build
iPXE's exact DISCOVER/REQUEST) without the client's timing and transitions. Nothing here
keeps state; :func:`parse_packet` raises :class:`DhcpFormatError` on malformed input and
nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from pyipxe.errors import ErrorClass, ErrorSite

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
