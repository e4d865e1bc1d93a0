"""The network commands against a real dnsmasq (DHCP + DNS) in NetLab namespaces: own mode
applies and removes the lease's configuration, host mode leaves the interface alone; plus
unit tests of the ICMP and SNTP packet code and the resolver's settings handling."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlab import PROJECT, NetLab, tool
from pyipxe.errors import IpxeError
from pyipxe.net import icmp, ntp
from pyipxe.net.resolve import _search, _servers, literal
from pyipxe.settings.store import SettingsTree

OWN_MAC, HOST_MAC, SPARE_MAC = "02:77:00:00:00:02", "02:77:00:00:00:03", "02:77:00:00:00:04"
OWN_IP, HOST_LEASE = "10.77.0.50", "10.77.0.60"
# NetLab's hosts get EUI-64 link-local addresses; iPXE's route prints them as it prints its own.
OWN_LINK_LOCAL = "fe80::77:ff:fe00:2/64"


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("own", None, mac=OWN_MAC)
        lab.add_host("host", "10.77.0.3", mac=HOST_MAC)
        lab.ns_run(lab.hosts["host"].ns, ["ip", "route", "add", "default", "via", "10.77.0.1"])
        lab.spawn(lab.server, [
            tool("dnsmasq"), "--no-daemon", "--port", "53", "--no-resolv", "--no-hosts", "--bind-interfaces",
            "--interface", "br0", "--address=/boot.test/10.77.0.1", "--address=/other.lab.test/10.77.0.9",
            "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h", f"--dhcp-host={OWN_MAC},{OWN_IP}",
            f"--dhcp-host={HOST_MAC},{HOST_LEASE}", "--dhcp-option=option:router,10.77.0.1",
            "--dhcp-option=option:dns-server,10.77.0.1", "--domain=lab.test", "--log-dhcp", "--log-queries",
        ], log="dnsmasq.log")
        lab.wait_listening(lab.server, 53, "udp")
        yield lab


def run(lab: NetLab, host: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    (lab.workdir / f"{host}.ipxe").write_text("#!ipxe\n" + script)
    return lab.pyipxe(["run", *args, f"{host}.ipxe"], ns=lab.hosts[host].ns)


def ipv4_of(lab: NetLab, host: str) -> list[str]:
    out = lab.ns_run(lab.hosts[host].ns, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    return [line.split()[3] for line in out.splitlines()]


def default_routes(lab: NetLab, host: str) -> str:
    return lab.ns_run(lab.hosts[host].ns, ["ip", "-4", "route", "show", "default"]).stdout.strip()


def test_own_mode_dhcp_then_everything(lab: NetLab) -> None:
    assert ipv4_of(lab, "own") == []
    script = (
        "dhcp\n"
        "echo ${ip} ${netmask} ${gateway} ${dns} ${domain}\n"
        "route\n"
        "nslookup x boot.test\n"
        "echo x=${x}\n"
        "nslookup y other\n"  # no dot: the DHCP domain is searched (other.lab.test)
        "echo y=${y}\n"
        "ping -c 1 ${gateway}\n"
        "ifstat\n"
        "ifclose\n"
        "route\n"
    )
    result = run(lab, "own", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Configuring (net0 {OWN_MAC})...")
    assert lines[0].endswith(" ok")
    assert lines[1] == f"{OWN_IP} 255.255.255.0 10.77.0.1 10.77.0.1 lab.test"
    assert lines[2] == f"net0: {OWN_IP}/255.255.255.0 gw 10.77.0.1"
    assert lines[3] == f"net0: {OWN_LINK_LOCAL}"
    assert lines[4] == "x=10.77.0.1"
    assert lines[5] == "y=10.77.0.9"
    assert lines[6] == "64 bytes from 10.77.0.1: seq=1"
    assert lines[7] == f"net0: {OWN_MAC} using veth on eth0 (Ethernet) [open]"
    assert lines[8].startswith("  [Link:up, TX:")
    assert lines[9:] == [f"net0: {OWN_IP}/255.255.255.0 gw 10.77.0.1 (inaccessible)",
                         f"net0: {OWN_LINK_LOCAL} (inaccessible)"]
    # The questions went to the DHCP-learned server, with the search suffix first.
    log = lab.log("dnsmasq.log")
    assert "query[A] boot.test from 10.77.0.50" in log
    assert "query[A] other.lab.test from 10.77.0.50" in log
    assert ipv4_of(lab, "own") == []  # ifclose took the address back
    assert default_routes(lab, "own") == ""


def test_own_mode_applies_while_open_and_undoes_at_exit(lab: NetLab) -> None:
    """The address and default route exist while the script runs and are gone after it ends."""
    (lab.workdir / "wait.ipxe").write_text("#!ipxe\ndhcp net0\nsleep 4\n")
    env_cmd = ["ip", "netns", "exec", lab.hosts["own"].ns, sys.executable, "-m", "pyipxe", "run", "wait.ipxe"]
    process = subprocess.Popen(env_cmd, cwd=lab.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PYTHONPATH": str(PROJECT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    try:
        deadline = time.monotonic() + 10
        while ipv4_of(lab, "own") == [] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ipv4_of(lab, "own") == [f"{OWN_IP}/24"]
        assert default_routes(lab, "own").startswith("default via 10.77.0.1 dev eth0")
    finally:
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert ipv4_of(lab, "own") == []
    assert default_routes(lab, "own") == ""


def test_static_configuration_with_set_in_own_mode(lab: NetLab) -> None:
    script = ("set net0/ip 10.77.0.77\nset net0/netmask 255.255.255.0\nifopen net0\nroute\n"
              "ping -c 1 10.77.0.1\nifclose net0\n")
    result = run(lab, "own", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "net0: 10.77.0.77/255.255.255.0", f"net0: {OWN_LINK_LOCAL}", "64 bytes from 10.77.0.1: seq=1"]
    assert ipv4_of(lab, "own") == []


def test_host_mode_learns_options_and_changes_nothing(lab: NetLab) -> None:
    before = (ipv4_of(lab, "host"), default_routes(lab, "host"))
    script = ("ifstat\ndhcp\necho ${net0.dhcp/ip} ${dns} ${domain}\nroute\nnslookup x boot.test\necho x=${x}\n"
              "ping -c 1 10.77.0.1\nifclose\n")
    result = run(lab, "host", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"net0: {HOST_MAC} using veth on eth0 (Ethernet) [closed]"
    assert lines[2].startswith(f"Configuring (net0 {HOST_MAC})...")
    assert lines[3] == f"{HOST_LEASE} 10.77.0.1 lab.test"  # learned, not applied
    assert lines[4] == "net0: 10.77.0.3/255.255.255.0 gw 10.77.0.1"  # the host's own configuration
    assert "x=10.77.0.1" in lines
    assert "64 bytes from 10.77.0.1: seq=1" in lines
    assert (ipv4_of(lab, "host"), default_routes(lab, "host")) == before
    # --network own on a configured interface is explicit: then pyipxe does apply the lease.
    result = run(lab, "host", "dhcp\nroute\n", "--network", "own")
    assert result.returncode == 0, result.stderr
    assert f"net0: {HOST_LEASE}/255.255.255.0 gw 10.77.0.1" in result.stdout.splitlines()
    assert (ipv4_of(lab, "host"), default_routes(lab, "host")) == before  # undone at exit


def test_error_texts(lab: NetLab) -> None:
    script = (
        "ifclose net9 || echo errno=${errno}\n"
        "dhcp\n"
        "nslookup y nosuch.boot.invalid || echo errno=${errno}\n"
        "ping -c 1 -t 300 10.77.0.99 || echo errno=${errno}\n"
        "ping -q -c 1 -t 300 10.77.0.99 || echo errno=${errno}\n"
        "ping -t 0 10.77.0.1 || echo errno=${errno}\n"
        "ifconf -c foo || echo errno=${errno}\n"
        "vdestroy net0 || echo errno=${errno}\n"
        "vcreate -t 4095 net0 || echo errno=${errno}\n"
    )
    result = run(lab, "own", script, "--platform", "pcbios")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ['"net9": no such network device', "errno=0x2c16203b"]
    assert lines[3:] == [
        "Could not resolve nosuch.boot.invalid: Error 0x3e11613b (https://ipxe.org/3e11613b)",
        "errno=0x3e11613b",
        "0 bytes from <none>: seq=1: Connection timed out (https://ipxe.org/4c1b2035)",
        "Finished: Connection timed out (https://ipxe.org/4c1b2035)",
        "errno=0x4c1b2035",
        "errno=0x4c1b2035",
        "Could not start ping: Invalid argument (https://ipxe.org/1c1b2002)",
        "errno=0x1c1b2002",
        '"foo": no such configurator',
        "errno=0x3c162003",
        "Could not destroy VLAN device: Error 0x3d306001 (https://ipxe.org/3d306001)",
        "errno=0x3d306001",
        "Could not create VLAN device: Invalid argument (https://ipxe.org/1c306002)",
        "errno=0x1c306002",
    ]


def kernel_has_vlans(lab: NetLab) -> bool:
    ns = lab.hosts["own"].ns
    probe = lab.ns_run(ns, ["ip", "link", "add", "link", "eth0", "name", "probe.7", "type", "vlan", "id", "7"],
                       check=False)
    lab.ns_run(ns, ["ip", "link", "del", "probe.7"], check=False)
    return probe.returncode == 0


def test_vlan_create_open_destroy(lab: NetLab) -> None:
    script = ("vcreate -t 5 net0\nifstat net0-5\necho ${net0-5/mac} ${net0-5/ifname}\nifopen net0-5\n"
              "iflinkwait -t 2000 net0-5\nvdestroy net0-5\nifstat net0-5 || echo gone\n")
    result = run(lab, "own", script, "--platform", "pcbios")
    lines = result.stdout.splitlines()
    if not kernel_has_vlans(lab):  # no 8021q in this kernel: the clean error, as the only output
        assert lines == ["Could not create VLAN device: Operation not supported (https://ipxe.org/3c306003)"]
        assert result.returncode == 1
        return
    assert result.returncode == 0, result.stderr
    assert lines[0] == f"net0-5: {OWN_MAC} using veth on eth0 (Ethernet) [closed]"
    assert f"{OWN_MAC} net0-5" in lines
    assert "Waiting for link-up on net0-5... ok" in lines
    assert lines[-2:] == ['"net0-5": no such network device', "gone"]
    links = lab.ns_run(lab.hosts["own"].ns, ["ip", "-o", "link"]).stdout
    assert "eth0.5" not in links


def test_iflinkwait_times_out_with_link_down(lab: NetLab) -> None:
    ns = lab.hosts["own"].ns
    lab.ns_run(ns, ["ip", "link", "add", "lonely0", "type", "veth", "peer", "name", "lonely1"])
    try:
        result = run(lab, "own", "iflinkwait -t 1500 net0 net1 || echo errno=${errno}\n",
                     "--interface", "lonely0", "--platform", "pcbios")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "Waiting for link-up on net0.... Down (https://ipxe.org/38086101)",
            '"net1": no such network device',
            "errno=0x2c16203b",
        ]
    finally:
        lab.ns_run(ns, ["ip", "link", "del", "lonely0"])


# -- unit tests ----------------------------------------------------------------------------------


def test_echo_request_checksum_and_reply_parsing() -> None:
    packet = icmp.build_echo(4, 0x1234, 1, icmp.payload(8))
    assert packet[:2] == b"\x08\x00"
    assert icmp.checksum(packet) == 0
    reply = b"\x00\x00\x00\x00\x12\x34\x00\x01" + icmp.payload(8)
    ip_header = bytes([0x45]) + bytes(19)
    parsed = icmp.parse_reply(4, ip_header + reply, ip_header=True)
    assert parsed == icmp.EchoReply(0x1234, 1, icmp.payload(8))
    assert icmp.parse_reply(4, packet, ip_header=False) is None  # a request is not a reply
    assert icmp.parse_reply(6, b"\x81\x00\x00\x00\x00\x07\x00\x02", ip_header=False) == icmp.EchoReply(7, 2, b"")


@given(st.binary(max_size=200), st.booleans(), st.sampled_from([4, 6]))
def test_echo_reply_parser_never_fails(data: bytes, with_header: bool, version: int) -> None:
    parsed = icmp.parse_reply(version, data, ip_header=with_header)
    assert parsed is None or len(parsed.data) <= len(data)


def test_sntp_request_and_reply() -> None:
    request = ntp.build_request(1_000_000_000)
    assert len(request) == 48 and request[0] == 0xCB
    assert struct.unpack_from("!II", request, 40) == (1_000_000_000 + ntp.NTP_EPOCH, ntp.FRACTION_MAGIC)
    reply = bytearray(48)
    reply[0], reply[1] = 0x1C, 2  # server, stratum 2
    struct.pack_into("!II", reply, 24, *struct.unpack_from("!II", request, 40))  # originate = our transmit
    struct.pack_into("!I", reply, 32, 1_000_000_042 + ntp.NTP_EPOCH)  # receive
    assert ntp.parse_response(bytes(reply)) == ntp.NtpResult(42)
    reply[1] = 0
    with pytest.raises(IpxeError):
        ntp.parse_response(bytes(reply))  # kiss-o'-death
    assert ntp.parse_response(bytes(reply[:47])) is None
    reply[1], reply[28] = 2, 0  # not our magic
    assert ntp.parse_response(bytes(reply)) is None


@given(st.binary(max_size=100))
def test_sntp_parser_never_fails_unexpectedly(data: bytes) -> None:
    try:
        result = ntp.parse_response(data)
    except IpxeError:
        return
    assert result is None or isinstance(result.delta, int)


def test_resolver_reads_servers_and_search_list_from_settings() -> None:
    tree = SettingsTree()
    assert literal("10.1.2.3") == IPv4Address("10.1.2.3")
    assert str(literal("[fe80::1]")) == "fe80::1"
    assert literal("boot.test") is None
    assert _servers(tree) == []
    for name, value in (("dns", "10.77.0.1"), ("domain", "lab.test")):
        block, setting = tree.parse_name(name)
        tree.store_text(block, setting, value)
    assert _servers(tree) == ["10.77.0.1"]
    assert _search(tree, "host") == ["lab.test"]
    assert _search(tree, "host.example") == []
