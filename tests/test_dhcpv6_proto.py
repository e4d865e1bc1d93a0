"""The sans-IO DHCPv6 client and router discovery: bytes against a capture of the real iPXE,
the state machines on a fake clock, iPXE's settings blocks and routing table, and fuzzing of
every parser that reads network input."""

from __future__ import annotations

import contextlib
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.errors import IpxeError, describe
from pyipxe.proto.dhcp import Failed, SetTimer, TimerExpired
from pyipxe.proto.dhcpv6 import (
    ERR_NO_ADDRESSES,
    ERR_TIMED_OUT,
    Bound,
    Dhcpv6Client,
    Dhcpv6FormatError,
    Dhcpv6Identity,
    Dhcpv6Lease,
    MessageType,
    Option,
    Received,
    Transmit,
    duid_ll,
    duid_uuid,
    encode_options,
    ia_address,
    iaid_of,
    parse_message,
)
from pyipxe.proto.ndp import (
    NdpFormatError,
    RaReceived,
    RouterDiscovery,
    RouterFound,
    RsTransmit,
    build_router_solicitation,
    eui64_address,
    parse_router_advertisement,
)
from pyipxe.settings.dhcpv6 import (
    LinkLocalBlock,
    ipv6_routes,
    register_dhcpv6,
    register_link_local,
    register_router_advertisement,
)
from pyipxe.settings.store import SettingsBlock, SettingsTree

FIXTURES = Path(__file__).parent / "fixtures" / "ipv6"
REAL_MAC = bytes.fromhex("525400123457")
REAL_XID = bytes.fromhex("5df9a4")
ROUTER = IPv6Address("fd77::1")  # the capture's router advertised from its global address
REAL_IDENTITY = Dhcpv6Identity(duid_uuid(bytes(16)), iaid_of(REAL_MAC))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def transmits(outputs: list[object]) -> list[bytes]:
    return [out.payload for out in outputs if isinstance(out, Transmit)]


def timer(outputs: list[object]) -> SetTimer:
    found = [out for out in outputs if isinstance(out, SetTimer)]
    assert len(found) == 1
    return found[0]


# -- codec against the real iPXE ----------------------------------------------------------------


def test_iaid_is_ipxe_crc32_le_of_the_mac() -> None:
    assert iaid_of(REAL_MAC) == 3713171529  # as dnsmasq logged it for the real iPXE


def test_solicit_and_request_are_byte_for_byte_ipxe() -> None:
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=True)
    out = machine.start(100.0)
    assert transmits(out) == [fixture("real-solicit.bin")]
    out = machine.handle(Received(fixture("dnsmasq-advertise.bin"), ROUTER), 100.05)
    assert transmits(out) == [fixture("real-request.bin")]  # elapsed time 5 cs, as captured
    out = machine.handle(Received(fixture("dnsmasq-reply.bin"), ROUTER), 100.06)
    [bound] = [o for o in out if isinstance(o, Bound)]
    assert bound.lease.address == IPv6Address("fd77::1cd")
    assert bound.lease.bootfile_url == "tftp://[fd77::1]/boot.efi"
    assert bound.lease.dns_servers == [IPv6Address("fd77::53")]
    assert machine.stats.sent == 2 and machine.stats.malformed == machine.stats.foreign == 0


def test_message_round_trip_and_option_order() -> None:
    message = parse_message(fixture("real-solicit.bin"))
    assert message.type == MessageType.SOLICIT and message.xid == REAL_XID
    assert [code for code, _ in message.options] == [1, 3, 6, 16, 61, 62, 15, 8]
    assert message.option(Option.ORO) == bytes.fromhex("00170018003b003c")
    assert message.encode() == fixture("real-solicit.bin")


def test_duid_ll_fallback() -> None:
    assert duid_ll(REAL_MAC) == bytes.fromhex("00030001") + REAL_MAC


# -- the state machine on a fake clock ----------------------------------------------------------


def advertise(status: int | None = None, ia_status: int | None = None, iaid: int | None = None,
              xid: bytes = REAL_XID, duid: bytes = REAL_IDENTITY.duid, server: bytes | None = b"\x00\x03srv",
              msgtype: int = MessageType.ADVERTISE) -> bytes:
    iaaddr = IPv6Address("fd77::42").packed + bytes(8)
    ia_opts = [(Option.IAADDR, iaaddr)]
    if ia_status is not None:
        ia_opts = [(Option.STATUS_CODE, ia_status.to_bytes(2, "big"))]
    ia = (iaid if iaid is not None else REAL_IDENTITY.iaid).to_bytes(4, "big") + bytes(8) + encode_options(ia_opts)
    options: list[tuple[int, bytes]] = [(Option.CLIENT_ID, duid)]
    if server is not None:
        options.append((Option.SERVER_ID, server))
    options.append((Option.IA_NA, ia))
    if status is not None:
        options.append((Option.STATUS_CODE, status.to_bytes(2, "big") + b"text"))
    return bytes((msgtype,)) + xid + encode_options(options)


def run_out(machine: Dhcpv6Client, start: float = 0.0) -> tuple[list[float], list[object]]:
    """Fire the timer until the machine ends; the send times and the final outputs."""
    now = start
    out: list[object] = list(machine.start(now))
    sends = [now] if transmits(out) else []
    while True:
        pending = [o for o in out if isinstance(o, SetTimer)]
        if not pending:
            return sends, out
        now += pending[0].seconds
        out = list(machine.handle(TimerExpired(pending[0].token), now))
        if transmits(out):
            sends.append(now)


def test_retransmission_schedule_is_ipxe_default_timer() -> None:
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=False)
    sends, out = run_out(machine)
    assert sends == [0.0, 0.25, 0.75, 1.75, 3.75, 7.75]
    [failed] = out
    assert isinstance(failed, Failed) and failed.error.site is ERR_TIMED_OUT
    assert describe(failed.error.code("pcbios"), "pcbios") == "Connection timed out"
    assert f"{failed.error.code('pcbios'):08x}" == "4c3b6035"


def test_no_addresses_available_becomes_the_failure() -> None:
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=True)
    machine.start(0.0)
    assert machine.handle(Received(advertise(status=2), ROUTER), 0.1) == []
    assert machine.stats.ignored == 1
    _, out = run_out_from(machine, 0.1)
    [failed] = out
    assert isinstance(failed, Failed) and failed.error.site is ERR_NO_ADDRESSES
    assert f"{failed.error.code('pcbios'):08x}" == "433b6201"  # as the real build printed it
    assert describe(failed.error.code("pcbios"), "pcbios") == "No addresses available"


def run_out_from(machine: Dhcpv6Client, now: float) -> tuple[list[float], list[object]]:
    token = machine._timer.token  # the live timer, as the driver would hold it
    out: list[object] = list(machine.handle(TimerExpired(token), now))
    sends: list[float] = []
    while True:
        pending = [o for o in out if isinstance(o, SetTimer)]
        if not pending:
            return sends, out
        now += pending[0].seconds
        out = list(machine.handle(TimerExpired(pending[0].token), now))
        if transmits(out):
            sends.append(now)


def test_ia_status_wrong_iaid_foreign_and_wrong_type_are_not_taken() -> None:
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=True)
    machine.start(0.0)
    for packet in (advertise(ia_status=2), advertise(iaid=1), advertise(server=None),
                   advertise(msgtype=MessageType.REPLY)):
        assert machine.handle(Received(packet, ROUTER), 0.1) == []
    for packet in (advertise(xid=b"\x00\x00\x01"), advertise(duid=duid_ll(REAL_MAC))):
        assert machine.handle(Received(packet, ROUTER), 0.1) == []
    assert machine.stats.foreign == 2 and machine.stats.ignored == 4
    out = machine.handle(Received(advertise(), ROUTER), 0.2)
    [request] = transmits(out)
    message = parse_message(request)
    assert message.type == MessageType.REQUEST and message.option(Option.SERVER_ID) == b"\x00\x03srv"
    # REQUEST: the server id is now checked
    reply = advertise(msgtype=MessageType.REPLY, server=b"\x00\x03other")
    assert machine.handle(Received(reply, ROUTER), 0.3) == [] and machine.stats.foreign == 3


def test_stateless_information_request() -> None:
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=False)
    [request] = transmits(machine.start(0.0))
    message = parse_message(request)
    assert message.type == MessageType.INFORMATION_REQUEST and message.option(Option.IA_NA) is None
    reply = bytes((MessageType.REPLY,)) + REAL_XID + encode_options(
        [(Option.CLIENT_ID, REAL_IDENTITY.duid), (Option.SERVER_ID, b"s"), (Option.BOOTFILE_URL, b"http://x/y")])
    [bound] = machine.handle(Received(reply, ROUTER), 0.5)
    assert isinstance(bound, Bound) and bound.lease.address is None and bound.lease.bootfile_url == "http://x/y"


def test_broken_corpus_is_dropped_and_counted() -> None:
    broken = sorted((FIXTURES / "broken").iterdir())
    assert broken
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=True)
    machine.start(0.0)
    discovery = RouterDiscovery(REAL_MAC)
    discovery.start(0.0)
    for path in broken:
        data = path.read_bytes()
        assert machine.handle(Received(data, ROUTER), 0.1) == []
        if path.name.startswith("ra-"):
            assert discovery.handle(RaReceived(data, ROUTER, 255), 0.1) == []
    assert machine.stats.malformed + machine.stats.foreign + machine.stats.ignored == len(broken)
    assert discovery.stats.malformed == len([p for p in broken if p.name.startswith("ra-")])
    assert machine.state is not None and machine.state.name == "SOLICIT" and not discovery.done


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_dhcpv6_parsers_never_raise_unexpectedly(data: bytes) -> None:
    try:
        message = parse_message(data)
    except Dhcpv6FormatError:
        message = None
    if message is not None:
        found = ia_address(message.options, REAL_IDENTITY.iaid)
        assert isinstance(found, IPv6Address) or found is not None
    machine = Dhcpv6Client(REAL_IDENTITY, REAL_XID, stateful=True)
    machine.start(0.0)
    for prefix in (b"", bytes((MessageType.ADVERTISE,)) + REAL_XID):
        out = machine.handle(Received(prefix + data, ROUTER), 0.1)
        assert all(isinstance(o, Transmit | SetTimer) for o in out)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 255))
def test_ra_parser_never_raises_unexpectedly(data: bytes, hop_limit: int) -> None:
    for payload in (data, fixture("dnsmasq-ra.bin")[:16] + data):
        with contextlib.suppress(NdpFormatError):
            parse_router_advertisement(payload, ROUTER)
        machine = RouterDiscovery(REAL_MAC)
        machine.start(0.0)
        out = machine.handle(RaReceived(payload, ROUTER, hop_limit), 0.1)
        assert all(isinstance(o, RouterFound) for o in out)


# -- router discovery ------------------------------------------------------------------------


def test_router_solicitation_and_schedule() -> None:
    assert build_router_solicitation(REAL_MAC) == bytes.fromhex("8500000000000000") + bytes.fromhex("0101") + REAL_MAC
    machine = RouterDiscovery(REAL_MAC)
    now, out = 0.0, machine.start(0.0)
    sends = []
    while not any(isinstance(o, Failed) for o in out):
        if any(isinstance(o, RsTransmit) for o in out):
            sends.append(now)
        pending = timer(out)
        now += pending.seconds
        out = machine.handle(TimerExpired(pending.token), now)
    assert sends == [0.0, 0.25, 0.75, 1.75, 3.75, 7.75] and now == 15.75
    [failed] = out
    assert isinstance(failed, Failed) and f"{failed.error.code('pcbios'):08x}" == "4c076035"  # real iPXE's number


def test_router_advertisement_from_dnsmasq() -> None:
    machine = RouterDiscovery(REAL_MAC)
    machine.start(0.0)
    assert machine.handle(RaReceived(fixture("dnsmasq-ra.bin"), ROUTER, 64), 0.1) == []  # routed: not on-link
    [found] = machine.handle(RaReceived(fixture("dnsmasq-ra.bin"), ROUTER, 255), 0.1)
    assert isinstance(found, RouterFound)
    ra = found.advertisement
    assert ra.managed and ra.other and ra.lifetime == 1800
    [prefix] = ra.prefixes
    assert (str(prefix.prefix), prefix.length, prefix.on_link, prefix.autonomous) == ("fd77::", 64, True, False)
    assert ra.dns_servers == [IPv6Address("fd77::53")]
    assert machine.handle(RaReceived(fixture("dnsmasq-ra.bin"), ROUTER, 255), 0.2) == []  # only the first
    assert str(eui64_address(IPv6Address("fd77::"), REAL_MAC)) == "fd77::5054:ff:fe12:3457"


# -- settings blocks and iPXE's routing table -----------------------------------------------------


def tree_with_device() -> tuple[SettingsTree, SettingsBlock]:
    tree = SettingsTree()
    device = tree.root.register(SettingsBlock("net1"))
    register_link_local(device, lambda: REAL_MAC)
    return tree, device


def fetch(tree: SettingsTree, name: str) -> str:
    return tree.fetch_text(name)


def test_stateful_settings_and_route_match_the_real_build() -> None:
    tree, device = tree_with_device()
    ra = parse_router_advertisement(fixture("dnsmasq-ra.bin"), ROUTER)
    register_router_advertisement(tree, device, ra, lambda: REAL_MAC)
    assert [route.text() for route in ipv6_routes(device)] == [
        "fe80::5054:ff:fe12:3457/64", f"fd77::/64 gw {ROUTER} (no address)"]  # as real iPXE on NoAddrsAvail
    reply = parse_message(fixture("dnsmasq-reply.bin"))
    register_dhcpv6(tree, device, Dhcpv6Lease(reply.options, IPv6Address("fd77::1cd")))
    assert [child.name for child in device.children] == ["dhcpv6", "link", "ndp"]
    # The values and origins real iPXE printed for the same exchange:
    assert (fetch(tree, "ip6"), fetch(tree, "len6"), fetch(tree, "gateway6")) == ("fd77::1cd", "64", "fd77::1")
    assert (fetch(tree, "dns6"), fetch(tree, "dnssl"), fetch(tree, "filename")) == (
        "fd77::53", "lab.test", "tftp://[fd77::1]/boot.efi")
    assert fetch(tree, "net1.dhcpv6/len6") == ""
    assert fetch(tree, "net1.dhcpv6/59") == "tftp://[fd77::1]/boot.efi"
    assert (fetch(tree, "net1.ndp/dns6"), fetch(tree, "net1.ndp/dnssl")) == ("fd77::53", "lab.test")
    assert (fetch(tree, "net1.ndp.0/ip6"), fetch(tree, "net1.ndp.0/len6")) == ("fd77::", "64")
    assert fetch(tree, "net1.ndp/25") == "19:03:00:00:00:00:0e:10:fd:77:00:00:00:00:00:00:00:00:00:00:00:00:00:53"
    found = tree.fetch(tree.parse_name("filename")[1])
    assert found is not None and found.display_name() == "net1.dhcpv6/filename:string"
    assert [route.text() for route in ipv6_routes(device)] == [
        f"fd77::1cd/64 gw {ROUTER}", "fe80::5054:ff:fe12:3457/64"]
    with pytest.raises(IpxeError):
        tree.store(*tree.parse_name("net1.dhcpv6/ip6"), b"\x00" * 16)


def test_slaac_prefix_orders_before_link_local() -> None:
    tree, device = tree_with_device()
    ra = fixture("dnsmasq-ra.bin")
    autonomous = ra[:5] + b"\x40" + ra[6:16 + 3] + b"\xc0" + ra[20:]  # O only; prefix L+A
    register_router_advertisement(tree, device, parse_router_advertisement(autonomous, ROUTER), lambda: REAL_MAC)
    assert [child.name for child in device.children] == ["ndp", "link"]
    assert fetch(tree, "ip6") == "fd77::5054:ff:fe12:3457"
    assert [route.text() for route in ipv6_routes(device)] == [
        f"fd77::5054:ff:fe12:3457/64 gw {ROUTER}", "fe80::5054:ff:fe12:3457/64"]


def test_link_local_block_alone() -> None:
    tree, device = tree_with_device()
    assert isinstance(device.child("link"), LinkLocalBlock)
    assert (fetch(tree, "ip6"), fetch(tree, "len6"), fetch(tree, "gateway6")) == ("fe80::5054:ff:fe12:3457", "64", "")
    assert [route.text() for route in ipv6_routes(device)] == ["fe80::5054:ff:fe12:3457/64"]
