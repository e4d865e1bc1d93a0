"""IPv6 settings blocks as iPXE registers them under each interface, and the routes they imply.

Why blocks over the packets (as for DHCPv4): iPXE keeps the router advertisement and the
DHCPv6 reply whole and answers lookups from them, so ``${net0.ndp/dns6}``,
``${net0.dhcpv6/59}`` and ``${filename}`` from DHCPv6 option 59 all work, and its IPv6
routing table is *computed from settings* (net/ipv6.c ``ipv6_create_routes``) — which is
what ``route`` prints and what own mode applies.

The blocks (names, order and contents as the real 2019 build shows them):

* ``netN.link`` — always present: ``ip6`` = fe80::EUI-64 of the MAC, ``len6`` = 64.
* ``netN.ndp`` — the first solicited RA: ``dns6`` (RDNSS), ``dnssl`` (DNSSL) and any RA
  option by iPXE's NDP tag (type | offset << 8 | length << 16 | instance << 24; hex).
* ``netN.ndp.0``, ``.1``… — one per prefix option: ``ip6`` (the SLAAC address when the
  prefix is autonomous and /64, else the bare prefix), ``len6`` (the prefix length, or
  -1 for an off-link prefix), ``gateway6`` (the RA's source when its lifetime is non-zero).
* ``netN.dhcpv6`` — the final DHCPv6 REPLY: ``ip6`` (the leased address), ``dns6`` (23),
  ``dnssl`` (24), ``filename`` (59, the boot file URL), and any option by number.
  There is no ``len6`` there, as in iPXE: a leased address takes the length of the
  prefix route it falls in (from the RA), else 64.

Siblings are ordered as iPXE orders them (settings "order", descending): the DHCPv4
block, ``dhcpv6``, ``ndp``, ``link`` — so ``${ip6}`` is the DHCPv6 lease, else the SLAAC
address, else the link-local one. The blocks are read-only (iPXE gives them no store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto.dhcpv6 import Dhcpv6Identity, Dhcpv6Lease, Option, duid_ll, duid_uuid, iaid_of
from pyipxe.proto.ndp import OPT_DNSSL, OPT_RDNSS, PrefixInformation, RouterAdvertisement, eui64_address, link_local_address
from pyipxe.settings import predefined as p
from pyipxe.settings import types as t
from pyipxe.settings.store import Setting, SettingsBlock, SettingsTree

SCOPE_NDP = "ndp"
SCOPE_DHCPV6 = "dhcpv6"
LINK_SETTINGS_NAME = "link"
NDP_SETTINGS_NAME = "ndp"
DHCPV6_SETTINGS_NAME = "dhcpv6"

# include/ipxe/ipv6.h: sibling order of the IPv6 settings sources.
ORDER_PREFIX_ONLY, ORDER_LINK_LOCAL, ORDER_SLAAC, ORDER_DHCPV6 = -4, -3, -2, -1
MAX_PREFIX_LEN = 128
DEFAULT_PREFIX_LEN = 64

# core/settings.c: a block without a store operation.
ERR_READ_ONLY = ErrorSite(ErrorClass.ENOTSUP, 0x0C20)

Mac = Callable[[], bytes]


class _Ipv6Block(SettingsBlock):
    """A read-only block with iPXE's sibling ``order`` and named settings it answers by name."""

    order = 0
    # (predefined setting, type it is fetched with) answered by name from any scope, as iPXE's
    # applicable_setting finds "filename" in the DHCPv6 scope for ${filename}.
    named: tuple[Setting, ...] = ()

    def _named(self, setting: Setting) -> Setting | None:
        for known in self.named:
            if setting.same_as(known) or (setting.name and setting.name == known.name):
                return known
        return None

    def applies(self, setting: Setting) -> bool:
        return self._named(setting) is not None or (self.default_scope is not None
                                                    and setting.scope == self.default_scope)

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        raise IpxeError(ERR_READ_ONLY)

    def local_settings(self) -> Iterator[Setting]:
        for known in self.named:
            if self.fetch_local(known) is not None:
                yield known


def register_ordered(parent: SettingsBlock, block: _Ipv6Block) -> _Ipv6Block:
    """Replace ``parent``'s child of the same name; place it by iPXE's order among equal priorities."""
    old = parent.child(block.name)
    if old is not None:
        parent.unregister(old)
    parent.register(block)
    parent.children.remove(block)
    position = len(parent.children)
    for index, sibling in enumerate(parent.children):
        if sibling.priority == block.priority and getattr(sibling, "order", 0) < block.order:
            position = index
            break
        if sibling.priority < block.priority:
            position = index
            break
    parent.children.insert(position, block)
    return block


# ---- netN.link -----------------------------------------------------------------------------


class LinkLocalBlock(_Ipv6Block):
    """``netN.link``: the EUI-64 link-local address iPXE gives every interface."""

    order = ORDER_LINK_LOCAL
    named = (p.IP6, p.LEN6)

    def __init__(self, mac: Mac) -> None:
        super().__init__(LINK_SETTINGS_NAME)
        self.mac = mac

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        known = self._named(setting)
        mac = self.mac()
        if len(mac) != 6:
            return None
        if known is p.IP6:
            return p.IP6, link_local_address(mac).packed
        if known is p.LEN6:
            return p.LEN6, bytes((DEFAULT_PREFIX_LEN,))
        return None


def register_link_local(device_block: SettingsBlock, mac: Mac) -> None:
    register_ordered(device_block, LinkLocalBlock(mac))


# ---- netN.ndp and its prefixes ------------------------------------------------------------

_NDP_DNS6 = Setting("dns6", t.IPV6, 0, SCOPE_NDP, "DNS server")
_NDP_DNSSL = Setting("dnssl", t.DNSSL, 0, SCOPE_NDP, "DNS search list")
_NDP_NAMED = {"dns6": (OPT_RDNSS, _NDP_DNS6), "dnssl": (OPT_DNSSL, _NDP_DNSSL)}


class NdpBlock(_Ipv6Block):
    default_scope = SCOPE_NDP
    named = (_NDP_DNS6, _NDP_DNSSL)

    def __init__(self, advertisement: RouterAdvertisement) -> None:
        super().__init__(NDP_SETTINGS_NAME)
        self.advertisement = advertisement
        self.order = ORDER_SLAAC if any(prefix.autonomous for prefix in advertisement.prefixes) else ORDER_PREFIX_ONLY

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        known = self._named(setting)
        if known is not None:
            kind, stored = _NDP_NAMED[known.name]
            data = self.advertisement.option_data(kind, 8)  # after type, length, reserved, lifetime
        elif setting.scope == SCOPE_NDP and setting.tag:
            tag = setting.tag
            data = self.advertisement.option_data(tag & 0xFF, (tag >> 8) & 0xFF, (tag >> 16) & 0xFF, tag >> 24)
            stored = Setting(setting.name, t.HEX, tag, SCOPE_NDP)
        else:
            return None
        return (stored, data) if data else None


class NdpPrefixBlock(_Ipv6Block):
    named = (p.IP6, p.LEN6, p.GATEWAY6)

    def __init__(self, name: str, prefix: PrefixInformation, ndp: NdpBlock, mac: Mac) -> None:
        super().__init__(name)
        self.prefix = prefix
        self.ndp = ndp
        self.mac = mac
        self.order = ORDER_SLAAC if prefix.autonomous else ORDER_PREFIX_ONLY

    def address(self) -> IPv6Address | None:
        """iPXE's ndp_prefix_fetch_ip6: SLAAC on a well-formed autonomous prefix, else the prefix."""
        prefix = self.prefix
        if not prefix.valid:
            return None
        mac = self.mac()
        if prefix.autonomous and prefix.length == DEFAULT_PREFIX_LEN and len(mac) == 6:
            return eui64_address(prefix.prefix, mac)
        return prefix.prefix

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        known = self._named(setting)
        if known is p.IP6:
            address = self.address()
            return (p.IP6, address.packed) if address is not None else None
        if known is p.LEN6:
            return p.LEN6, bytes((self.prefix.length if self.prefix.on_link else 0xFF,))
        if known is p.GATEWAY6 and self.ndp.advertisement.lifetime:
            return p.GATEWAY6, self.ndp.advertisement.router.packed
        return None


def register_router_advertisement(settings: SettingsTree, device_block: SettingsBlock,
                                  advertisement: RouterAdvertisement, mac: Mac) -> None:
    """``netN.ndp`` and one child per prefix option, replacing any earlier ones; then apply."""
    ndp = NdpBlock(advertisement)
    for index, prefix in enumerate(advertisement.prefixes):
        register_ordered(ndp, NdpPrefixBlock(str(index), prefix, ndp, mac))
    register_ordered(device_block, ndp)
    for apply in settings.applicators:
        apply(device_block)


# ---- netN.dhcpv6 ---------------------------------------------------------------------------

_DHCPV6_FILENAME = Setting("filename", t.STRING, Option.BOOTFILE_URL, SCOPE_DHCPV6, "Boot filename")
_DHCPV6_DNSSL = Setting("dnssl", t.DNSSL, Option.DOMAIN_LIST, SCOPE_DHCPV6, "DNS search list")
_DHCPV6_DNS6 = Setting("dns6", t.IPV6, Option.DNS_SERVERS, SCOPE_DHCPV6, "DNS server")


class Dhcpv6Block(_Ipv6Block):
    default_scope = SCOPE_DHCPV6
    order = ORDER_DHCPV6
    named = (p.IP6, _DHCPV6_DNS6, _DHCPV6_DNSSL, _DHCPV6_FILENAME)

    def __init__(self, lease: Dhcpv6Lease) -> None:
        super().__init__(DHCPV6_SETTINGS_NAME)
        self.lease = lease

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        known = self._named(setting)
        if known is p.IP6:
            return (p.IP6, self.lease.address.packed) if self.lease.address is not None else None
        if known is not None:
            stored = known
        elif setting.scope == SCOPE_DHCPV6 and 0 < setting.tag <= 0xFFFF:
            stored = Setting(setting.name, None, setting.tag, SCOPE_DHCPV6)
        else:
            return None
        data = self.lease.option(stored.tag)
        return (stored, data) if data else None

    def local_settings(self) -> Iterator[Setting]:
        yield from super().local_settings()
        named = {known.tag for known in self.named}
        for code, _ in self.lease.options:
            if code not in named:
                named.add(code)
                yield Setting(str(code), None, code, SCOPE_DHCPV6)


def register_dhcpv6(settings: SettingsTree, device_block: SettingsBlock, lease: Dhcpv6Lease) -> None:
    register_ordered(device_block, Dhcpv6Block(lease))
    for apply in settings.applicators:
        apply(device_block)


def dhcpv6_identity(settings: SettingsTree, mac: bytes, *, platform: str, buildarch: str) -> Dhcpv6Identity:
    """iPXE's DUID-UUID from ``${uuid}`` (DUID-LL when there is none: later iPXE's choice), the
    IAID from the MAC, ``${user-class}``, and option 60's PXEClient string for the vendor class."""
    from pyipxe.proto.dhcp import DhcpIdentity

    def raw(setting: Setting) -> bytes | None:
        found = settings.fetch(setting)
        return found.data if found is not None else None

    uuid = raw(p.UUID)
    base = DhcpIdentity.for_platform(mac, platform, buildarch)
    duid = duid_uuid(uuid) if uuid is not None and len(uuid) == 16 else duid_ll(mac)
    return Dhcpv6Identity(duid, iaid_of(mac), base.arch, base.ndi, base.pxeclient(), raw(p.USER_CLASS))


# ---- the routing table iPXE derives from these settings -----------------------------------


@dataclass
class Ipv6Route:
    """One of iPXE's IPv6 "miniroutes": what ``route`` prints (``addr/len [gw R][ (no address)]``)."""

    address: IPv6Address
    prefix_len: int
    router: IPv6Address | None = None
    has_address: bool = False

    def covers(self, address: IPv6Address) -> bool:
        mask = ((1 << MAX_PREFIX_LEN) - 1) ^ ((1 << (MAX_PREFIX_LEN - self.prefix_len)) - 1)
        return (int(self.address) ^ int(address)) & mask == 0

    def text(self) -> str:
        gateway = f" gw {self.router}" if self.router is not None else ""
        return f"{self.address}/{self.prefix_len}{gateway}{'' if self.has_address else ' (no address)'}"


def _local(block: SettingsBlock, setting: Setting) -> bytes | None:
    """What ``block`` itself answers (iPXE's fetch with origin == block)."""
    if block.redirect() is not None or not block.applies(setting):
        return None
    found = block.fetch_local(setting)
    return found[1] if found is not None else None


def ipv6_routes(device_block: SettingsBlock) -> list[Ipv6Route]:
    """iPXE's ipv6_create_routes for one interface: children depth-first in reverse, each
    block's own ip6/len6/gateway6 added to the front, merging into a route that covers it."""
    routes: list[Ipv6Route] = []

    def visit(block: SettingsBlock) -> None:
        for child in reversed(block.children):
            visit(child)
        ip6 = _local(block, p.IP6)
        if ip6 is None or len(ip6) != 16:
            return
        len6 = _local(block, p.LEN6)
        prefix_len = min(len6[0], MAX_PREFIX_LEN) if len6 is not None and len(len6) == 1 else 0
        gateway = _local(block, p.GATEWAY6)
        _add_route(routes, IPv6Address(ip6), prefix_len,
                   IPv6Address(gateway) if gateway is not None and len(gateway) == 16 else None)

    visit(device_block)
    return routes


def _add_route(routes: list[Ipv6Route], address: IPv6Address, prefix_len: int, router: IPv6Address | None) -> None:
    route = next((existing for existing in routes if existing.covers(address)), None)
    if route is not None:
        routes.remove(route)
    else:
        route = Ipv6Route(address, prefix_len or DEFAULT_PREFIX_LEN)
    routes.insert(0, route)
    host_bits = (1 << (MAX_PREFIX_LEN - route.prefix_len)) - 1
    if int(address) & host_bits:
        route.address, route.has_address = address, True
    if route.prefix_len == MAX_PREFIX_LEN:
        route.has_address = True
    if router is not None:
        route.router = router
