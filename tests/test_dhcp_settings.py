"""DHCP packets as settings: net0.dhcp, proxydhcp, pxebs; fixed fields vs options; X.Y tags; show."""

from __future__ import annotations

import asyncio
import io
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.console.output import Console
from pyipxe.errors import IpxeError
from pyipxe.proto.dhcp import DhcpLease
from pyipxe.proto.dhcp_packet import DhcpPacket, parse_packet
from pyipxe.runner import apply_preset
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter
from pyipxe.script.parser import parse_script
from pyipxe.settings import predefined as p
from pyipxe.settings.dhcp import (
    DhcpSettingsBlock,
    identity_from_settings,
    pxebs_parameters,
    register_lease,
    register_pxebs,
    unregister_lease,
)
from pyipxe.settings.store import Setting, SettingsBlock, SettingsTree

MAC = bytes.fromhex("525400123456")


def ack(**kw: object) -> DhcpPacket:
    options = (
        (53, b"\x05"), (54, bytes([10, 0, 0, 1])), (1, bytes([255, 255, 255, 0])), (3, bytes([10, 0, 0, 1])),
        (6, bytes([10, 0, 0, 2, 10, 0, 0, 3])), (15, b"example.test"), (17, b"iscsi:10.0.0.1::::iqn.x"),
        (51, (3600).to_bytes(4, "big")), (67, b"from-option"), (66, b"tftp.example"), (224, b"custom"),
        (175, bytes((1, 1, 3, 8, 1, 1, 0xBE, 5)) + b"alice"), (43, bytes((6, 1, 8, 9, 3, 0, 1, 1))),
    )
    base: dict[str, object] = {"op": 2, "xid": 1, "yiaddr": IPv4Address("10.0.0.50"), "siaddr": IPv4Address("10.0.0.5"),
                               "chaddr": MAC, "options": options}
    base.update(kw)
    return parse_packet(DhcpPacket(**base).encode())  # type: ignore[arg-type]


def make_context(lease: DhcpLease) -> Context:
    context = Context(console=Console(io.BytesIO(), tty=False))  # type: ignore[arg-type]
    apply_preset(context, "platform=pcbios")
    device = context.settings.root.register(SettingsBlock("net0"))
    register_lease(context.settings, device, lease)
    return context


def run(context: Context, script: str) -> str:
    stream = io.BytesIO()
    context.console = Console(stream, tty=False)  # type: ignore[arg-type]
    asyncio.run(Interpreter(context).run_script(parse_script("#!ipxe\n" + script), "test"))
    context.console.close()
    return stream.getvalue().decode()


@pytest.fixture
def tree() -> SettingsTree:
    return make_context(DhcpLease(ack())).settings


@pytest.mark.parametrize("name, value", [
    ("ip", "10.0.0.50"), ("netmask", "255.255.255.0"), ("gateway", "10.0.0.1"), ("dns", "10.0.0.2"),
    ("domain", "example.test"), ("root-path", "iscsi:10.0.0.1::::iqn.x"), ("next-server", "10.0.0.5"),
    ("filename", "from-option"), ("67", "from-option"), ("66", "tftp.example"), ("224", "custom"),
    ("175.1", "3"), ("priority", "3"), ("175.8", "1"), ("175.8:int8", "1"), ("keep-san", "1"),
    ("username", "alice"), ("175.190", "alice"), ("dhcp-server", "10.0.0.1"), ("51:uint32", "0xe10"),
    ("43.6:hex", "08"), ("net0.dhcp/ip", "10.0.0.50"), ("net0.dhcp/175.2", "10.0.0.50"),
    ("net0/ip", "10.0.0.50"), ("net0.dhcp/dns:hex", "0a:00:00:02:0a:00:00:03"), ("175.99", ""), ("12", ""),
])
def test_expansions(tree: SettingsTree, name: str, value: str) -> None:
    assert tree.fetch_text(name) == value


def test_fixed_file_field_wins_over_option_67() -> None:
    tree = make_context(DhcpLease(ack(file=b"fixed.efi", sname=b"srv"))).settings
    assert tree.fetch_text("filename") == "fixed.efi" and tree.fetch_text("67") == "fixed.efi"
    assert tree.fetch_text("66") == "srv"


def test_zero_siaddr_means_no_next_server() -> None:
    tree = make_context(DhcpLease(ack(siaddr=IPv4Address(0)))).settings
    assert tree.fetch_text("next-server") == ""


def test_root_setting_shadows_dhcp_and_clear_restores(tree: SettingsTree) -> None:
    tree.store_text(tree.root, p.FILENAME, "mine")
    assert tree.fetch_text("filename") == "mine"
    tree.store(tree.root, p.FILENAME, None)
    assert tree.fetch_text("filename") == "from-option"


def test_proxydhcp_is_searched_after_interfaces() -> None:
    proxy = ack(yiaddr=IPv4Address(0), siaddr=IPv4Address("10.0.0.9"), file=b"proxy.0",
                options=((53, b"\x05"), (60, b"PXEClient"), (43, bytes((6, 1, 8)))))
    tree = make_context(DhcpLease(ack(), proxy)).settings
    assert tree.fetch_text("filename") == "from-option"
    assert tree.fetch_text("proxydhcp/filename") == "proxy.0"
    assert tree.fetch_text("proxydhcp/next-server") == "10.0.0.9"
    assert [child.name for child in tree.root.children][-1] == "proxydhcp"
    bare = ack(options=((53, b"\x05"),))
    tree = make_context(DhcpLease(bare, proxy)).settings
    assert tree.fetch_text("filename") == "proxy.0"  # no DHCP filename: the proxy's is found


def test_new_lease_drops_stale_proxy_and_pxebs() -> None:
    context = make_context(DhcpLease(ack(), ack(), ack()))
    tree = context.settings
    assert tree.find_block("proxydhcp") is not None and tree.find_block("pxebs") is not None
    device = tree.find_block("net0")
    assert device is not None
    register_lease(tree, device, DhcpLease(ack(yiaddr=IPv4Address("10.0.0.77"))))
    assert tree.find_block("proxydhcp") is None and tree.find_block("pxebs") is None
    assert [c.name for c in device.children] == ["dhcp"] and tree.fetch_text("ip") == "10.0.0.77"
    register_pxebs(tree, ack(file=b"bs.0"))
    assert tree.fetch_text("pxebs/filename") == "bs.0"
    unregister_lease(device)
    assert tree.find_block("net0.dhcp") is None


def test_priority_orders_dhcp_blocks() -> None:
    tree = SettingsTree()
    one, two = tree.root.register(SettingsBlock("net0")), tree.root.register(SettingsBlock("net1"))
    register_lease(tree, one, DhcpLease(ack(options=((67, b"low"),))))
    block = DhcpSettingsBlock("dhcp", ack(options=((67, b"high"), (175, bytes((1, 1, 9))))))
    assert block.priority == 9
    register_lease(tree, two, DhcpLease(block.packet))
    assert tree.fetch_text("net1.dhcp/filename") == "high"


def test_applicability_and_stores(tree: SettingsTree) -> None:
    block = tree.find_block("net0.dhcp")
    assert isinstance(block, DhcpSettingsBlock)
    assert not block.applies(p.MAC) and not block.applies(Setting("foo")) and block.applies(Setting("x", None, 0xFE01))
    assert not block.applies(Setting("x", None, 255)) and not block.applies(Setting("x", None, 0xFF01))
    with pytest.raises(IpxeError):
        tree.store_text(block, Setting("foo"), "bar")
    tree.store_text(block, p.FILENAME, "edited")
    assert tree.fetch_text("filename") == "edited" and block.packet.file.rstrip(b"\0") == b"edited"
    tree.store_text(block, Setting("175.8", p.KEEP_SAN.type, 0xAF08), "0")
    assert tree.fetch_text("175.8:int8") == "0" and tree.fetch_text("username") == "alice"
    tree.store_text(block, Setting("43.10", None, 0x2B0A), "x")
    assert tree.fetch_text("43.10") == "x" and tree.fetch_text("43.6:hex") == "08"
    tree.store(block, Setting("224", None, 224), None)
    assert tree.fetch_text("224") == ""
    tree.store_text(block, p.IP, "10.0.0.99")
    assert tree.fetch_text("ip") == "10.0.0.99"
    with pytest.raises(IpxeError):
        tree.store_text(block, p.FILENAME, "x" * 200)


def test_show_and_script_expansion() -> None:
    context = make_context(DhcpLease(ack()))
    out = run(context, "show net0.dhcp/ip\nshow 224\nshow filename\necho ${175.190} ${root-path}\nshow 175.8:int8\n")
    assert out.splitlines() == [
        "net0.dhcp/ip:ipv4 = 10.0.0.50", "net0.dhcp/224:string = custom", "net0.dhcp/filename:string = from-option",
        "alice iscsi:10.0.0.1::::iqn.x", "net0.dhcp/keep-san:int8 = 1",
    ]


def test_local_settings_list_every_option(tree: SettingsTree) -> None:
    block = tree.find_block("net0.dhcp")
    assert block is not None
    names = [setting.name for setting in block.local_settings()]
    assert names[:4] == ["ip", "next-server", "66", "filename"] or names[:4] == ["ip", "next-server", "filename", "66"]
    assert {"netmask", "dns", "224", "priority", "keep-san", "username", "43", "dhcp-server"} <= set(names)
    for setting in block.local_settings():
        assert block.fetch_local(setting) is not None


def test_identity_from_settings() -> None:
    tree = SettingsTree()
    device = tree.root.register(SettingsBlock("net0"))
    device.default_scope = p.SCOPE_NETDEV
    device.store_local(p.BUSID, bytes.fromhex("011af41000"))
    tree.store_text(tree.root, p.USER_CLASS, "custom")
    smbios = tree.root.register(SettingsBlock("smb"))
    smbios.store_local(p.UUID, bytes(range(16)))
    identity = identity_from_settings(tree, device, MAC, platform="efi", buildarch="x86_64")
    assert identity.user_class == b"custom" and identity.vendor_class is None
    assert identity.busid == bytes.fromhex("011af41000") and identity.uuid == bytes(range(16))
    assert identity.arch == 7


def test_pxebs_parameters(tree: SettingsTree) -> None:
    control, mcast, servers = pxebs_parameters(tree)
    assert control == 8 and mcast is None and servers is None


_options = st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=30)), max_size=10)


@settings(max_examples=200, deadline=None)
@given(_options, st.binary(max_size=64), st.binary(max_size=128))
def test_fuzz_any_packet_reads_cleanly(options: list[tuple[int, bytes]], sname: bytes, file: bytes) -> None:
    """Whatever a server put in its ACK, every listed setting fetches and formats without raising."""
    packet = DhcpPacket(op=2, chaddr=MAC, sname=sname, file=file, options=tuple(options))
    context = make_context(DhcpLease(parse_packet(packet.encode())))
    block = context.settings.find_block("net0.dhcp")
    assert block is not None
    for setting in block.local_settings():
        context.settings.fetch_text(f"net0.dhcp/{setting.name}")
    for name in ("ip", "filename", "next-server", "175.1", "43.9:hex", "224", "netmask", "dns"):
        context.settings.fetch_text(name)
