"""DHCP packets as settings blocks: ``net0.dhcp``, ``proxydhcp`` and ``pxebs`` (reference §5.4).

Why a block over the packet instead of copying options into a generic store: iPXE keeps
the whole DHCPACK and answers every lookup from it, so any option is addressable by
number (``${net0.dhcp/66}``, ``${43.6:hex}``), sub-options of any option by ``X.Y``,
and the fixed BOOTP fields take part under iPXE's tags (``yiaddr`` = 175.2 = ``ip``,
``siaddr`` = 175.3 = ``next-server``, ``sname`` = 66, ``file`` = 67, a non-empty fixed
field winning over the option). A copy would lose that.

Rules: a DHCP block applies only to numbered DHCPv4 options (tags 1..254, encapsulated up
to 254.254), as iPXE's ``dhcpset_applies``; storing is allowed (iPXE lets a script edit
``net0.dhcp``) and edits a private copy of the packet, never the received bytes.
Untyped options format as strings (``${224}``), because the stored setting has no type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto.dhcp import DhcpLease
from pyipxe.proto.dhcp_packet import (
    EB_PRIORITY,
    EB_SIADDR,
    EB_YIADDR,
    PXE_BOOT_SERVER_MCAST,
    PXE_BOOT_SERVERS,
    PXE_DISCOVERY_CONTROL,
    DhcpIdentity,
    DhcpPacket,
    Tag,
    encode_options,
    int8_value,
)
from pyipxe.settings import predefined as p
from pyipxe.settings.store import Setting, SettingsBlock, SettingsTree, find_predefined

DHCP_SETTINGS_NAME = "dhcp"
PROXYDHCP_SETTINGS_NAME = "proxydhcp"
PXEBS_SETTINGS_NAME = "pxebs"
_MIN_OPTION, _MAX_OPTION = 1, 254

# net/dhcppkt.c (ERRFILE_dhcppkt): a value too long for its fixed field or option.
ERR_NO_SPACE = ErrorSite(ErrorClass.ENOSPC, 0x1560)


def dhcp_tag_applies(tag: int) -> bool:
    """iPXE's ``dhcpopt_applies``: 1..254, or an encapsulated 1..254 inside 1..254."""
    outer, inner = tag >> 8, tag & 0xFF
    if tag >> 16:
        return False
    if outer and not _MIN_OPTION <= outer <= _MAX_OPTION:
        return False
    return _MIN_OPTION <= inner <= _MAX_OPTION


def tag_name(tag: int) -> str:
    """``0xaf08`` → ``175.8``: the name ``show`` prints for an option without a predefined name."""
    return f"{tag >> 8}.{tag & 0xFF}" if tag >> 8 else str(tag)


# Fixed fields that settings can write, with their sizes (iPXE's dhcp_packet_fields).
_FIELD_SIZES = {EB_YIADDR: 4, EB_SIADDR: 4, int(Tag.TFTP_SERVER_NAME): 64, int(Tag.BOOTFILE_NAME): 128}


class DhcpSettingsBlock(SettingsBlock):
    """A settings block answering from one DHCP packet (ACK, ProxyDHCP or boot-server reply)."""

    def __init__(self, name: str, packet: DhcpPacket) -> None:
        # 175.1 orders this block among its siblings (reference §2.1).
        super().__init__(name, priority=int8_value(packet.option(EB_PRIORITY)))
        self.packet = packet

    def applies(self, setting: Setting) -> bool:
        return setting.scope is None and bool(setting.tag) and dhcp_tag_applies(setting.tag)

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        data = self.packet.fetch(setting.tag)
        if not data:
            return None
        known = find_predefined(Setting(name="", tag=setting.tag))
        return (known if known is not None else Setting(tag_name(setting.tag), None, setting.tag)), data

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        self.packet = _stored(self.packet, setting.tag, data or b"")

    def local_settings(self) -> Iterator[Setting]:
        """Every option present (and the sub-options of 175), with predefined names where known."""
        tags: list[int] = []
        for tag in (EB_YIADDR, EB_SIADDR, Tag.TFTP_SERVER_NAME, Tag.BOOTFILE_NAME):
            if self.packet.fetch(tag):
                tags.append(int(tag))
        for tag, value in self.packet.options:
            if tag in tags:
                continue
            tags.append(tag)
            if tag == Tag.EB_ENCAP:
                tags.extend((tag << 8) | sub for sub, _ in _sub_options(value) if (tag << 8) | sub not in tags)
        for tag in tags:
            known = find_predefined(Setting(name="", tag=tag))
            yield known if known is not None else Setting(tag_name(tag), None, tag)


def _sub_options(value: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 2 <= len(value) and value[pos] != 0xFF:
        if value[pos] == 0:
            pos += 1
            continue
        end = pos + 2 + value[pos + 1]
        if end > len(value):
            return
        yield value[pos], value[pos + 2:end]
        pos = end


def _stored(packet: DhcpPacket, tag: int, data: bytes) -> DhcpPacket:
    """The packet with ``tag`` set to ``data`` (empty deletes), as iPXE's ``dhcppkt_store``."""
    if tag in _FIELD_SIZES:
        if len(data) > _FIELD_SIZES[tag]:
            raise IpxeError(ERR_NO_SPACE)
        options = tuple((t, v) for t, v in packet.options if t != tag)
        if tag == EB_YIADDR:
            return replace(packet, yiaddr=IPv4Address(data.ljust(4, b"\0")), options=options)
        if tag == EB_SIADDR:
            return replace(packet, siaddr=IPv4Address(data.ljust(4, b"\0")), options=options)
        if tag == Tag.TFTP_SERVER_NAME:
            return replace(packet, sname=data, options=options)
        return replace(packet, file=data, options=options)
    if len(data) > 255:
        raise IpxeError(ERR_NO_SPACE)
    outer, inner = tag >> 8, tag & 0xFF
    if not outer:
        return replace(packet, options=_set_option(packet.options, tag, data))
    container = dict(packet.options).get(outer, b"")
    subs = _set_option(tuple(_sub_options(container)), inner, data)
    encoded = encode_options(subs)
    if len(encoded) > 255:
        raise IpxeError(ERR_NO_SPACE)
    return replace(packet, options=_set_option(packet.options, outer, encoded))


def _set_option(options: tuple[tuple[int, bytes], ...], tag: int, data: bytes) -> tuple[tuple[int, bytes], ...]:
    """Replace in place (keeping the order), append when new, drop when ``data`` is empty."""
    out: list[tuple[int, bytes]] = []
    done = False
    for existing, value in options:
        if existing == tag:
            if data and not done:
                out.append((tag, data))
            done = True
        else:
            out.append((existing, value))
    if data and not done:
        out.append((tag, data))
    return tuple(out)


def register_lease(settings: SettingsTree, device_block: SettingsBlock, lease: DhcpLease) -> None:
    """Register a finished session's packets as iPXE does (reference §5.2/5.3).

    ``<device>.dhcp`` (a child named ``dhcp`` of ``device_block``) gets the ACK, replacing
    an older one; stale root-level ``proxydhcp`` and ``pxebs`` blocks are dropped and,
    when the lease carries them, registered anew (searched after every interface, so a
    real DHCP ``filename`` wins). Applicators run once at the end so routes, DNS and the
    TFTP cwuri see the new values.
    """
    _replace(device_block, DHCP_SETTINGS_NAME, lease.ack)
    root = settings.root
    _replace(root, PROXYDHCP_SETTINGS_NAME, lease.proxy)
    _replace(root, PXEBS_SETTINGS_NAME, lease.pxebs)
    for apply in settings.applicators:
        apply(device_block)


def register_pxebs(settings: SettingsTree, reply: DhcpPacket) -> None:
    """Register a boot-server ACK (``pxebs`` command) as the root ``pxebs`` block."""
    _replace(settings.root, PXEBS_SETTINGS_NAME, reply)
    for apply in settings.applicators:
        apply(settings.root)


def unregister_lease(device_block: SettingsBlock) -> None:
    """Forget ``<device>.dhcp`` (``ifclose`` in own mode)."""
    _replace(device_block, DHCP_SETTINGS_NAME, None)


def _replace(parent: SettingsBlock, name: str, packet: DhcpPacket | None) -> None:
    old = parent.child(name)
    if old is not None:
        parent.unregister(old)
    if packet is not None:
        parent.register(DhcpSettingsBlock(name, packet))


def identity_from_settings(settings: SettingsTree, device_block: SettingsBlock, mac: bytes, *,
                           platform: str, buildarch: str, broadcast: bool = False) -> DhcpIdentity:
    """What iPXE's ``dhcp_create_request`` fetches: ``user-class``, ``vendor-class`` and ``uuid``
    from the whole tree, ``busid`` from the device (5 bytes, zeros if unknown)."""

    def raw(setting: Setting, block: SettingsBlock | None = None) -> bytes | None:
        found = settings.fetch(setting, block)
        return found.data if found is not None else None

    busid = (raw(p.BUSID, device_block) or b"")[:5].ljust(5, b"\0")
    uuid = raw(p.UUID)
    return DhcpIdentity.for_platform(
        mac, platform, buildarch, uuid=uuid if uuid is not None and len(uuid) == 16 else None,
        user_class=raw(p.USER_CLASS), vendor_class=raw(p.VENDOR_CLASS), busid=busid, broadcast=broadcast,
    )


def pxebs_parameters(settings: SettingsTree) -> tuple[int, IPv4Address | None, bytes | None]:
    """43.6 discovery control, 43.7 multicast address, 43.8 server list, from the whole tree."""

    def raw(tag: int) -> bytes | None:
        found = settings.fetch(Setting(tag_name(tag), None, tag))
        return found.data if found is not None else None

    control = int.from_bytes(raw(PXE_DISCOVERY_CONTROL) or b"", "big")
    mcast = raw(PXE_BOOT_SERVER_MCAST)
    return control, IPv4Address(mcast[:4]) if mcast and len(mcast) >= 4 else None, raw(PXE_BOOT_SERVERS)
