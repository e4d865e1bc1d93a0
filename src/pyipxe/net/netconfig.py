"""Who owns an interface's configuration: pyipxe (**own**) or the host (**host**).

Why two modes: iPXE is the only network stack on its machine, so ``dhcp`` both learns boot
options and configures the NIC. pyipxe runs on Linux, where the interface may already be
configured by the host (NetworkManager, systemd-networkd, a container runtime) or may be
bare (an initramfs, LinuxBoot, a test namespace). Taking over a configured interface would
break the host; leaving a bare one unconfigured would make every download fail.

``pyipxe run --network MODE`` chooses; the default is ``auto``:

* **host** — the host configured the interface; pyipxe reads its addresses and routes
  (``route`` shows the kernel's) and never changes them. ``dhcp`` still runs DHCP, to learn
  the boot options (``${filename}``, ``${next-server}``, ``${dns}``…) without applying the
  address. ``ifopen``/``ifclose`` only change pyipxe's own open/closed state.
* **own** — pyipxe configures the interface as iPXE would: ``ifopen`` sets the link up,
  the IPv4 address, netmask and default gateway found in the device's settings (from
  DHCP or ``set net0/ip …``) are applied whenever they change, and the resolver uses the
  ``dns`` servers from the settings. ``ifclose`` (and the end of the session) undoes
  exactly what pyipxe added — addresses, the route, link-up — and nothing else.
* **auto** — per interface, at start-up: **host** if it has an IPv4 address, else **own**.
  So ``pyipxe run SCRIPT`` in a namespace whose NIC has no address just works, and on a
  workstation it never touches the host's network. VLANs made by ``vcreate`` are
  pyipxe's own in every mode.

DNS servers are never written to /etc/resolv.conf: the resolver (resolve.py) asks the
``dns`` servers from the settings directly, in either mode.

IPv6 (``ifconf -c ipv6``, and plain ``dhcp``): in both modes pyipxe solicits the router
advertisement and runs DHCPv6 itself, recording ``netN.ndp`` and ``netN.dhcpv6`` as iPXE
does. In **own** mode it also applies what iPXE's routing table holds (computed from those
settings, :func:`pyipxe.settings.dhcpv6.ipv6_routes`): every global address with an
address part (SLAAC = prefix + EUI-64, as iPXE builds it, or the DHCPv6 lease) and a
default route via the advertising router — with ``nodad``, since iPXE does no DAD. So
that the kernel does not configure the same interface from the same RA behind pyipxe's
back (and ``ifclose`` can tell what was pyipxe's), own mode sets the interface's
``accept_ra`` sysctl to 0 while it holds it open and restores the old value at ``ifclose``.
Link-local addresses stay the kernel's. In **host** mode nothing is applied and ``route``
shows the kernel's IPv6 addresses.

pyroute2 is imported only when something is changed or read beyond the start-up dump
(it costs ~100 ms to import).
"""

from __future__ import annotations

import errno
import ipaddress
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyipxe.settings import predefined as p
from pyipxe.settings.store import fetch

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from pyipxe.net.devices import NetDevice, NetworkState

MODES = ("auto", "own", "host")
_IFA_F_NODAD = 0x02
_SYSCTL = Path("/proc/sys/net/ipv6/conf")


def _set_sysctl(ifname: str, name: str, value: str) -> str | None:
    """Set an IPv6 per-interface sysctl; its previous value, or None if unchanged or unavailable."""
    path = _SYSCTL / ifname / name
    try:
        old = path.read_text().strip()
        if old == value:
            return None
        path.write_text(value)
    except OSError:
        return None
    return old


@dataclass(frozen=True)
class Ipv4Config:
    """An interface's IPv4 configuration as iPXE derives it from settings."""

    address: ipaddress.IPv4Address
    netmask: ipaddress.IPv4Address
    gateway: ipaddress.IPv4Address | None

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.netmask}", strict=False)


def classful_netmask(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    first = int(address) >> 24
    if first < 128:
        return ipaddress.IPv4Address("255.0.0.0")
    if first < 192:
        return ipaddress.IPv4Address("255.255.0.0")
    return ipaddress.IPv4Address("255.255.255.0")


def _ipv4(device: NetDevice, setting: Any) -> ipaddress.IPv4Address | None:
    found = fetch(device.block, setting)
    if found is None or len(found.data) < 4:
        return None
    value = ipaddress.IPv4Address(found.data[:4])
    return value if int(value) else None


def settings_config(device: NetDevice) -> Ipv4Config | None:
    """iPXE's rule (ipv4.c): ip, netmask (classful default), gateway from the device's own subtree."""
    address = _ipv4(device, p.IP)
    if address is None:
        return None
    netmask = _ipv4(device, p.NETMASK)
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{netmask}")
    except ValueError:
        netmask = None
    return Ipv4Config(address, netmask or classful_netmask(address), _ipv4(device, p.GATEWAY))


@dataclass(frozen=True)
class Ipv6Config:
    """What own mode applies for IPv6: global addresses (with prefix length) and a default router."""

    addresses: tuple[tuple[ipaddress.IPv6Address, int], ...] = ()
    router: ipaddress.IPv6Address | None = None


def settings_ipv6(device: NetDevice) -> Ipv6Config | None:
    """The addresses and router of iPXE's IPv6 routing table for ``device`` (link-local excluded)."""
    from pyipxe.settings.dhcpv6 import ipv6_routes

    routes = ipv6_routes(device.block)
    addresses = tuple((route.address, route.prefix_len) for route in routes
                      if route.has_address and not route.address.is_link_local)
    router = next((route.router for route in routes if route.router is not None), None)
    return Ipv6Config(addresses, router) if addresses or router else None


@dataclass
class _Applied:
    """What pyipxe itself added to one interface, so that it can take exactly that back."""

    link_up: bool = False
    config: Ipv4Config | None = None
    address_added: bool = False
    route_added: bool = False
    accept_ra: str | None = None  # the sysctl's value before own mode set it to 0
    config6: Ipv6Config | None = None
    addresses6: list[tuple[ipaddress.IPv6Address, int]] = field(default_factory=list)
    router6: ipaddress.IPv6Address | None = None


class NetConfig:
    def __init__(self, network: NetworkState, mode: str, configured: dict[int, bool]) -> None:
        self.network = network
        self.mode = mode
        self._configured = configured
        self._applied: dict[int, _Applied] = {}
        self._ipr: Any = None
        self._pool: ThreadPoolExecutor | None = None

    # -- policy -------------------------------------------------------------------------
    def mode_of(self, device: NetDevice) -> str:
        if device.vlan is not None:
            return "own"
        if self.mode != "auto":
            return self.mode
        return "host" if self._configured.get(device.ifindex) else "own"

    def owns(self, device: NetDevice) -> bool:
        return self.mode_of(device) == "own"

    # -- netlink ------------------------------------------------------------------------
    def netlink(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an ``IPRoute`` method (results materialised). pyroute2's synchronous API runs
        an event loop of its own, which cannot nest in pyipxe's, so it lives in one worker
        thread; the calls are local and quick, so waiting for them here is fine."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="pyipxe-netlink")

            def connect() -> Any:
                from pyroute2 import IPRoute  # type: ignore[import-untyped]

                return IPRoute()

            self._ipr = self._pool.submit(connect).result()

        def call() -> Any:
            result = getattr(self._ipr, method)(*args, **kwargs)
            return result if isinstance(result, (int, str, bytes, type(None))) else list(result)

        return self._pool.submit(call).result()

    def _log(self, message: str) -> None:
        print(f"pyipxe: {message}", file=sys.stderr)

    def _try(self, what: str, *args: Any, **kwargs: Any) -> bool:
        """Run one pyroute2 call; False (and a note on stderr) if Linux refused."""
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        kind, action = what.split()
        try:
            self.netlink(kind, action, *args, **kwargs)
        except NetlinkError as error:
            self._log(f"{what} {kwargs}: {error}")
            return False
        return True

    # -- open / close -------------------------------------------------------------------
    def on_open(self, device: NetDevice) -> None:
        if not self.owns(device):
            return
        applied = self._applied.setdefault(device.ifindex, _Applied())
        applied.accept_ra = _set_sysctl(device.ifname, "accept_ra", "0")
        state = device.link()
        if state is not None and not state.flags & 1 and self._try("link set", index=device.ifindex, state="up"):
            applied.link_up = True
        self._apply(device)

    def on_close(self, device: NetDevice) -> None:
        applied = self._applied.pop(device.ifindex, None)
        if applied is None:
            return
        self._unapply(device, applied)
        self._unapply6(device, applied)
        if applied.link_up:
            self._try("link set", index=device.ifindex, state="down")
        if applied.accept_ra is not None:
            _set_sysctl(device.ifname, "accept_ra", applied.accept_ra)

    def reapply(self) -> None:
        """Settings changed (a store or a DHCP lease): bring owned open interfaces in line."""
        for device in self.network.devices:
            if device.is_open and device.ifindex in self._applied:
                self._apply(device)

    def apply(self, device: NetDevice) -> None:
        if device.is_open and self.owns(device):
            self._applied.setdefault(device.ifindex, _Applied())
            self._apply(device)

    def _apply(self, device: NetDevice) -> None:
        applied = self._applied[device.ifindex]
        self._apply6(device, applied)
        wanted = settings_config(device)
        if wanted == applied.config:
            return
        self._unapply(device, applied)
        applied.config = wanted
        if wanted is None:
            return
        broadcast = str(wanted.network.broadcast_address)
        applied.address_added = self._try("addr add", index=device.ifindex, address=str(wanted.address),
                                          prefixlen=wanted.prefixlen, broadcast=broadcast)
        if wanted.gateway is not None:
            applied.route_added = self._try("route add", dst="0.0.0.0/0", gateway=str(wanted.gateway),
                                            oif=device.ifindex)

    def _unapply(self, device: NetDevice, applied: _Applied) -> None:
        config = applied.config
        if config is not None and applied.route_added and config.gateway is not None:
            self._try("route del", dst="0.0.0.0/0", gateway=str(config.gateway), oif=device.ifindex)
        if config is not None and applied.address_added:
            self._try("addr del", index=device.ifindex, address=str(config.address), prefixlen=config.prefixlen)
        applied.config = None
        applied.address_added = applied.route_added = False

    def _apply6(self, device: NetDevice, applied: _Applied) -> None:
        wanted = settings_ipv6(device)
        if wanted == applied.config6:
            return
        self._unapply6(device, applied)
        applied.config6 = wanted
        if wanted is None:
            return
        for address, prefixlen in wanted.addresses:
            if self._add6("addr", index=device.ifindex, address=str(address), prefixlen=prefixlen, family=10,
                          flags=_IFA_F_NODAD):
                applied.addresses6.append((address, prefixlen))
        if wanted.router is not None and self._add6("route", dst="::/0", gateway=str(wanted.router),
                                                    oif=device.ifindex, family=10):
            applied.router6 = wanted.router

    def _add6(self, kind: str, **kwargs: Any) -> bool:
        """Add an IPv6 address or route; True only if pyipxe added it (one that exists is not ours)."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self.netlink(kind, "add", **kwargs)
        except NetlinkError as error:
            if error.code != errno.EEXIST:
                self._log(f"{kind} add {kwargs}: {error}")
            return False
        return True

    def _unapply6(self, device: NetDevice, applied: _Applied) -> None:
        if applied.router6 is not None:
            self._try("route del", dst="::/0", gateway=str(applied.router6), oif=device.ifindex, family=10)
        for address, prefixlen in applied.addresses6:
            self._try("addr del", index=device.ifindex, address=str(address), prefixlen=prefixlen, family=10)
        applied.config6, applied.addresses6, applied.router6 = None, [], None

    # -- what ``route`` shows -------------------------------------------------------------
    def kernel_ipv4(self, device: NetDevice) -> list[Ipv4Config]:
        """The host's IPv4 addresses on the interface, with its default gateway there."""
        gateway = None
        for route in self.netlink("get_routes", family=2, oif=device.ifindex):
            if route["dst_len"] == 0 and route.get_attr("RTA_GATEWAY"):
                gateway = ipaddress.IPv4Address(route.get_attr("RTA_GATEWAY"))
                break
        configs = []
        for message in self.netlink("get_addr", family=2, index=device.ifindex):
            address = ipaddress.IPv4Address(message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS"))
            netmask = ipaddress.IPv4Network(f"0.0.0.0/{message['prefixlen']}").netmask
            configs.append(Ipv4Config(address, netmask, gateway))
        return configs

    def kernel_ipv6(self, device: NetDevice) -> list[tuple[ipaddress.IPv6Address, int, ipaddress.IPv6Address | None]]:
        """IPv6 addresses on the interface (global first, as iPXE lists SLAAC before link-local)."""
        router = None
        for route in self.netlink("get_routes", family=10, oif=device.ifindex):
            if route["dst_len"] == 0 and route.get_attr("RTA_GATEWAY"):
                router = ipaddress.IPv6Address(route.get_attr("RTA_GATEWAY"))
                break
        found = []
        for message in self.netlink("get_addr", family=10, index=device.ifindex):
            address = ipaddress.IPv6Address(message.get_attr("IFA_ADDRESS"))
            found.append((address, int(message["prefixlen"]), None if address.is_link_local else router))
        found.sort(key=lambda item: item[0].is_link_local)
        return found

    def ipv6_route_lines(self, device: NetDevice) -> list[str]:
        """What ``route`` prints for IPv6 after ``netN: ``: iPXE's settings-derived table in own
        mode (``addr/len gw router``, `` (no address)`` for a bare prefix), the kernel's in host mode."""
        if self.owns(device):
            from pyipxe.settings.dhcpv6 import ipv6_routes

            return [route.text() for route in ipv6_routes(device.block)]
        return [f"{address}/{prefix}" + (f" gw {router}" if router is not None else "")
                for address, prefix, router in self.kernel_ipv6(device)]

    def ipv4_routes(self, device: NetDevice) -> list[Ipv4Config]:
        """What ``route`` prints for IPv4: the settings in own mode (as iPXE), the kernel's in host mode."""
        if self.owns(device):
            config = settings_config(device)
            return [config] if config is not None else []
        return self.kernel_ipv4(device)

    # -- VLANs --------------------------------------------------------------------------
    def create_vlan(self, trunk: NetDevice, ifname: str, tag: int) -> int | None:
        """A Linux 802.1Q interface on ``trunk``; its ifindex, or None if Linux refused."""
        if not self._try("link add", ifname=ifname, kind="vlan", link=trunk.ifindex, vlan_id=tag):
            return None
        found = self.netlink("link_lookup", ifname=ifname)
        return int(found[0]) if found else None

    def destroy_vlan(self, device: NetDevice) -> None:
        self._try("link del", index=device.ifindex)

    def shutdown(self) -> None:
        for device in list(self.network.devices):
            if device.vlan is not None:
                self.network.remove(device)
                self.destroy_vlan(device)
        if self._pool is not None:
            self._pool.submit(self._ipr.close).result()
            self._pool.shutdown()
            self._pool = self._ipr = None
