"""The sans-IO DHCP client: codec, iPXE's packet layout, timer schedule, offer rules, ProxyDHCP, pxebs."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.proto.dhcp import (
    Bound,
    DhcpClient,
    Failed,
    Output,
    Phase,
    PxeBootServerDiscovery,
    Received,
    SetTimer,
    TimerExpired,
    Transmit,
    pxebs_targets,
)
from pyipxe.proto.dhcp_packet import (
    BOOTPS_PORT,
    PXE_PORT,
    DhcpFormatError,
    DhcpIdentity,
    DhcpPacket,
    MessageType,
    encode_options,
    parse_packet,
    uuid_mangle,
)

MAC = bytes.fromhex("525400123456")
XID = 0x12345678
SERVER = IPv4Address("10.0.0.1")
PROXY = IPv4Address("10.0.0.9")
UUID = bytes.fromhex("36d22ed9b64f4fdb941ba54a0854f991")
CORPUS = Path(__file__).parent / "fixtures" / "dhcp" / "broken"


def ident(**kw: object) -> DhcpIdentity:
    base: dict[str, object] = {"busid": bytes.fromhex("011af41000")}
    base.update(kw)
    return DhcpIdentity.for_platform(MAC, "pcbios", "i386", **base)  # type: ignore[arg-type]


def reply(msgtype: int | None, *, yiaddr: str = "10.0.0.50", server: IPv4Address | None = SERVER,
          siaddr: str = "0.0.0.0", file: bytes = b"", options: list[tuple[int, bytes]] | None = None,
          xid: int = XID, chaddr: bytes = MAC) -> bytes:
    opts: list[tuple[int, bytes]] = []
    if msgtype is not None:
        opts.append((53, bytes([msgtype])))
    if server is not None:
        opts.append((54, server.packed))
    opts += options or []
    return DhcpPacket(op=2, xid=xid, yiaddr=IPv4Address(yiaddr), siaddr=IPv4Address(siaddr), chaddr=chaddr,
                      file=file, options=tuple(opts)).encode()


class Clock:
    """Drives a machine through its own timers, recording every transmission with its time."""

    def __init__(self, machine: DhcpClient | PxeBootServerDiscovery) -> None:
        self.machine = machine
        self.now = 0.0
        self.timer: SetTimer | None = None
        self.timer_at = 0.0
        self.sent: list[tuple[float, Transmit]] = []
        self.result: Bound | Failed | None = None

    def take(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Transmit):
                self.sent.append((round(self.now, 3), out))
            elif isinstance(out, SetTimer):
                self.timer, self.timer_at = out, self.now + out.seconds
            else:
                self.result = out

    def start(self) -> Clock:
        self.take(self.machine.start(self.now))
        return self

    def advance(self, until: float) -> None:
        """Fire timers due before ``until``, then set the clock to ``until``."""
        while self.result is None and self.timer is not None and self.timer_at <= until + 1e-9:
            self.now = self.timer_at
            token, self.timer = self.timer.token, None
            self.take(self.machine.handle(TimerExpired(token), self.now))
        if self.result is None:
            self.now = max(self.now, until)

    def receive(self, payload: bytes, source: IPv4Address = SERVER, port: int = BOOTPS_PORT) -> None:
        self.take(self.machine.handle(Received(payload, source, port), self.now))

    def packets(self) -> list[tuple[float, DhcpPacket]]:
        return [(t, parse_packet(out.payload)) for t, out in self.sent]


# ---- layout -------------------------------------------------------------------------------------


def expected_discover_options() -> bytes:
    """Reference §5.1, written out by hand for a BIOS x86 client with a UUID."""
    features = b"".join(bytes((code, 1, 1)) for code in (0x17, 0x13, 0x14, 0x11, 0x27, 0x29, 0x15, 0x16, 0x18,
                                                            0x26, 0x12))
    eb = bytes((0xB1, 5)) + bytes.fromhex("011af41000") + bytes((0xEB, 3, 2, 0, 0)) + features
    prl = bytes([1, 3, 6, 7, 12, 15, 17, 26, 42, 43, 60, 66, 67, 119, 121, 128, 129, 130, 131, 132, 133, 134,
                 135, 175, 203])
    vci = b"PXEClient:Arch:00000:UNDI:002001"
    uuid_le = bytes.fromhex("d92ed2364fb6db4f941ba54a0854f991")
    return (bytes((53, 1, 1)) + bytes((57, 2, 0x05, 0xC0)) + bytes((93, 2, 0, 0)) + bytes((94, 3, 1, 2, 1))
            + bytes((60, len(vci))) + vci + bytes((77, 4)) + b"iPXE" + bytes((55, len(prl))) + prl
            + bytes((175, len(eb))) + eb + bytes((61, 7, 1)) + MAC + bytes((97, 17, 0)) + uuid_le + b"\xff")


def test_discover_is_ipxes_layout_byte_for_byte() -> None:
    clock = Clock(DhcpClient(ident(uuid=UUID), XID)).start()
    (when, out), = clock.sent
    assert (when, out.dest_ip, out.dest_port, out.source_ip) == (0.0, IPv4Address("255.255.255.255"), 67,
                                                                 IPv4Address(0))
    data = out.payload
    header = bytes((1, 1, 6, 0)) + XID.to_bytes(4, "big") + (1 << 2).to_bytes(2, "big") + b"\0\0"
    assert data[:12] == header  # op, htype, hlen, hops, xid, secs = first transmission, flags 0
    assert data[12:28] == bytes(16)  # ciaddr, yiaddr, siaddr, giaddr
    assert data[28:44] == MAC + bytes(10)
    assert data[44:236] == bytes(192)  # sname, file
    assert data[236:240] == b"\x63\x82\x53\x63"
    assert data[240:] == expected_discover_options()
    assert len(data) == 240 + len(expected_discover_options())  # not padded


REAL_FEATURES = (0x17, 0x22, 0x13, 0x11, 0x27, 0x19, 0x29, 0x10, 0x21, 0x15, 0x18, 0x1B, 0x12)


def test_same_bytes_as_real_ipxe() -> None:
    """A DISCOVER and REQUEST of real iPXE (Debian's 2019 ipxe.lkrn in QEMU, SMBIOS UUID set), captured with
    QEMU's filter-dump: given that build's identity, pyipxe's packets are identical apart from the xid.

    That build predates options 42 and 121 in its request list; everything else is the same code path."""
    real = (Path(__file__).parent / "fixtures" / "dhcp" / "real-ipxe-2019-pcbios-discover.bin").read_bytes()
    real_request = (Path(__file__).parent / "fixtures" / "dhcp" / "real-ipxe-2019-pcbios-request.bin").read_bytes()
    xid = int.from_bytes(real[4:8], "big")
    identity = DhcpIdentity.for_platform(MAC, "pcbios", "i386", uuid=UUID, busid=bytes.fromhex("011af41000"))
    identity = replace(identity, features=REAL_FEATURES, version=(1, 0, 0))
    old_list = bytes([1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, *range(128, 136), 175, 203])
    with patch("pyipxe.proto.dhcp_packet.PARAMETER_REQUEST_LIST", old_list):
        clock = Clock(DhcpClient(identity, xid)).start()
        clock.advance(0.5)
        clock.receive(reply(2, yiaddr="10.0.2.15", server=IPv4Address("10.0.2.2"), xid=xid),
                      source=IPv4Address("10.0.2.2"))
        clock.advance(3)
    assert clock.sent[0][1].payload == real
    assert clock.sent[2][1].payload == real_request  # at 3 s, secs 18: 4 transmissions, offer seen


def test_efi_and_linux_platforms_claim_efi_architecture() -> None:
    efi = DhcpIdentity.for_platform(MAC, "efi", "x86_64")
    linux = DhcpIdentity.for_platform(MAC, "linux", "arm64")
    packet = parse_packet(Clock(DhcpClient(efi, XID)).start().sent[0][1].payload)
    assert packet.option(93) == b"\x00\x07" and packet.option(94) == b"\x01\x03\x0a"
    assert packet.option(60) == b"PXEClient:Arch:00007:UNDI:003010"
    assert linux.arch == 0x0B
    assert packet.option(97) is None  # no UUID, no option 97


def test_user_and_vendor_class_replace_defaults_in_place() -> None:
    packet = parse_packet(Clock(DhcpClient(ident(user_class=b"mine", vendor_class=b"vend"), XID)).start()
                          .sent[0][1].payload)
    tags = [tag for tag, _ in packet.options]
    assert tags[:7] == [53, 57, 93, 94, 60, 77, 55]
    assert packet.option(77) == b"mine" and packet.option(60) == b"vend"


def test_uuid_mangle_swaps_first_three_fields() -> None:
    assert uuid_mangle(UUID).hex() == "d92ed2364fb6db4f941ba54a0854f991"


def test_broadcast_flag_when_asked() -> None:
    packet = parse_packet(Clock(DhcpClient(ident(broadcast=True), XID)).start().sent[0][1].payload)
    assert packet.flags == 0x8000


# ---- codec ----------------------------------------------------------------------------------------


def test_round_trip_and_encapsulated_lookup() -> None:
    packet = DhcpPacket(op=2, xid=7, yiaddr=IPv4Address("1.2.3.4"), siaddr=IPv4Address("5.6.7.8"), chaddr=MAC,
                        sname=b"srv", file=b"boot.0",
                        options=((53, b"\x05"), (175, bytes((1, 1, 0xFF, 8, 1, 1))), (43, b"\x06\x01\x08"),
                                 (224, b"x")))
    again = parse_packet(packet.encode())
    assert again.options == packet.options
    assert again.option(0xAF01) == b"\xff" and again.option(0xAF08) == b"\x01" and again.option(0x2B06) == b"\x08"
    assert again.fetch(0xAF02) == IPv4Address("1.2.3.4").packed  # yiaddr = 175.2
    assert again.fetch(0xAF03) == IPv4Address("5.6.7.8").packed  # siaddr = 175.3
    assert again.fetch(66) == b"srv" and again.fetch(67) == b"boot.0"
    assert again.message_type == MessageType.ACK


def test_fixed_field_wins_only_when_non_empty() -> None:
    with_file = parse_packet(reply(5, file=b"fixed", options=[(67, b"option")]))
    without = parse_packet(reply(5, options=[(67, b"option")]))
    assert with_file.fetch(67) == b"fixed" and without.fetch(67) == b"option"


def test_pad_options_skipped_and_end_stops() -> None:
    data = DhcpPacket(op=2).encode()[:240] + b"\x00\x00" + bytes((53, 1, 2)) + b"\xff" + bytes((54, 4, 1, 2, 3, 4))
    assert parse_packet(data).options == ((53, b"\x02"),)


def test_plain_bootp_without_cookie() -> None:
    data = DhcpPacket(op=2, yiaddr=IPv4Address("10.0.0.5")).encode()[:236] + bytes(64)
    packet = parse_packet(data)
    assert packet.options == () and packet.message_type == MessageType.BOOTP


@pytest.mark.parametrize("data, why", [
    (b"", "shorter"), (bytes(235), "shorter"), (bytes([3]) + bytes(299), "op"),
    (bytes([2, 1, 17]) + bytes(297), "hlen"), (bytes([2]) + bytes(20000), "oversized"),
])
def test_bad_packets_raise_format_error(data: bytes, why: str) -> None:
    with pytest.raises(DhcpFormatError, match=why):
        parse_packet(data)


def test_truncated_option_is_malformed() -> None:
    data = DhcpPacket(op=2).encode()[:240] + bytes((67, 10)) + b"abc"
    with pytest.raises(DhcpFormatError, match="truncated"):
        parse_packet(data)


def test_broken_corpus_never_crashes_or_binds() -> None:
    files = sorted(CORPUS.glob("*.bin"))
    assert len(files) >= 10
    for path in files:
        data = path.read_bytes()
        with contextlib.suppress(DhcpFormatError):
            parse_packet(data)
        clock = Clock(DhcpClient(ident(), XID)).start()
        clock.receive(data)
        clock.advance(1.5)
        clock.receive(data, port=PXE_PORT)
        assert clock.result is None, path.name
        assert clock.machine.phase is Phase.DISCOVER


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_fuzz_parser_only_raises_format_error(data: bytes) -> None:
    try:
        packet = parse_packet(data)
    except DhcpFormatError:
        return
    for tag in (53, 54, 67, 0xAF01, 0x2B09, 0xFFFF):
        packet.option(tag)
        packet.fetch(tag)


_option = st.tuples(st.integers(1, 254), st.binary(max_size=40))


@settings(max_examples=200, deadline=None)
@given(st.lists(_option, max_size=12), st.integers(0, 2**32 - 1), st.binary(max_size=64), st.binary(max_size=128))
def test_fuzz_round_trip(options: list[tuple[int, bytes]], xid: int, sname: bytes, file: bytes) -> None:
    packet = DhcpPacket(op=2, xid=xid, chaddr=MAC.ljust(16, b"\0"), sname=sname.ljust(64, b"\0"),
                        file=file.ljust(128, b"\0"), options=tuple(options))
    assert parse_packet(packet.encode()) == packet


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_replies_never_crash(data: st.DataObject) -> None:
    good = bytearray(reply(2, options=[(175, bytes((1, 1, 5))), (60, b"PXEClient"), (43, b"\x09\x05\x00\x01\x02ab")]))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(good) - 1))
        good[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    payload = bytes(good[:cut])
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(payload, port=data.draw(st.sampled_from([67, 4011, 68])))
    clock.advance(20)
    stats = clock.machine.stats
    assert stats.received == 1


# ---- the schedule ---------------------------------------------------------------------------------


def test_discover_schedule_and_timeout() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.advance(30)
    assert [t for t, _ in clock.sent] == [0.0, 1.0, 3.0, 7.0]
    assert isinstance(clock.result, Failed) and clock.now == 15.0
    assert clock.result.error.code("pcbios") == 0x4C106035
    assert [p.secs for _, p in clock.packets()] == [4, 8, 12, 16]  # transmissions << 2


def test_offer_waits_for_proxy_then_requests_at_three_seconds() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.now = 0.1
    clock.receive(reply(2))
    assert len(clock.sent) == 1  # still waiting for ProxyDHCP offers
    clock.advance(40)
    times = [t for t, _ in clock.sent]
    types = [p.message_type for _, p in clock.packets()]
    assert times == [0.0, 1.0, 3.0, 3.25, 3.75, 4.75, 6.75, 10.75]
    assert types == [MessageType.DISCOVER] * 2 + [MessageType.REQUEST] * 6
    assert isinstance(clock.result, Failed) and clock.now == 18.75  # REQUEST gave up after 15.75 s
    requests = [p for _, p in clock.packets()][2:]
    assert requests[0].option(54) == SERVER.packed and requests[0].option(50) == IPv4Address("10.0.0.50").packed
    assert [t for t, _ in requests[0].options][-2:] == [54, 50]
    assert clock.packets()[1][1].secs == (2 << 2) | 2  # second DISCOVER: an offer was seen


def test_late_offer_requests_at_once() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.advance(2.5)
    clock.receive(reply(2))
    assert clock.packets()[-1][1].message_type == MessageType.REQUEST and clock.sent[-1][0] == 2.5


def test_no_pxedhcp_requests_at_once_and_skips_proxy() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2, options=[(175, bytes((0xB0, 1, 1)))]))
    assert clock.packets()[-1][1].message_type == MessageType.REQUEST
    clock.receive(reply(2, server=PROXY, yiaddr="0.0.0.0", options=[(60, b"PXEClient")]), source=PROXY)
    clock.receive(reply(5))
    assert isinstance(clock.result, Bound) and clock.result.lease.proxy is None


def test_higher_priority_wins_and_equal_priority_later_wins() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2, yiaddr="10.0.0.60", server=IPv4Address("10.0.0.2"), options=[(175, bytes((1, 1, 5)))]),
                  source=IPv4Address("10.0.0.2"))
    clock.receive(reply(2, yiaddr="10.0.0.61"))  # priority 0 < 5: ignored
    clock.receive(reply(2, yiaddr="10.0.0.62", server=IPv4Address("10.0.0.3"), options=[(175, bytes((1, 1, 5)))]),
                  source=IPv4Address("10.0.0.3"))  # equal: replaces
    clock.advance(3)
    request = clock.packets()[-1][1]
    assert request.option(50) == IPv4Address("10.0.0.62").packed and request.option(54) == IPv4Address("10.0.0.3").packed


def test_negative_priority_loses_to_default() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2, yiaddr="10.0.0.60", options=[(175, bytes((1, 1, 0xFF)))]))
    assert clock.machine.offer_ip == IPv4Address(0)  # -1 < 0: never selected


def test_offers_from_wrong_port_or_without_address_are_ignored() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2), port=PXE_PORT)
    clock.receive(reply(2, yiaddr="0.0.0.0"))
    clock.receive(reply(5))  # an ACK is not an offer
    assert clock.machine.offer_ip == IPv4Address(0) and clock.machine.stats.ignored == 3


def test_foreign_xid_and_chaddr_dropped_and_counted() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2, xid=XID + 1))
    clock.receive(reply(2, chaddr=bytes(6)))
    clock.receive(b"\x02garbage")
    stats = clock.machine.stats
    assert (stats.foreign, stats.malformed, stats.offers) == (2, 1, 0)


def test_nak_restarts_discovery() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.advance(2.5)
    clock.receive(reply(2))
    clock.receive(reply(6, yiaddr="0.0.0.0", server=IPv4Address("10.0.0.99")))  # not our server: ignored
    assert clock.machine.phase is Phase.REQUEST
    clock.receive(reply(6, yiaddr="0.0.0.0"))
    assert clock.machine.phase is Phase.DISCOVER and clock.machine.stats.naks == 1
    assert clock.packets()[-1][1].message_type == MessageType.DISCOVER and clock.sent[-1][0] == 2.5
    clock.advance(3)
    clock.receive(reply(2, yiaddr="10.0.0.70"))
    clock.advance(6)
    clock.receive(reply(5, yiaddr="10.0.0.70"))
    assert isinstance(clock.result, Bound) and clock.result.lease.address == IPv4Address("10.0.0.70")


def test_ack_for_another_address_is_ignored() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.advance(2.5)
    clock.receive(reply(2))
    clock.receive(reply(5, yiaddr="10.0.0.51"))
    assert clock.result is None
    clock.receive(reply(0, server=SERVER))  # plain BOOTP-style reply (no 53) for the offered address
    assert isinstance(clock.result, Bound)


# ---- ProxyDHCP ------------------------------------------------------------------------------------


def proxy_offer(**kw: object) -> bytes:
    return reply(2, yiaddr="0.0.0.0", server=PROXY, **kw)  # type: ignore[arg-type]


def test_proxy_offer_with_pxe_data_is_merged_without_request() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2))
    assert clock.machine.phase is Phase.DISCOVER
    clock.receive(proxy_offer(siaddr="10.0.0.9", file=b"pxe.0", options=[(60, b"PXEClient")]), source=PROXY)
    assert clock.machine.phase is Phase.REQUEST  # a PXE candidate ends the 2 s wait
    assert clock.packets()[-1][1].secs == (2 << 2) | 3
    clock.receive(reply(5))
    assert isinstance(clock.result, Bound)
    lease = clock.result.lease
    assert lease.proxy is not None and lease.proxy.fetch(67) == b"pxe.0" and lease.ack.yiaddr == IPv4Address("10.0.0.50")


def test_proxy_offer_without_pxe_data_asks_port_4011() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(proxy_offer(options=[(60, b"PXEClient")]), source=PROXY)
    clock.receive(reply(2))
    clock.receive(reply(5))
    assert clock.machine.phase is Phase.PROXY
    _when, out = clock.sent[-1]
    packet = parse_packet(out.payload)
    assert (out.dest_ip, out.dest_port, out.source_ip) == (PROXY, PXE_PORT, IPv4Address("10.0.0.50"))
    assert packet.ciaddr == IPv4Address("10.0.0.50") and packet.option(54) == PROXY.packed
    assert packet.option(50) is None and packet.message_type == MessageType.REQUEST
    clock.receive(reply(5, yiaddr="0.0.0.0", server=PROXY, siaddr="10.0.0.9", file=b"x"), source=PROXY)  # from :67
    assert clock.result is None
    clock.receive(reply(5, yiaddr="0.0.0.0", server=PROXY, siaddr="10.0.0.9", file=b"boot.efi",
                        options=[(60, b"PXEClient")]), source=PROXY, port=PXE_PORT)
    assert isinstance(clock.result, Bound) and clock.result.lease.proxy is not None
    assert clock.result.lease.proxy.fetch(67) == b"boot.efi"


def test_silent_proxy_finishes_successfully_after_two_seconds() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(proxy_offer(options=[(60, b"PXEClient")]), source=PROXY)
    clock.receive(reply(2))
    clock.receive(reply(5))
    clock.advance(10)
    assert [t for t, _ in clock.sent][-4:] == [0.0, 0.25, 0.75, 1.75]
    assert isinstance(clock.result, Bound) and clock.result.lease.proxy is None and clock.now == 3.75


def test_proxy_candidate_addressed_by_siaddr_then_source() -> None:
    clock = Clock(DhcpClient(ident(), XID)).start()
    clock.receive(reply(2, yiaddr="0.0.0.0", server=None, siaddr="10.0.0.8", options=[(60, b"PXEClient")]),
                  source=PROXY)
    assert clock.machine.proxy_server == IPv4Address("10.0.0.8")
    clock.receive(reply(2, yiaddr="0.0.0.0", server=None, options=[(60, b"PXEClient")]), source=PROXY)
    assert clock.machine.proxy_server == PROXY


# ---- PXE boot-server discovery ----------------------------------------------------------------------


def test_pxebs_targets_from_options() -> None:
    servers = b"\x01\x00\x02" + bytes([10, 0, 0, 5, 10, 0, 0, 6]) + b"\x02\x00\x01" + bytes([10, 0, 0, 7])
    attempt, accept = pxebs_targets(1, 0, IPv4Address("239.0.0.1"), servers)
    assert attempt == [IPv4Address(a) for a in ("239.0.0.1", "255.255.255.255", "10.0.0.5", "10.0.0.6")]
    assert accept is None
    attempt, accept = pxebs_targets(1, 1 | 2 | 4, IPv4Address("239.0.0.1"), servers + b"\x03")  # garbage tail
    assert attempt == [IPv4Address("10.0.0.5"), IPv4Address("10.0.0.6")] and accept == attempt


def test_pxebs_schedule_moves_on_and_times_out() -> None:
    machine = PxeBootServerDiscovery(ident(), XID, 1, IPv4Address("10.0.0.50"),
                                     [IPv4Address("255.255.255.255"), IPv4Address("10.0.0.5")], None)
    clock = Clock(machine).start()
    clock.advance(60)
    sent = [(t, out.dest_ip, out.dest_port) for t, out in clock.sent]
    assert sent == [(0.0, IPv4Address("255.255.255.255"), 67), (1.0, IPv4Address("255.255.255.255"), 67),
                    (3.0, IPv4Address("255.255.255.255"), 67), (7.0, IPv4Address("10.0.0.5"), 4011),
                    (8.0, IPv4Address("10.0.0.5"), 4011), (10.0, IPv4Address("10.0.0.5"), 4011)]
    assert isinstance(clock.result, Failed) and clock.now == 14.0
    packet = clock.packets()[0][1]
    assert packet.option(0x2B47) == b"\x01\x00\x00\x00" and packet.ciaddr == IPv4Address("10.0.0.50")
    assert packet.option(54) is None and packet.option(50) is None


def test_pxebs_accepts_matching_ack_from_listed_server() -> None:
    listed = IPv4Address("10.0.0.5")
    machine = PxeBootServerDiscovery(ident(), XID, 3, IPv4Address("10.0.0.50"), [listed], [listed])
    clock = Clock(machine).start()
    item = [(43, bytes((71, 4, 3, 0, 0, 0)))]
    clock.receive(reply(5, yiaddr="0.0.0.0", server=IPv4Address("10.0.0.6"), options=item), source=listed,
                  port=PXE_PORT)  # not a listed server id
    clock.receive(reply(5, yiaddr="0.0.0.0", server=listed, options=[(43, bytes((71, 4, 4, 0, 0, 0)))]),
                  source=listed, port=PXE_PORT)  # other type
    assert clock.result is None
    clock.receive(reply(5, yiaddr="0.0.0.0", server=listed, file=b"bs.0", options=item), source=listed,
                  port=PXE_PORT)
    assert isinstance(clock.result, Bound) and clock.result.lease.pxebs is not None


def test_pxebs_without_targets_fails_with_einval() -> None:
    clock = Clock(PxeBootServerDiscovery(ident(), XID, 1, IPv4Address(0), [], None)).start()
    assert isinstance(clock.result, Failed) and clock.result.error.code("pcbios") >> 24 == 0x1C


def test_encode_options_rejects_oversize() -> None:
    with pytest.raises(ValueError):
        encode_options([(60, bytes(256))])
