"""Network devices: Linux interfaces seen as iPXE's ``net0``, ``net1``… with their settings.

Why: scripts name interfaces the iPXE way (``ifopen net0``, ``${net0/mac}``,
``${netX/ip}``) and branch on ``${net0/busid}`` or ``${net0/chip}``; pyipxe must show the
machine's real NICs under those names, in an order a script can rely on.

Naming order (documented, stable across boots):
1. physical NICs (those with ``/sys/class/net/X/device``), sorted by bus type (PCI, then
   USB, then any other bus) and bus address (``0000:00:03.0`` before ``0000:01:00.0``);
2. then virtual interfaces (veth, bridge, bond, VLAN, dummy…), sorted by name with
   numbers compared as numbers (``eth2`` before ``eth10``).
Skipped: loopback, links that are not Ethernet-like, and interfaces enslaved to a bridge
or bond (their master carries the traffic). ``--interface`` replaces this: ``eth1``
picks an interface (numbered in the order given), ``net3=eth1`` maps one explicitly.
VLANs made by ``vcreate`` are named ``<trunk>-<tag>`` (``net0-5``), as in iPXE.

Why the link dump is hand-written: enumeration happens on every ``pyipxe run`` so that
``${net0/mac}`` works on the first line, and importing pyroute2 costs ~100 ms, more than
the whole start-up budget (bench/startup.py). One ``RTM_GETLINK`` dump and one
``RTM_GETADDR`` dump over an AF_NETLINK socket take a millisecond; netlink (and not
/sys/class/net) is the source of truth because sysfs shows the namespace of whoever
mounted it. Everything that *changes* interfaces uses pyroute2 (netconfig.py).

Rules: a device's open/closed state is pyipxe's (iPXE's), never read back from Linux;
link state is read live from Linux; settings follow iPXE's net/netdev_settings.c
(``mac`` writable, the other live values read-only, anything else stored generically).
"""

from __future__ import annotations

import os
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError, register_special
from pyipxe.settings import predefined as p
from pyipxe.settings.store import Setting, SettingsBlock, SettingsTree

# net/netdev_settings.c: a read-only live setting, or a MAC of the wrong length.
ERR_READ_ONLY = ErrorSite(ErrorClass.ENOTSUP, 0x1460)
ERR_BAD_MAC = ErrorSite(ErrorClass.EINVAL, 0x1460)
# net/netdevice.c: the default link statuses iPXE prints ("Down", "Unknown").
ERR_LINK_DOWN = register_special(ErrorSite(ErrorClass.ENOTCONN, 0x0861, "Down"))
ERR_LINK_UNKNOWN = register_special(ErrorSite(ErrorClass.EINPROGRESS, 0x0861, "Unknown"))

# iPXE's bus type numbers (include/ipxe/device.h) and names (netdev_settings.c).
BUS_TYPES = {"PCI": 1, "ISAPNP": 2, "EISA": 3, "MCA": 4, "ISA": 5, "TAP": 6, "EFI": 7, "XEN": 8, "HV": 9,
             "USB": 10, "DT": 11}
# Linux bus (sysfs subsystem) → iPXE bus type name.
_SUBSYSTEM_BUS = {"pci": "PCI", "usb": "USB", "xen": "XEN", "vmbus": "HV", "platform": "DT"}

# rtnetlink constants (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWADDR, _RTM_GETADDR = 16, 18, 20, 22
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_MASTER = 1, 3, 4, 10
_IFLA_OPERSTATE, _IFLA_LINKINFO, _IFLA_STATS64, _IFLA_PERM_ADDRESS = 16, 18, 23, 54
_IFLA_INFO_KIND = 1
_IFA_ADDRESS, _IFA_LOCAL, _IFA_FLAGS = 1, 2, 8
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
_IFF_UP, _IFF_LOWER_UP = 0x1, 0x10000
_ARPHRD_ETHER = 1


def _attributes(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """rtattr TLVs from ``offset`` to the end; a malformed one ends the walk."""
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            return
        yield kind & 0x3FFF, data[offset + 4: offset + length]
        offset += (length + 3) & ~3


def _dump(msg_type: int, family: int) -> Iterator[bytes]:
    """Every message body of one rtnetlink dump request."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(5)
        body = struct.pack("=BxxxI", family, 0) if msg_type == _RTM_GETADDR else struct.pack("=BxHiII", family, 0, 0, 0, 0)
        header = struct.pack("=IHHII", 16 + len(body), msg_type, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
        sock.send(header + body)
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if length < 16:
                    return
                if kind in (_NLMSG_DONE, _NLMSG_ERROR):
                    return
                yield data[offset + 16: offset + length]
                offset += (length + 3) & ~3


@dataclass
class LinkState:
    """What netlink says about one interface right now."""

    ifindex: int
    ifname: str
    arphrd: int
    flags: int
    mac: bytes = b""
    perm_mac: bytes = b""
    mtu: int = 0
    master: int = 0
    kind: str = ""
    stats: tuple[int, int, int, int] = (0, 0, 0, 0)  # rx packets, tx packets, rx errors, tx errors

    @property
    def link_up(self) -> bool:
        return bool(self.flags & _IFF_UP) and bool(self.flags & _IFF_LOWER_UP)


def dump_links() -> list[LinkState]:
    links = []
    for body in _dump(_RTM_GETLINK, socket.AF_UNSPEC):
        if len(body) < 16:
            continue
        _, arphrd, ifindex, flags = struct.unpack_from("=BxHiI", body)
        link = LinkState(ifindex, "", arphrd, flags)
        for kind, value in _attributes(body, 16):
            if kind == _IFLA_IFNAME:
                link.ifname = value.rstrip(b"\0").decode(errors="replace")
            elif kind == _IFLA_ADDRESS:
                link.mac = value
            elif kind == _IFLA_PERM_ADDRESS:
                link.perm_mac = value
            elif kind == _IFLA_MTU and len(value) >= 4:
                link.mtu = struct.unpack_from("=I", value)[0]
            elif kind == _IFLA_MASTER and len(value) >= 4:
                link.master = struct.unpack_from("=I", value)[0]
            elif kind == _IFLA_STATS64 and len(value) >= 48:
                rx, tx, _, _, rx_err, tx_err = struct.unpack_from("=6Q", value)
                link.stats = (rx, tx, rx_err, tx_err)
            elif kind == _IFLA_LINKINFO:
                for sub, sub_value in _attributes(value, 0):
                    if sub == _IFLA_INFO_KIND:
                        link.kind = sub_value.rstrip(b"\0").decode(errors="replace")
        links.append(link)
    return links


def ipv4_addresses() -> dict[int, list[tuple[str, int]]]:
    """ifindex → [(address, prefix length)] of every IPv4 address in this namespace."""
    found: dict[int, list[tuple[str, int]]] = {}
    for body in _dump(_RTM_GETADDR, socket.AF_INET):
        if len(body) < 8:
            continue
        _, prefix, _, _, ifindex = struct.unpack_from("=BBBBI", body)
        address = local = None
        for kind, value in _attributes(body, 8):
            if kind == _IFA_ADDRESS and len(value) == 4:
                address = socket.inet_ntoa(value)
            elif kind == _IFA_LOCAL and len(value) == 4:
                local = socket.inet_ntoa(value)
        if local or address:
            found.setdefault(ifindex, []).append((local or address or "", prefix))
    return found


def ipv6_addresses() -> dict[int, list[tuple[IPv6Address, int, int]]]:
    """ifindex → [(address, prefix length, IFA flags)] of every IPv6 address in this namespace."""
    found: dict[int, list[tuple[IPv6Address, int, int]]] = {}
    for body in _dump(_RTM_GETADDR, socket.AF_INET6):
        if len(body) < 8:
            continue
        _, prefix, flags, _, ifindex = struct.unpack_from("=BBBBI", body)
        address = None
        for kind, value in _attributes(body, 8):
            if kind == _IFA_ADDRESS and len(value) == 16:
                address = IPv6Address(value)
            elif kind == _IFA_FLAGS and len(value) >= 4:
                flags = struct.unpack_from("=I", value)[0]
        if address is not None:
            found.setdefault(ifindex, []).append((address, prefix, flags))
    return found


def link_state(ifindex: int) -> LinkState | None:
    for link in dump_links():
        if link.ifindex == ifindex:
            return link
    return None


# -- bus information from sysfs ------------------------------------------------------


@dataclass(frozen=True)
class BusInfo:
    bustype: str | None = None  # iPXE name: PCI, USB, TAP…
    location: int = 0  # busloc (PCI: busdevfn)
    vendor: int = 0
    device: int = 0
    dev_name: str = ""  # what ifstat prints after "on"
    driver: str = ""

    @property
    def busid(self) -> bytes:
        return bytes([BUS_TYPES.get(self.bustype or "", 0)]) + struct.pack(">HH", self.vendor, self.device)


def _read_hex(path: Path) -> int:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return 0


def _pci_location(address: str) -> int:
    match = re.fullmatch(r"([0-9a-f]{4,}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])", address)
    if not match:
        return 0
    segment, bus, dev, fn = (int(part, 16) for part in match.groups())
    return (segment << 16) | (bus << 8) | (dev << 3) | fn


def bus_info(ifname: str, ifindex: int, sysfs: Path = Path("/sys/class/net")) -> BusInfo | None:
    """Where the NIC sits, or None for a virtual interface (or a sysfs of another namespace)."""
    base = sysfs / ifname
    try:
        if int((base / "ifindex").read_text()) != ifindex:
            return None  # sysfs was mounted in another network namespace
        device = (base / "device").resolve(strict=True)
    except (OSError, ValueError):
        return None
    driver = os.path.basename(os.path.realpath(device / "driver")) if (device / "driver").exists() else ""
    subsystem = os.path.basename(os.path.realpath(device / "subsystem"))
    if subsystem == "virtio":  # virtio-net: the bus device is the parent (PCI, MMIO…)
        device = device.parent
        subsystem = os.path.basename(os.path.realpath(device / "subsystem"))
    bustype = _SUBSYSTEM_BUS.get(subsystem)
    if bustype == "PCI":
        return BusInfo("PCI", _pci_location(device.name), _read_hex(device / "vendor"), _read_hex(device / "device"),
                       device.name, driver)
    if bustype == "USB":
        usb = device.parent if ":" in device.name else device
        location = (_read_hex(usb / "busnum") << 8) | _read_hex(usb / "devnum")
        return BusInfo("USB", location, _read_hex(usb / "idVendor"), _read_hex(usb / "idProduct"), device.name, driver)
    return BusInfo(bustype, 0, 0, 0, device.name, driver)


# -- devices -----------------------------------------------------------------------


def _natural(text: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass
class NetDevice:
    """One interface as iPXE sees it; ``name`` is ``net0``…, ``ifname`` the Linux name."""

    name: str
    ifname: str
    ifindex: int
    hw_addr: bytes
    bus: BusInfo
    virtual: bool
    mtu: int = 1500
    mac_override: bytes | None = None
    is_open: bool = False
    #: set by vcreate: (trunk device, tag, priority)
    vlan: tuple[NetDevice, int, int] | None = None
    baseline: tuple[int, int, int, int] = (0, 0, 0, 0)
    block: NetDeviceBlock = field(init=False)

    def __post_init__(self) -> None:
        self.block = NetDeviceBlock(self)

    @property
    def mac(self) -> bytes:
        """The link-layer address in use: ``set netN/mac`` overrides the hardware's."""
        return self.mac_override if self.mac_override is not None else self.hw_addr

    @property
    def mac_text(self) -> str:
        return ":".join(f"{byte:02x}" for byte in self.mac)

    @property
    def chip(self) -> str:
        return self.bus.driver or "unknown"

    def link(self) -> LinkState | None:
        return link_state(self.ifindex)

    def link_ok(self) -> bool:
        state = self.link()
        return state is not None and state.link_up

    def counters(self) -> tuple[int, int, int, int]:
        """TX, TXE, RX, RXE since pyipxe found the device (iPXE counts since it probed)."""
        state = self.link()
        if state is None:
            return (0, 0, 0, 0)
        rx, tx, rx_err, tx_err = (now - then for now, then in zip(state.stats, self.baseline, strict=True))
        return (tx, tx_err, rx, rx_err)


class NetDeviceBlock(SettingsBlock):
    """``netN``: live device values (netdev_settings.c) over a generic store."""

    def __init__(self, device: NetDevice) -> None:
        super().__init__(device.name)
        self.device = device

    def _live(self) -> dict[str, bytes | None]:
        device = self.device
        bus = device.bus
        return {
            "mac": device.mac,
            "hwaddr": device.hw_addr,
            "bustype": bus.bustype.encode() if bus.bustype else None,
            "busloc": bus.location.to_bytes(4, "big"),
            "busid": bus.busid,
            "linktype": b"Ethernet",
            "chip": device.chip.encode(),
            "ifname": device.name.encode(),
        }

    _LIVE = (p.MAC, p.HWADDR, p.BUSTYPE, p.BUSLOC, p.BUSID, p.LINKTYPE, p.CHIP, p.IFNAME)

    def _match(self, setting: Setting) -> Setting | None:
        for live in self._LIVE:
            if not setting.tag and live.name == setting.name:
                return live
        return None

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        live = self._match(setting)
        if live is None:
            return super().fetch_local(setting)
        data = self._live()[live.name]
        return (live, data) if data else None

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        live = self._match(setting)
        if live is None:
            super().store_local(setting, data)
        elif live is not p.MAC:
            raise IpxeError(ERR_READ_ONLY)
        elif data is None:
            self.device.mac_override = None
        elif len(data) != 6:
            raise IpxeError(ERR_BAD_MAC)
        else:
            self.device.mac_override = bytes(data)

    def local_settings(self) -> Iterator[Setting]:
        yield from self._LIVE
        yield from super().local_settings()


class NetXBlock(SettingsBlock):
    """``netX``: an alias of the most recently opened device's block (iPXE's find_settings
    special case), so ``${netX/ip}`` reads and ``show netX/ip`` names ``net0.dhcp/ip``."""

    def __init__(self, network: NetworkState) -> None:
        super().__init__("netX")
        self.network = network

    def redirect(self) -> SettingsBlock | None:
        device = self.network.last_opened()
        return device.block if device is not None else None


class InterfaceChoiceError(ValueError):
    """``--interface`` names something that does not exist here."""


def _candidates(links: list[LinkState]) -> list[tuple[LinkState, BusInfo | None]]:
    return [(link, bus_info(link.ifname, link.ifindex)) for link in links if link.arphrd == _ARPHRD_ETHER]


def _default_order(found: list[tuple[LinkState, BusInfo | None]]) -> list[tuple[LinkState, BusInfo | None]]:
    physical: list[tuple[LinkState, BusInfo | None]] = [(link, bus) for link, bus in found
                                                         if bus is not None and not link.master]
    virtual: list[tuple[LinkState, BusInfo | None]] = [(link, bus) for link, bus in found
                                                        if bus is None and not link.master]
    bus_rank = {"PCI": 0, "USB": 1}
    physical.sort(key=lambda item: (bus_rank.get(item[1].bustype or "", 2) if item[1] else 2,
                                    _natural(item[1].dev_name if item[1] else ""), item[0].ifindex))
    virtual.sort(key=lambda item: _natural(item[0].ifname))
    return physical + virtual


def assign_names(found: list[tuple[LinkState, BusInfo | None]], choices: list[str]
                 ) -> list[tuple[str, LinkState, BusInfo | None]]:
    """Pair ``netN`` names with interfaces: the default order, or what ``--interface`` says."""
    if not choices:
        return [(f"net{index}", link, bus) for index, (link, bus) in enumerate(_default_order(found))]
    by_name = {link.ifname: (link, bus) for link, bus in found}
    mapped: dict[str, tuple[LinkState, BusInfo | None]] = {}
    picked: list[tuple[LinkState, BusInfo | None]] = []
    for choice in choices:
        netname, equals, ifname = choice.partition("=")
        if not equals:
            netname, ifname = "", choice
        if ifname not in by_name:
            raise InterfaceChoiceError(f"--interface {choice}: no Ethernet interface {ifname!r} here")
        if equals:
            if not re.fullmatch(r"net\d+", netname):
                raise InterfaceChoiceError(f"--interface {choice}: the name must be netN")
            mapped[netname] = by_name[ifname]
        else:
            picked.append(by_name[ifname])
    result = [(name, link, bus) for name, (link, bus) in mapped.items()]
    index = 0
    for link, bus in picked:
        while f"net{index}" in mapped:
            index += 1
        result.append((f"net{index}", link, bus))
        index += 1
    result.sort(key=lambda item: int(item[0][3:]))
    return result


def _virtual_bus(link: LinkState) -> BusInfo:
    # iPXE's own Linux build presents host interfaces as TAP devices; pyipxe does the same
    # for interfaces without a bus (veth, bridge, VLAN…), named by their Linux name.
    return BusInfo("TAP", link.ifindex, 0, 0, link.ifname, link.kind or "virtual")


def _register_link_local(device: NetDevice) -> None:
    """``netN.link``: iPXE's EUI-64 link-local address, following ``${netN/mac}``."""
    from pyipxe.settings.dhcpv6 import register_link_local

    register_link_local(device.block, lambda: device.mac)


class NetworkState:
    """The session's devices and who owns their configuration (see netconfig.py)."""

    def __init__(self, settings: SettingsTree, *, mode: str = "auto", interfaces: list[str] | None = None,
                 links: list[LinkState] | None = None) -> None:
        from pyipxe.net.netconfig import NetConfig

        self.settings = settings
        self.devices: list[NetDevice] = []
        self._open_order: list[NetDevice] = []
        try:
            links = dump_links() if links is None else links
            addresses = ipv4_addresses() if mode == "auto" else {}
        except OSError:  # no netlink here (a sandbox): a machine without network devices
            links, addresses = [], {}
        for name, link, bus in assign_names(_candidates(links), interfaces or []):
            device = NetDevice(name, link.ifname, link.ifindex, link.perm_mac or link.mac, bus or _virtual_bus(link),
                               bus is None, link.mtu, baseline=link.stats)
            self.devices.append(device)
        self.config = NetConfig(self, mode, {index: bool(found) for index, found in addresses.items()})
        self.netx = NetXBlock(self)
        settings.root.register(self.netx)
        for device in self.devices:
            settings.root.register(device.block)
            _register_link_local(device)
        settings.applicators.append(lambda block: self.config.reapply())

    def find(self, name: str) -> NetDevice | None:
        for device in self.devices:
            if device.name == name:
                return device
        return None

    def last_opened(self) -> NetDevice | None:
        return self._open_order[-1] if self._open_order else None

    def add(self, device: NetDevice) -> None:
        self.devices.append(device)
        self.settings.root.register(device.block)
        _register_link_local(device)

    def remove(self, device: NetDevice) -> None:
        self.devices.remove(device)
        if device in self._open_order:
            self._open_order.remove(device)
        if device.block.parent is not None:
            device.block.parent.unregister(device.block)

    def open(self, device: NetDevice) -> None:
        """iPXE's netdev_open: pyipxe state; in own mode also the Linux link (netconfig)."""
        if not device.is_open:
            self.config.on_open(device)
            device.is_open = True
        if device in self._open_order:
            self._open_order.remove(device)
        self._open_order.append(device)

    def close(self, device: NetDevice) -> None:
        if device.is_open:
            device.is_open = False
            self.config.on_close(device)
        if device in self._open_order:
            self._open_order.remove(device)

    def shutdown(self) -> None:
        """End of session: undo everything own mode did, as iPXE closes its devices on exit."""
        for device in list(self.devices):
            self.close(device)
        self.config.shutdown()
