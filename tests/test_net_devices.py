"""Network devices: naming order, ``--interface``, per-device settings, the netlink parser,
and (in a NetLab namespace with several veths) what ``pyipxe run`` shows for them."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlab import NetLab
from pyipxe.errors import IpxeError
from pyipxe.net import devices as d
from pyipxe.net.devices import BusInfo, InterfaceChoiceError, LinkState, NetDevice, NetworkState, assign_names
from pyipxe.settings.store import SettingsTree


def link(index: int, name: str, *, master: int = 0, mac: bytes = b"\x02\0\0\0\0\x01") -> LinkState:
    return LinkState(index, name, 1, 0x10043, mac=mac, mtu=1500, master=master)


PCI_B = BusInfo("PCI", 0x0300, 0x8086, 0x100E, "0000:03:00.0", "e1000")
PCI_A = BusInfo("PCI", 0x0018, 0x1AF4, 0x1041, "0000:00:03.0", "virtio_net")
USB = BusInfo("USB", 0x0102, 0x0B95, 0x1790, "1-1:1.0", "ax88179_178a")


def names(found: list[tuple[LinkState, BusInfo | None]], choices: list[str] | None = None) -> list[tuple[str, str]]:
    return [(name, link.ifname) for name, link, _ in assign_names(found, choices or [])]


def test_order_physical_by_bus_then_virtual_by_name() -> None:
    found = [(link(7, "veth10"), None), (link(2, "usb0"), USB), (link(3, "enp3s0"), PCI_B), (link(9, "veth2"), None),
             (link(4, "ens3"), PCI_A), (link(5, "port1", master=8), None), (link(8, "br0"), None)]
    assert names(found) == [("net0", "ens3"), ("net1", "enp3s0"), ("net2", "usb0"), ("net3", "br0"),
                            ("net4", "veth2"), ("net5", "veth10")]


def test_interface_choices_pick_and_map() -> None:
    found = [(link(2, "eth0"), PCI_A), (link(3, "eth1"), PCI_B), (link(4, "eth2"), None)]
    assert names(found, ["eth2", "eth0"]) == [("net0", "eth2"), ("net1", "eth0")]
    assert names(found, ["net0=eth1", "eth2"]) == [("net0", "eth1"), ("net1", "eth2")]
    assert names(found, ["eth0", "net0=eth2"]) == [("net0", "eth2"), ("net1", "eth0")]
    with pytest.raises(InterfaceChoiceError):
        names(found, ["eth9"])
    with pytest.raises(InterfaceChoiceError):
        names(found, ["lan=eth1"])


def device(tree: SettingsTree | None = None) -> NetDevice:
    return NetDevice("net0", "eth0", 2, bytes.fromhex("525400123456"), PCI_A, False)


def make_state(found: list[LinkState]) -> tuple[SettingsTree, NetworkState]:
    tree = SettingsTree()
    return tree, NetworkState(tree, mode="host", links=found)


def test_device_settings_match_ipxe() -> None:
    tree, _ = make_state([link(2, "eth0", mac=bytes.fromhex("525400123456"))])
    # The test has no sysfs for this fake link: it is presented as a virtual (TAP) device.
    assert tree.fetch_text("net0/mac") == "52:54:00:12:34:56"
    assert tree.fetch_text("net0/hwaddr") == "52:54:00:12:34:56"
    assert tree.fetch_text("net0/ifname") == "net0"
    assert tree.fetch_text("net0/linktype") == "Ethernet"
    assert tree.fetch_text("net0/bustype") == "TAP"
    assert tree.fetch_text("net0/busid") == "06:00:00:00:00"
    assert tree.fetch_text("net0/busloc") == "0x2"
    assert tree.fetch_text("mac") == "52:54:00:12:34:56"  # unscoped: found in net0
    assert tree.fetch_text("net1/mac") == ""


def test_pci_busid_and_busloc() -> None:
    dev = NetDevice("net0", "eth0", 2, b"\x02" * 6, PCI_A, False)
    tree = SettingsTree()
    tree.root.register(dev.block)
    assert tree.fetch_text("net0/busid") == "01:1a:f4:10:41"
    assert tree.fetch_text("net0/busloc") == "0x18"
    assert tree.fetch_text("net0/chip") == "virtio_net"
    assert tree.fetch_text("net0/bustype") == "PCI"


def test_mac_is_writable_and_clear_restores_it() -> None:
    tree, state = make_state([link(2, "eth0", mac=bytes.fromhex("525400123456"))])
    block, setting = tree.parse_name("net0/mac")
    tree.store_text(block, setting, "02:00:00:00:00:99")
    assert tree.fetch_text("net0/mac") == "02:00:00:00:00:99"
    assert state.devices[0].mac == bytes.fromhex("020000000099")
    assert tree.fetch_text("net0/hwaddr") == "52:54:00:12:34:56"
    tree.store_text(block, setting, "")
    assert tree.fetch_text("net0/mac") == "52:54:00:12:34:56"
    with pytest.raises(IpxeError) as short:
        tree.store_text(block, setting, "01:02")
    assert short.value.code("pcbios") == 0x1C146002
    block, chip = tree.parse_name("net0/chip")
    with pytest.raises(IpxeError) as read_only:
        tree.store_text(block, chip, "x")
    assert read_only.value.code("pcbios") == 0x3C146003


def test_other_settings_stored_generically_and_netx_follows_the_last_opened() -> None:
    tree, state = make_state([link(2, "eth0"), link(3, "eth1", mac=b"\x02\0\0\0\0\x02")])
    block, setting = tree.parse_name("net1/ip")
    tree.store_text(block, setting, "10.0.0.5")
    assert tree.fetch_text("net1/ip") == "10.0.0.5"
    assert tree.fetch_text("netX/mac") == ""
    state.devices[1].is_open = True  # no netconfig side effects in host mode
    state._open_order.append(state.devices[1])
    assert tree.fetch_text("netX/mac") == "02:00:00:00:00:02"
    assert tree.fetch_text("netX/ip") == "10.0.0.5"
    assert tree.find_block("netX") is state.devices[1].block  # an alias: values show their real block


def rtattr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * (-length % 4)


def test_attribute_walk_reads_nested_and_stops_at_garbage() -> None:
    data = rtattr(3, b"eth0\0") + rtattr(18, rtattr(1, b"veth\0")) + b"\xff\xff\x01"
    found = list(d._attributes(data, 0))
    assert found[0] == (3, b"eth0\0")
    assert list(d._attributes(found[1][1], 0)) == [(1, b"veth\0")]
    assert len(found) == 2


@given(st.binary(max_size=300), st.integers(0, 40))
def test_attribute_walk_never_fails(data: bytes, offset: int) -> None:
    for kind, value in d._attributes(data, offset):
        assert 0 <= kind < 0x4000
        assert len(value) <= len(data)


def test_real_dump_lists_loopback() -> None:
    links = d.dump_links()
    assert any(found.ifname == "lo" and found.arphrd == 772 for found in links)
    assert all(found.ifindex > 0 for found in links)


# -- integration: a namespace with several interfaces ---------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        host = lab.add_host("cli", None)
        ns = host.ns
        # Extra interfaces, created in an order unlike the naming order.
        lab.ns_run(ns, ["ip", "link", "add", "veth10", "type", "veth", "peer", "name", "peer10"])
        lab.ns_run(ns, ["ip", "link", "add", "veth2", "address", "02:00:00:00:02:02", "type", "veth",
                        "peer", "name", "peer2"])
        lab.ns_run(ns, ["ip", "link", "add", "br9", "type", "bridge"])
        lab.ns_run(ns, ["ip", "link", "set", "peer10", "master", "br9"])  # enslaved: skipped
        lab.ns_run(ns, ["ip", "link", "set", "peer2", "address", "02:00:00:00:02:03"])
        yield lab


def run(lab: NetLab, script: str, *args: str) -> tuple[str, str, int]:
    (lab.workdir / "s.ipxe").write_text("#!ipxe\n" + script)
    result = lab.pyipxe(["run", *args, "s.ipxe"])
    return result.stdout, result.stderr, result.returncode


def test_namespace_naming_order(lab: NetLab) -> None:
    """Virtual interfaces by name, numbers compared as numbers; the bridge port is skipped."""
    out, err, rc = run(lab, "echo ${net0/chip} ${net1/chip} ${net2/chip} ${net3/chip} ${net4/chip} [${net5/chip}]\n"
                            "echo ${net1/mac} ${net2/mac} ${net3/mac} ${net1/ifname} ${net1/bustype} ${net1/busid}\n"
                            "ifstat net3\n")
    assert rc == 0, err
    assert out.splitlines() == [
        "bridge veth veth veth veth []",  # br9, eth0, peer2, veth2, veth10
        "02:77:00:00:00:02 02:00:00:00:02:03 02:00:00:00:02:02 net1 TAP 06:00:00:00:00",
        "net3: 02:00:00:00:02:02 using veth on veth2 (Ethernet) [closed]",
        "  [Link:down, TX:0 TXE:0 RX:0 RXE:0]",
        "  [Link status: Down (https://ipxe.org/38086101)]",
    ]


def test_interface_option_maps_and_rejects(lab: NetLab) -> None:
    out, err, rc = run(lab, "echo ${net0/mac} ${net1/mac}\n", "--interface", "veth2", "--interface", "net1=eth0")
    assert rc == 0, err
    assert out.strip() == "02:00:00:00:02:02 02:77:00:00:00:02"
    out, err, rc = run(lab, "echo hi\n", "--interface", "nosuch0")
    assert rc == 2
    assert "nosuch0" in err
    assert out == ""
