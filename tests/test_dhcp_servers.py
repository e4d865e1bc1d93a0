"""pyipxe's DHCP client against real servers (dnsmasq, ISC dhcpd) in network namespaces.

Each lab runs the client once (tests/fixtures/dhcp/client.py inside the client namespace, whose
eth0 has no address) and the tests check what landed in settings and what the server saw.
Needs root, dnsmasq, isc-dhcp-server and tcpdump (scripts/install-test-packages).
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netlab import NetLab, tool

FIXTURES = Path(__file__).parent / "fixtures" / "dhcp"
CLIENT = FIXTURES / "client.py"
UUID = "36d22ed9-b64f-4fdb-941b-a54a0854f991"


@dataclass
class Outcome:
    lab: NetLab
    result: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def values(self) -> dict[str, str]:
        return self.result["values"]  # type: ignore[no-any-return]


def run_client(lab: NetLab, ns: str, *args: str) -> dict[str, Any]:
    done = lab.ns_run(ns, [sys.executable, str(CLIENT), *args], check=False, timeout=60)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def config(name: str, lab: NetLab) -> Path:
    path = lab.workdir / name
    path.write_text((FIXTURES / name).read_text().replace("{workdir}", str(lab.workdir)))
    return path


def start_dnsmasq(lab: NetLab, name: str) -> None:
    lab.spawn(lab.server, [tool("dnsmasq"), "-d", "-C", str(config(name, lab))], log="dnsmasq.log")
    lab.wait_listening(lab.server, 67, "udp")


def start_dhcpd(lab: NetLab, ns: str, name: str, interface: str) -> None:
    leases = lab.workdir / "dhcpd.leases"
    leases.touch()
    lab.spawn(ns, [tool("dhcpd"), "-4", "-f", "-d", "-cf", str(config(name, lab)), "-lf", str(leases),
                   "-pf", str(lab.workdir / "dhcpd.pid"), interface], log="dhcpd.log")
    lab.wait_listening(ns, 67, "udp")


# ---- pcap: tcpdump writes it, we read the first DISCOVER back ------------------------------------


def start_capture(lab: NetLab, ns: str, path: Path) -> subprocess.Popen[bytes]:
    argv = [tool("tcpdump"), "-i", "eth0", "-U", "--immediate-mode", "-n", "-w", str(path), "udp", "port", "67"]
    process = lab.spawn(ns, argv, log="tcpdump.log")
    deadline = time.monotonic() + 10
    while "listening on" not in lab.log("tcpdump.log"):
        assert time.monotonic() < deadline, lab.log("tcpdump.log")
        time.sleep(0.05)
    return process


def pcap_udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of an Ethernet pcap (classic format, either byte order)."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    payloads = []
    pos = 24
    while pos + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(order + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        if frame[12:14] == b"\x08\x00" and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            payloads.append(frame[14 + ihl + 8:])
    return payloads


# ---- labs -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[Outcome]:
    """dnsmasq alone; one run as iPXE on EFI x86-64 with a UUID (captured), one with another user class."""
    with NetLab() as lab:
        cli = lab.add_host("cli", None)
        start_dnsmasq(lab, "dnsmasq-full.conf")
        capture = start_capture(lab, cli.ns, lab.workdir / "discover.pcap")
        first = run_client(lab, cli.ns, "--uuid", UUID)
        time.sleep(0.2)
        lab.stop(capture, signal.SIGINT)
        second = run_client(lab, cli.ns, "--user-class", "NotIpxe", "--platform", "pcbios", "--buildarch", "i386")
        yield Outcome(lab, first, [first, second])


@pytest.fixture(scope="module")
def proxy() -> Iterator[Outcome]:
    """ISC dhcpd (own namespace, 10.77.0.3) gives the address; dnsmasq's ProxyDHCP the boot file."""
    with NetLab() as lab:
        cli = lab.add_host("cli", None)
        server = lab.add_host("dhcpd", "10.77.0.3")
        start_dhcpd(lab, server.ns, "dhcpd-plain.conf", "eth0")
        start_dnsmasq(lab, "dnsmasq-proxy.conf")
        result = run_client(lab, cli.ns)
        yield Outcome(lab, result, [result])


@pytest.fixture(scope="module")
def isc() -> Iterator[Outcome]:
    """ISC dhcpd alone, with ipxe.org's user-class conditional, option 175 and a custom option 224."""
    with NetLab() as lab:
        cli = lab.add_host("cli", None)
        start_dhcpd(lab, lab.server, "dhcpd-ipxe.conf", "br0")
        result = run_client(lab, cli.ns, "--uuid", UUID)
        yield Outcome(lab, result, [result])


@pytest.fixture(scope="module")
def menu() -> Iterator[Outcome]:
    """dnsmasq ProxyDHCP with a PXE menu beside dhcpd: the client then runs boot-server discovery."""
    with NetLab() as lab:
        cli = lab.add_host("cli", None)
        server = lab.add_host("dhcpd", "10.77.0.3")
        start_dhcpd(lab, server.ns, "dhcpd-plain.conf", "eth0")
        start_dnsmasq(lab, "dnsmasq-menu.conf")
        result = run_client(lab, cli.ns, "--pxebs")
        yield Outcome(lab, result, [result])


# ---- dnsmasq ----------------------------------------------------------------------------------------


def test_dnsmasq_values_in_settings(dnsmasq: Outcome) -> None:
    values = dnsmasq.values
    assert "error" not in dnsmasq.result
    ip = values["ip"]
    assert ip.startswith("10.77.0.") and 100 <= int(ip.rsplit(".", 1)[1]) <= 150
    assert values["net0.dhcp/ip"] == ip and dnsmasq.result["address"] == ip
    assert (values["netmask"], values["gateway"], values["dns"], values["domain"]) == (
        "255.255.255.0", "10.77.0.1", "10.77.0.53", "lab.test")
    assert values["filename"] == "http://10.77.0.1/boot.ipxe"  # the iPXE branch: option 77 reached dnsmasq
    assert values["next-server"] == "10.77.0.1" and values["dhcp-server"] == "10.77.0.1"
    assert values["root-path"] == "iscsi:10.77.0.1::::iqn.2026-01.test:disk"
    assert values["224"] == "dnsmasq-224"
    assert values["net0.dhcp/51:uint32"] == "0xe10"


def test_dnsmasq_saw_ipxe_user_class_arch_and_uuid(dnsmasq: Outcome) -> None:
    log = dnsmasq.lab.log("dnsmasq.log")
    assert "user class: iPXE" in log and "vendor class: PXEClient:Arch:00007:UNDI:003010" in log
    tags = [line for line in log.splitlines() if "tags:" in line]
    assert any("ipxe" in line and "arch-efi64" in line and "has-uuid" in line for line in tags), tags


def test_dnsmasq_other_user_class_gets_the_binary(dnsmasq: Outcome) -> None:
    second = dnsmasq.runs[1]
    assert second["values"]["filename"] == "undionly.kpxe"
    log = dnsmasq.lab.log("dnsmasq.log")
    assert "user class: NotIpxe" in log and "vendor class: PXEClient:Arch:00000:UNDI:002001" in log


def test_dnsmasq_timing_follows_ipxe(dnsmasq: Outcome) -> None:
    """No ProxyDHCP: iPXE waits out its 2 s for ProxyDHCP offers and requests at the 3 s timer."""
    result = dnsmasq.result
    assert result["stats"]["sent"] == 4 and result["stats"]["malformed"] == 0
    assert 2.9 < result["elapsed"] < 4.5
    assert result["dots"] == 3


def test_captured_discover_matches_reference(dnsmasq: Outcome) -> None:
    from pyipxe.proto.dhcp_packet import parse_packet

    payloads = pcap_udp_payloads(dnsmasq.lab.workdir / "discover.pcap")
    packets = [parse_packet(p) for p in payloads]
    discovers = [p for p in packets if p.op == 1 and p.option(53) == b"\x01"]
    assert discovers, "no DISCOVER captured"
    discover = discovers[0]
    assert [tag for tag, _ in discover.options] == [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]
    assert discover.option(57) == (1472).to_bytes(2, "big")
    assert discover.option(93) == b"\x00\x07" and discover.option(94) == b"\x01\x03\x0a"
    assert discover.option(60) == b"PXEClient:Arch:00007:UNDI:003010" and discover.option(77) == b"iPXE"
    assert list(discover.option(55) or b"") == [1, 3, 6, 7, 12, 15, 17, 26, 42, 43, 60, 66, 67, 119, 121,
                                                 *range(128, 136), 175, 203]
    mac = bytes.fromhex(dnsmasq.lab.hosts["cli"].mac.replace(":", ""))
    assert discover.option(61) == b"\x01" + mac and discover.chaddr[:6] == mac
    assert discover.option(97) == b"\x00" + bytes.fromhex("d92ed2364fb6db4f941ba54a0854f991")
    assert discover.option(0xAFEB) == b"\x02\x00\x00" and discover.option(0xAFB1) is not None
    assert discover.secs == 4 and discover.flags == 0 and discover.ciaddr.packed == bytes(4)
    requests = [p for p in packets if p.op == 1 and p.option(53) == b"\x03"]
    assert requests and [tag for tag, _ in requests[0].options][-2:] == [54, 50]


# ---- ProxyDHCP beside ISC dhcpd -----------------------------------------------------------------------


def test_proxy_merges_boot_file_from_dnsmasq(proxy: Outcome) -> None:
    values = proxy.values
    assert proxy.result["proxy"] is True
    assert values["ip"].startswith("10.77.0.1") and 160 <= int(values["ip"].rsplit(".", 1)[1]) <= 180
    assert values["dhcp-server"] == "10.77.0.3" and values["domain"] == "proxy.test"
    assert values["net0.dhcp/filename"] == ""  # dhcpd gave no file …
    assert values["filename"] == "bootx64.0"  # … so the root-level proxydhcp block's is found
    assert values["proxydhcp/filename"] == "bootx64.0" and values["proxydhcp/next-server"] == "10.77.0.1"
    assert values["next-server"] == "10.77.0.1"


def test_proxy_request_went_to_port_4011(proxy: Outcome) -> None:
    """dnsmasq's proxy offer carries no boot file, so the client asked it on 4011 (unicast, ARP answered)."""
    log = proxy.lab.log("dnsmasq.log")
    assert "bootfile name: bootx64.0" in log
    assert "DHCPACK on 10.77.0.1" in proxy.lab.log("dhcpd.log")
    assert proxy.result["elapsed"] < 2.5  # a PXE candidate ends the 2 s wait at once


# ---- ISC dhcpd alone ------------------------------------------------------------------------------


def test_isc_values_in_settings(isc: Outcome) -> None:
    values = isc.values
    ip = values["ip"]
    assert 200 <= int(ip.rsplit(".", 1)[1]) <= 220
    assert (values["netmask"], values["gateway"], values["dns"], values["domain"]) == (
        "255.255.255.0", "10.77.0.1", "10.77.0.53", "isc.test")
    assert isc.result["dns"] == ["10.77.0.53", "10.77.0.54"]
    assert values["filename"] == "http://10.77.0.1/isc.ipxe"
    assert values["next-server"] == "10.77.0.1" and values["root-path"] == "nfs://10.77.0.1/export/root"
    assert values["224"] == "isc-224" and values["net0.dhcp/175.1"] == "7"
    assert values["net0.dhcp/51:uint32"] == "0x384"


def test_isc_saw_arch_uuid_and_user_class(isc: Outcome) -> None:
    lines = [line for line in isc.lab.log("dhcpd.log").splitlines() if "PYIPXE" in line]
    assert lines, isc.lab.log("dhcpd.log")
    assert "arch=7" in lines[0] and "user-class=iPXE" in lines[0]
    assert "uuid=0:d9:2e:d2:36:4f:b6:db:4f:94:1b:a5:4a:8:54:f9:91" in lines[0]


# ---- PXE menu and boot-server discovery -----------------------------------------------------------


def test_boot_server_discovery_from_menu(menu: Outcome) -> None:
    result = menu.result
    assert "pxebs_error" not in result, result
    assert result["proxy"] is True and result["pxebs_filename"] == "install.0"
    assert result["pxebs_next_server"] == "10.77.0.1"
    assert "install.0" in menu.lab.log("dnsmasq.log")
