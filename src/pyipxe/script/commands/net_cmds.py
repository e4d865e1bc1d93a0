"""The network commands (reference §3.1): interfaces, configuration, routes, names, ping, time, VLANs.

Each command parses its options here and calls into ``pyipxe.net`` (devices, netconfig,
resolve, icmp, ntp, dhcp), printing exactly what iPXE's usr/ifmgmt.c, route.c,
pingmgmt.c, nslookup.c, ntpmgmt.c, neighmgmt.c, ipstat.c and the vlan/dhcp commands print.
Waiting is iPXE's monojob: a label, ``...``, a dot a second, then `` ok`` or the error;
Ctrl-C cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TypeVar

from pyipxe.console.job import monojob as run_monojob
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError, register_special
from pyipxe.net.devices import ERR_LINK_DOWN, BusInfo, NetDevice, NetworkState
from pyipxe.script.context import Context
from pyipxe.script.options import (
    ERR_NO_SUCH_NETDEV,
    CommandSpec,
    Option,
    Parsed,
    Printer,
    parse_integer,
    parse_timeout,
)
from pyipxe.script.registry import command
from pyipxe.settings import predefined as p
from pyipxe.settings import types as stypes

T = TypeVar("T")

# usr/ifmgmt.c: no configurator succeeded
ERR_NO_CONFIG = register_special(ErrorSite(ErrorClass.EADDRNOTAVAIL, 0x0EE1, "No configuration methods succeeded"))
# hci/commands/ifmgmt_cmd.c: no interfaces at all
ERR_NO_INTERFACES = ErrorSite(ErrorClass.ENODEV, 0x1DE0)
# core/parseopt.c: unknown configurator name
ERR_NO_CONFIGURATOR = ErrorSite(ErrorClass.ENOTSUP, 0x1620)
# core/pinger.c
ERR_PING_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x1B20)
ERR_PING_LEN = ErrorSite(ErrorClass.EPROTO, 0x1B21)
ERR_PING_DATA = ErrorSite(ErrorClass.EPROTO, 0x1B22)
ERR_PING_SEQ = ErrorSite(ErrorClass.EPROTO, 0x1B23)
ERR_PING_INVALID = ErrorSite(ErrorClass.EINVAL, 0x1B20)
# pyipxe's own (iPXE always may send): Linux refused an ICMP socket. Numbered in pinger.c.
ERR_PING_SOCKET = ErrorSite(ErrorClass.EPERM, 0x1B20)
# net/vlan.c
ERR_VLAN_NOT_TRUNK = ErrorSite(ErrorClass.ENOTTY, 0x3060)
ERR_VLAN_INVALID = ErrorSite(ErrorClass.EINVAL, 0x3060)
# pyipxe's own: Linux refused to create the 802.1Q interface (no 8021q module…). Numbered in vlan.c.
ERR_VLAN_LINUX = ErrorSite(ErrorClass.ENOTSUP, 0x3060)

LINK_WAIT = 15.0  # ifmgmt.c LINK_WAIT_TIMEOUT


def network(ctx: Context) -> NetworkState:
    """The session's devices; found on first use when the runner did not set them up."""
    if ctx.network is None:
        ctx.network = NetworkState(ctx.settings)
    return ctx.network


def parse_netdev(ctx: Context, name: str) -> NetDevice:
    device = network(ctx).find(name)
    if device is None:
        ctx.console.print(f'"{name}": no such network device')
        raise IpxeError(ERR_NO_SUCH_NETDEV)
    return device


async def monojob(ctx: Context, label: str | None, job: Awaitable[T], *, timeout: float = 0.0,
                  ongoing: Callable[[], IpxeError | None] | None = None) -> T:
    """iPXE's monojob_wait for network jobs (no progress: a dot a second, timeout in total)."""
    return await run_monojob(job, console=ctx.console, keys=ctx.keys, error_text=ctx.error_text, label=label,
                             timeout=timeout, ongoing=ongoing)


async def for_interfaces(ctx: Context, names: list[str], payload: Callable[[NetDevice], Awaitable[None]], *,
                         stop_on_success: bool) -> None:
    """ifcommon_exec: the named interfaces (or all), the last status wins unless one succeeds first."""
    failure: IpxeError | None = IpxeError(ERR_NO_INTERFACES)
    items: list[str | NetDevice] = list(names) if names else list(network(ctx).devices)
    for item in items:
        try:
            device = parse_netdev(ctx, item) if isinstance(item, str) else item
            await payload(device)
        except IpxeError as error:
            failure = error
            continue
        failure = None
        if stop_on_success:
            return
    if failure is not None:
        raise failure


IF_SPEC = CommandSpec(usage="[<interface>...]")

# -- ifopen / ifclose / ifstat --------------------------------------------------------------


@command("ifopen", spec=IF_SPEC)
async def ifopen(ctx: Context, opts: Parsed) -> None:
    async def payload(device: NetDevice) -> None:
        network(ctx).open(device)

    await for_interfaces(ctx, opts.args, payload, stop_on_success=False)


@command("ifclose", spec=IF_SPEC)
async def ifclose(ctx: Context, opts: Parsed) -> None:
    async def payload(device: NetDevice) -> None:
        network(ctx).close(device)

    await for_interfaces(ctx, opts.args, payload, stop_on_success=False)


def ifstat_text(ctx: Context, device: NetDevice) -> str:
    tx, tx_err, rx, rx_err = device.counters()
    up = device.link_ok()
    lines = [
        f"{device.name}: {device.mac_text} using {device.chip} on {device.bus.dev_name} (Ethernet) "
        f"[{'open' if device.is_open else 'closed'}]",
        f"  [Link:{'up' if up else 'down'}, TX:{tx} TXE:{tx_err} RX:{rx} RXE:{rx_err}]",
    ]
    if not up:
        lines.append(f"  [Link status: {ctx.error_text(IpxeError(ERR_LINK_DOWN))}]")
    return "\n".join(lines)


@command("ifstat", spec=IF_SPEC)
async def ifstat(ctx: Context, opts: Parsed) -> None:
    async def payload(device: NetDevice) -> None:
        ctx.console.print(ifstat_text(ctx, device))

    await for_interfaces(ctx, opts.args, payload, stop_on_success=False)


# -- iflinkwait / ifconf / dhcp -----------------------------------------------------------


async def _link_up(device: NetDevice) -> None:
    while not device.link_ok():
        await asyncio.sleep(0.05)


async def iflinkwait(ctx: Context, device: NetDevice, timeout: float, *, verbose: bool) -> None:
    """usr/ifmgmt.c iflinkwait: open, return at once if the link is up (unless verbose), else wait."""
    network(ctx).open(device)
    if device.link_ok() and not verbose:
        return
    ctx.console.write(f"Waiting for link-up on {device.name}")
    await monojob(ctx, "", _link_up(device), timeout=timeout, ongoing=lambda: IpxeError(ERR_LINK_DOWN))


@command("iflinkwait", spec=CommandSpec(options=(Option("timeout", "t", parse_timeout),), usage="[<interface>...]"))
async def iflinkwait_cmd(ctx: Context, opts: Parsed) -> None:
    async def payload(device: NetDevice) -> None:
        try:
            await iflinkwait(ctx, device, (opts.timeout or 0) / 1000, verbose=True)
        except IpxeError:
            network(ctx).close(device)
            raise

    await for_interfaces(ctx, opts.args, payload, stop_on_success=True)


CONFIGURATORS = ("dhcp", "ipv6")


def parse_configurator(text: str, out: Printer) -> str:
    if text not in CONFIGURATORS:
        out.print(f'"{text}": no such configurator')
        raise IpxeError(ERR_NO_CONFIGURATOR)
    return text


async def configure_dhcp(ctx: Context, device: NetDevice) -> None:
    """DHCP (the DHCP helper's client), then register the lease; own mode applies it."""
    from pyipxe.net.dhcp import acquire_lease, interface_has_ipv4
    from pyipxe.settings.builtin import host_buildarch
    from pyipxe.settings.dhcp import identity_from_settings, register_lease

    identity = identity_from_settings(ctx.settings, device.block, device.mac, platform=ctx.platform,
                                      buildarch=host_buildarch(), broadcast=interface_has_ipv4(device.ifname))
    lease = await acquire_lease(device.ifname, device.ifindex, device.mac, identity, log=_log_verbose(ctx))
    register_lease(ctx.settings, device.block, lease)
    network(ctx).config.apply(device)


class Ipv6Progress:
    """What the IPv6 configurator has reached, so that ifconf can decide whether to wait for it."""

    def __init__(self) -> None:
        self.router_found = False

    def found(self) -> None:
        self.router_found = True


async def configure_ipv6(ctx: Context, device: NetDevice, progress: Ipv6Progress | None = None) -> None:
    """net/ndp.c's ipv6 configurator: solicit a router; register its advertisement as
    ``netN.ndp``; if it has the M (or only the O) flag, run stateful (stateless) DHCPv6 and
    register ``netN.dhcpv6``. Own mode applies the result (netconfig)."""
    from pyipxe.net.dhcpv6 import acquire_dhcpv6
    from pyipxe.net.ndp import solicit_router
    from pyipxe.settings.builtin import host_buildarch
    from pyipxe.settings.dhcpv6 import dhcpv6_identity, register_dhcpv6, register_router_advertisement

    log = _log_verbose(ctx)
    advertisement = await solicit_router(device.ifname, device.ifindex, device.mac, log=log,
                                         found=progress.found if progress is not None else None)
    register_router_advertisement(ctx.settings, device.block, advertisement, lambda: device.mac)
    network(ctx).config.apply(device)
    if not (advertisement.managed or advertisement.other):
        return
    identity = dhcpv6_identity(ctx.settings, device.mac, platform=ctx.platform, buildarch=host_buildarch())
    lease = await acquire_dhcpv6(device.ifname, device.ifindex, identity, stateful=advertisement.managed, log=log)
    register_dhcpv6(ctx.settings, device.block, lease)
    network(ctx).config.apply(device)


async def configure_all(ctx: Context, device: NetDevice) -> None:
    """Every configurator at once, as iPXE's ifconf without ``-c``; success if any succeeds.

    iPXE waits for all of them, so on a network without IPv6 routers its ``dhcp`` takes the
    15.75 s of router discovery even after DHCPv4 is bound. pyipxe waits for IPv6 only once a
    router has answered (then DHCPv6 runs to its end, as in iPXE); when DHCPv4 is bound and no
    router advertisement has come, IPv6 is abandoned there. Only the number of progress dots
    differs; a router answering a solicitation within DHCPv4's ~3 s is still recorded.
    """
    progress = Ipv6Progress()
    v4 = asyncio.ensure_future(configure_dhcp(ctx, device))
    v6 = asyncio.ensure_future(configure_ipv6(ctx, device, progress))
    try:
        await asyncio.wait({v4})
        if v4.exception() is None and not v6.done() and not progress.router_found:
            v6.cancel()
        await asyncio.wait({v6})
    finally:
        for task in (v4, v6):
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    finished = [task for task in (v4, v6) if not task.cancelled()]
    if any(task.exception() is None for task in finished):
        return
    for task in finished:
        error = task.exception()
        if error is not None and not isinstance(error, IpxeError):
            raise error
    raise IpxeError(ERR_NO_CONFIG)


def _log_verbose(ctx: Context) -> Callable[[str], None]:
    env = ctx.fetch_env
    return env.log if env is not None else (lambda message: None)


async def ifconf(ctx: Context, device: NetDevice, configurator: str | None, timeout: float) -> None:
    """usr/ifmgmt.c ifconf: link up (≤ 15 s), then the configurator(s) under one monojob."""
    await iflinkwait(ctx, device, LINK_WAIT, verbose=False)
    tag = f"[{configurator}] " if configurator else ""
    label = f"Configuring {tag}({device.name} {device.mac_text})"

    async def run_all() -> None:
        if configurator == "ipv6":
            await configure_ipv6(ctx, device)
        elif configurator == "dhcp":
            await configure_dhcp(ctx, device)
        else:
            await configure_all(ctx, device)

    await monojob(ctx, label, run_all(), timeout=timeout)


IFCONF_SPEC = CommandSpec(options=(Option("configurator", "c", parse_configurator), Option("timeout", "t", parse_timeout)),
                          usage="[<interface>...]")


@command("ifconf", "dhcp", spec=IFCONF_SPEC)
async def ifconf_cmd(ctx: Context, opts: Parsed) -> None:
    async def payload(device: NetDevice) -> None:
        try:
            await ifconf(ctx, device, opts.configurator, (opts.timeout or 0) / 1000)
        except IpxeError:
            network(ctx).close(device)  # as iPXE: a failed interface is closed
            raise

    await for_interfaces(ctx, opts.args, payload, stop_on_success=True)


# -- route / nstat / ipstat ---------------------------------------------------------------------


@command("route", spec=CommandSpec(max_args=0))
async def route(ctx: Context, opts: Parsed) -> None:
    """usr/route.c: per interface, its IPv4 routes then its IPv6 ones."""
    state = network(ctx)
    for device in state.devices:
        closed = "" if device.is_open else " (inaccessible)"
        for config in state.config.ipv4_routes(device):
            gateway = f" gw {config.gateway}" if config.gateway is not None else ""
            ctx.console.print(f"{device.name}: {config.address}/{config.netmask}{gateway}{closed}")
        for line in state.config.ipv6_route_lines(device):
            ctx.console.print(f"{device.name}: {line}{closed}")


_NUD_INCOMPLETE, _NUD_FAILED, _NUD_NOARP = 0x01, 0x20, 0x40


@command("nstat", spec=CommandSpec(max_args=0))
async def nstat(ctx: Context, opts: Parsed) -> None:
    """usr/neighmgmt.c: the neighbour (ARP/NDP) cache of pyipxe's interfaces, from the kernel."""
    state = network(ctx)
    for device in state.devices:
        for neighbour in state.config.netlink("get_neighbours", ifindex=device.ifindex):
            nud = neighbour["state"]
            if nud & (_NUD_FAILED | _NUD_NOARP):
                continue
            family = "IP" if neighbour["family"] == socket.AF_INET else "IPv6"
            discovery = "ARP" if family == "IP" else "NDP"
            lladdr = neighbour.get_attr("NDA_LLADDR")
            complete = lladdr and not nud & _NUD_INCOMPLETE
            where = f"Ethernet {lladdr}" if complete else f"Ethernet (incomplete) ({discovery})"
            ctx.console.print(f"{device.name} {family} {neighbour.get_attr('NDA_DST')} is {where}")


def _proc_counters(path: str, prefix: str) -> dict[str, int]:
    """``Prefix: names…`` / ``Prefix: values…`` line pairs (/proc/net/snmp, netstat) or
    ``Name value`` lines (/proc/net/snmp6)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    counters: dict[str, int] = {}
    if path.endswith("snmp6"):
        for line in lines:
            name, _, value = line.partition(" ")
            if name.startswith(prefix) and value.strip().isdigit():
                counters[name[len(prefix):]] = int(value)
        return counters
    rows = [line.split()[1:] for line in lines if line.startswith(prefix + ":")]
    for names, values in zip(rows[::2], rows[1::2], strict=False):
        pairs = zip(names, values, strict=False)
        counters.update({name: int(value) for name, value in pairs if value.lstrip("-").isdigit()})
    return counters


@command("ipstat", spec=CommandSpec(max_args=0))
async def ipstat(ctx: Context, opts: Parsed) -> None:
    """usr/ipstat.c, from Linux's counters for this network namespace."""
    v4 = _proc_counters("/proc/net/snmp", "Ip") | _proc_counters("/proc/net/netstat", "IpExt")
    v6 = _proc_counters("/proc/net/snmp6", "Ip6")
    for version, c in ((4, v4), (6, v6)):
        def n(name: str, c: dict[str, int] = c) -> int:
            return c.get(name, 0)

        ctx.console.print(
            f"IP version {version}:\n"
            f"  InReceives:{n('InReceives')} InMcastPkts:{n('InMcastPkts')} InBcastPkts:{n('InBcastPkts')} "
            f"InOctets:{n('InOctets')}\n"
            f"  InHdrErrors:{n('InHdrErrors')} InAddrErrors:{n('InAddrErrors')} "
            f"InUnknownProtos:{n('InUnknownProtos')} InTruncatedPkts:{n('InTruncatedPkts')}\n"
            f"  ReasmReqds:{n('ReasmReqds')} ReasmOKs:{n('ReasmOKs')} ReasmFails:{n('ReasmFails')}\n"
            f"  InDelivers:{n('InDelivers')} OutRequests:{n('OutRequests')} OutNoRoutes:{n('OutNoRoutes')}\n"
            f"  OutTransmits:{n('OutTransmits') or n('OutRequests')} OutMcastPkts:{n('OutMcastPkts')} "
            f"OutBcastPkts:{n('OutBcastPkts')} OutOctets:{n('OutOctets')}")


# -- nslookup / ping / ntp -------------------------------------------------------------------------


async def resolve_host(ctx: Context, host: str) -> list[IPv4Address | IPv6Address]:
    from pyipxe.net.resolve import resolve

    return await resolve(host, ctx.settings)


@command("nslookup", spec=CommandSpec(min_args=2, max_args=2, usage="<setting> <name>"))
async def nslookup(ctx: Context, opts: Parsed) -> None:
    name_text, host = opts.args
    with ctx.reporting(f"resolve {host}"):
        addresses = await monojob(ctx, None, resolve_host(ctx, host))
        address = addresses[0]
        block, setting = ctx.settings.parse_name(name_text, create=True)
        if setting.type is None:
            setting = replace(setting, type=stypes.IPV4 if address.version == 4 else stypes.IPV6)
        ctx.settings.store(block, setting, address.packed)


PING_SPEC = CommandSpec(
    options=(Option("size", "s", parse_integer), Option("timeout", "t", parse_timeout),
             Option("count", "c", parse_integer), Option("quiet", "q")),
    min_args=1, max_args=1, usage="<host>", defaults={"size": 64, "timeout": 1000, "count": 0},
)


async def _pinger(ctx: Context, host: str, timeout: float, size: int, count: int, quiet: bool) -> None:
    """core/pinger.c: one request per ``timeout``; stop after ``count`` (0: never); success
    iff a valid reply arrived. Each outcome is reported as iPXE's ping_callback prints it."""
    from pyipxe.net.icmp import EchoSocket, payload

    def report(source: str | None, sequence: int, length: int, error: IpxeError | None) -> None:
        if quiet:
            return
        text = f"{length} bytes from {source or '<none>'}: seq={sequence}"
        ctx.console.print(text + (f": {ctx.error_text(error)}" if error is not None else ""))

    address = (await resolve_host(ctx, host))[0]
    try:
        sock = EchoSocket(address)
    except OSError:
        raise IpxeError(ERR_PING_SOCKET) from None
    data = payload(size)
    remaining = count + 1 if count else 0
    outcome: IpxeError | None = IpxeError(ERR_PING_TIMEOUT)
    sequence, pending = 0, False
    loop = asyncio.get_running_loop()
    try:
        while True:
            if pending:
                report(None, sequence, 0, IpxeError(ERR_PING_TIMEOUT))
            if remaining:
                remaining -= 1
                if remaining == 0:
                    break
            sequence = (sequence + 1) & 0xFFFF
            pending = True
            sock.send(sequence, data)
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                received = await sock.receive(left)
                if received is None:
                    break
                reply, source = received
                if reply.sequence == sequence:
                    pending = False
                terminate = False
                error: IpxeError | None
                if len(reply.data) != size:
                    error, terminate = IpxeError(ERR_PING_LEN), remaining != 0
                elif reply.data != data:
                    error, terminate = IpxeError(ERR_PING_DATA), remaining != 0
                elif reply.sequence != sequence:
                    error = IpxeError(ERR_PING_SEQ)
                else:
                    error, outcome = None, None
                    terminate = remaining == 1
                report(source, reply.sequence, len(reply.data), error)
                if terminate:
                    outcome = error
                    remaining = -1
                    break
            if remaining == -1:
                break
    finally:
        sock.close()
    if outcome is not None:
        raise outcome


@command("ping", spec=PING_SPEC)
async def ping(ctx: Context, opts: Parsed) -> None:
    if not opts.timeout:
        error = IpxeError(ERR_PING_INVALID)
        ctx.console.print(f"Could not start ping: {ctx.error_text(error)}")
        raise error
    try:
        await monojob(ctx, None, _pinger(ctx, opts.args[0], opts.timeout / 1000, opts.size, opts.count, opts.quiet))
    except IpxeError as error:
        if error.site is ERR_PING_SOCKET:
            ctx.console.print(f"Could not start ping: {ctx.error_text(error)}")
        elif not opts.quiet:
            ctx.console.print(f"Finished: {ctx.error_text(error)}")
        raise


@command("ntp", spec=CommandSpec(min_args=1, max_args=1, usage="<server>"))
async def ntp(ctx: Context, opts: Parsed) -> None:
    """SNTP; the answer moves pyipxe's clock (``${unixtime}``), never the host's."""
    from pyipxe.net import ntp as sntp

    async def job() -> int:
        address = (await resolve_host(ctx, opts.args[0]))[0]
        return (await sntp.query(str(address), now=_unixtime(ctx))).delta

    with ctx.reporting("get time and date"):
        delta = await monojob(ctx, None, job())
    ctx.builtin.store_local(p.UNIXTIME, ((_unixtime(ctx) + delta) & 0xFFFFFFFF).to_bytes(4, "big"))


def _unixtime(ctx: Context) -> int:
    found = ctx.builtin.fetch_local(p.UNIXTIME)
    return int.from_bytes(found[1], "big") if found is not None else 0


# -- vcreate / vdestroy ------------------------------------------------------------------------

VCREATE_SPEC = CommandSpec(options=(Option("tag", "t", parse_integer), Option("priority", "p", parse_integer)),
                           min_args=1, max_args=1, usage="<trunk interface>", defaults={"tag": 0, "priority": 0})


def _vlan_ifname(trunk: NetDevice, tag: int) -> str:
    suffix = f".{tag}"
    return trunk.ifname[: 15 - len(suffix)] + suffix


@command("vcreate", spec=VCREATE_SPEC)
async def vcreate(ctx: Context, opts: Parsed) -> None:
    state = network(ctx)
    trunk = parse_netdev(ctx, opts.args[0])
    tag, priority = opts.tag & 0xFFFFFFFF, opts.priority & 0xFFFFFFFF
    with ctx.reporting("create VLAN device"):
        for device in state.devices:
            if device.vlan is not None and device.vlan[0] is trunk and device.vlan[1] == tag:
                device.vlan = (trunk, tag, priority)  # exists: only the priority changes
                return
        if trunk.vlan is not None:
            raise IpxeError(ERR_VLAN_NOT_TRUNK)
        if tag >= 0xFFF or priority > 7:
            raise IpxeError(ERR_VLAN_INVALID)
        ifindex = state.config.create_vlan(trunk, _vlan_ifname(trunk, tag), tag)
        if ifindex is None:
            raise IpxeError(ERR_VLAN_LINUX)
    bus = trunk.bus
    device = NetDevice(f"{trunk.name}-{tag}", _vlan_ifname(trunk, tag), ifindex, trunk.mac,
                       BusInfo(bus.bustype, bus.location, bus.vendor, bus.device, bus.dev_name, bus.driver),
                       True, trunk.mtu, vlan=(trunk, tag, priority))
    state.add(device)


@command("vdestroy", spec=CommandSpec(min_args=1, max_args=1, usage="<VLAN interface>"))
async def vdestroy(ctx: Context, opts: Parsed) -> None:
    state = network(ctx)
    device = parse_netdev(ctx, opts.args[0])
    if device.vlan is None:
        error = IpxeError(ERR_VLAN_NOT_TRUNK)
        ctx.console.print(f"Could not destroy VLAN device: {ctx.error_text(error)}")
        raise error
    state.close(device)
    state.remove(device)
    state.config.destroy_vlan(device)


# -- pxebs ---------------------------------------------------------------------------------------


@command("pxebs", spec=CommandSpec(min_args=2, max_args=2, usage="<interface> <server type>"))
async def pxebs(ctx: Context, opts: Parsed) -> None:
    from pyipxe.net.dhcp import interface_has_ipv4, pxe_boot_server_discovery
    from pyipxe.net.netconfig import settings_config
    from pyipxe.settings.builtin import host_buildarch
    from pyipxe.settings.dhcp import identity_from_settings, pxebs_parameters, register_pxebs

    device = parse_netdev(ctx, opts.args[0])
    pxe_type = parse_integer(opts.args[1], ctx.console)
    config = settings_config(device)
    ciaddr = config.address if config is not None else IPv4Address(0)
    control, multicast, servers = pxebs_parameters(ctx.settings)
    dhcp_block = device.block.child("dhcp")
    identity = identity_from_settings(ctx.settings, device.block, device.mac, platform=ctx.platform,
                                      buildarch=host_buildarch(), broadcast=interface_has_ipv4(device.ifname))
    job = pxe_boot_server_discovery(device.ifname, device.ifindex, device.mac, identity, pxe_type & 0xFFFF,
                                    ciaddr=ciaddr, control=control, multicast=multicast, servers=servers,
                                    ack=getattr(dhcp_block, "packet", None), log=_log_verbose(ctx))
    with ctx.reporting(f"discover boot server on {device.name}"):
        lease = await monojob(ctx, f"PXEBS ({device.name} type {pxe_type})", job)
    if lease.pxebs is not None:
        register_pxebs(ctx.settings, lease.pxebs)
