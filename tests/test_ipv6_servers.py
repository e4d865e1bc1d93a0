"""IPv6 against a real dnsmasq (router advertisements + DHCPv6, and DHCPv4) in NetLab namespaces.

One lab and one dnsmasq, restarted between the stateful (M flag, IA_NA range) and the
stateless (O flag, SLAAC) configurations; each test says which one it needs.

Checks the values that land in settings (as real iPXE shows them for the same exchange,
see tests/fixtures/ipv6/README.md), that own mode applies the address and default route
while the script runs and takes them back at the end (and that it turns the kernel's own
RA processing off meanwhile), that host mode changes nothing, and that plain ``dhcp`` on a
network without IPv6 routers is not slowed down by router discovery.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from netlab import PROJECT, NetLab, tool

OWN_MAC, HOST_MAC = "02:77:00:00:00:12", "02:77:00:00:00:13"
OWN_LL, HOST_LL, ROUTER_LL = "fe80::77:ff:fe00:12", "fe80::77:ff:fe00:13", "fe80::77:ff:fe00:1"
BOOT_URL = "tftp://[fd77::1]/boot.efi"
SCRIPT = "ifconf -c ipv6\necho ${ip6} ${len6} ${gateway6} ${dns6} ${filename}\nroute\n"


class Lab:
    def __init__(self, lab: NetLab) -> None:
        self.lab = lab
        self.dnsmasq: subprocess.Popen[bytes] | None = None
        self.mode = ""

    def serve(self, mode: str) -> None:
        """(Re)start dnsmasq as a stateful (M flag, IA_NA range) or stateless (O flag, SLAAC) server."""
        if self.mode == mode:
            return
        if self.dnsmasq is not None:
            self.lab.stop(self.dnsmasq)
        dhcp_range = ("--dhcp-range=fd77::100,fd77::1ff,64,1h" if mode == "stateful"
                      else "--dhcp-range=fd77::,ra-stateless,64")
        self.dnsmasq = self.lab.spawn(self.lab.server, [
            tool("dnsmasq"), "--no-daemon", "--port", "0", "--interface", "br0", "--bind-interfaces",
            "--enable-ra", "--ra-param=br0,60,1800", dhcp_range, f"--dhcp-option=option6:bootfile-url,{BOOT_URL}",
            "--dhcp-option=option6:dns-server,[fd77::53]", "--dhcp-option=option6:domain-search,lab.test",
            "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
            "--log-dhcp", f"--dhcp-leasefile={self.lab.workdir}/leases-{mode}", "--pid-file=",
        ], log=f"dnsmasq-{mode}.log")
        self.lab.wait_listening(self.lab.server, 547, "udp")
        self.mode = mode

    def run(self, host: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        (self.lab.workdir / f"{host}.ipxe").write_text("#!ipxe\n" + script)
        return self.lab.pyipxe(["run", *args, f"{host}.ipxe"], ns=self.lab.hosts[host].ns)

    def ipv6(self, host: str) -> tuple[list[str], str]:
        ns = self.lab.hosts[host].ns
        addresses = self.lab.ns_run(ns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout
        routes = self.lab.ns_run(ns, ["ip", "-6", "route", "show", "default"]).stdout.strip()
        return sorted(line.split()[3] for line in addresses.splitlines()), routes

    def sysctl(self, host: str, name: str) -> str:
        path = f"/proc/sys/net/ipv6/conf/eth0/{name}"
        return self.lab.ns_run(self.lab.hosts[host].ns, ["cat", path]).stdout.strip()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with NetLab() as netlab:
        netlab.add_host("own", None, mac=OWN_MAC)
        netlab.add_host("host", "10.77.0.3", mac=HOST_MAC)
        for ns in (netlab.server, *(host.ns for host in netlab.hosts.values())):
            # The lab disables nothing, but a distribution's defaults might: IPv6 must be on.
            netlab.ns_run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"])
            assert netlab.ns_run(ns, ["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]).stdout.strip() == "0"
        # The own host stands for a bare machine whose kernel would not configure IPv6 by itself
        # before pyipxe runs; with accept_ra=1 it would SLAAC from dnsmasq's unsolicited RAs.
        netlab.ns_run(netlab.hosts["own"].ns, ["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0"])
        netlab.ns_run(netlab.server, ["ip", "addr", "add", "fd77::1/64", "dev", "br0", "nodad"])
        deadline = time.monotonic() + 10  # the hosts' and the bridge's link-local addresses leave DAD
        while "tentative" in "".join(netlab.ns_run(ns, ["ip", "-6", "addr"]).stdout
                                     for ns in (netlab.server, *(h.ns for h in netlab.hosts.values()))):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield Lab(netlab)


def test_stateful_own_mode_applies_then_removes(lab: Lab) -> None:
    lab.serve("stateful")
    assert lab.ipv6("own") == ([], "")
    (lab.lab.workdir / "hold.ipxe").write_text("#!ipxe\n" + SCRIPT + "sleep 3\n")
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    process = subprocess.Popen(["ip", "netns", "exec", lab.lab.hosts["own"].ns, sys.executable, "-m", "pyipxe", "run",
                                "hold.ipxe"], cwd=lab.lab.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        deadline = time.monotonic() + 10
        while not lab.ipv6("own")[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        addresses, default = lab.ipv6("own")
        assert len(addresses) == 1 and addresses[0].startswith("fd77::1") and addresses[0].endswith("/64")
        assert default.startswith(f"default via {ROUTER_LL} dev eth0")
    finally:
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = out.splitlines()
    leased = addresses[0].removesuffix("/64")
    assert lines[0] == f"Configuring [ipv6] (net0 {OWN_MAC})... ok"
    assert lines[1] == f"{leased} 64 {ROUTER_LL} fd77::53 {BOOT_URL}"
    assert lines[2:] == [f"net0: {leased}/64 gw {ROUTER_LL}", f"net0: {OWN_LL}/64"]
    assert lab.ipv6("own") == ([], "")  # taken back at the end of the session
    assert lab.sysctl("own", "accept_ra") == "0"  # restored to what it was
    log = lab.lab.log("dnsmasq-stateful.log")
    assert "DHCPSOLICIT" in log and "DHCPREPLY" in log and f"DHCPREPLY(br0) {leased}" in log
    assert "requested options: 23:dns-server, 24:domain-search, 59:bootfile-url," in log
    assert "vendor class: 343" in log  # PXE enterprise number; dnsmasq does not log v6 user classes


def test_stateful_settings_blocks_and_ifclose(lab: Lab) -> None:
    lab.serve("stateful")
    script = (SCRIPT + "show net0.dhcpv6/filename\nshow net0.ndp/dnssl\nshow net0.ndp.0/len6\n"
              "show net0.dhcpv6/len6 || echo no-len6\nifclose\nroute\n")
    result = lab.run("own", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[4:8] == [f"net0.dhcpv6/filename:string = {BOOT_URL}", "net0.ndp/dnssl:dnssl = lab.test",
                          "net0.ndp.0/len6:int8 = 64", 'Could not find "len6": No such file or directory '
                          "(https://ipxe.org/2d0c203b)"]
    assert lines[8] == "no-len6"
    assert lines[9].endswith(f"/64 gw {ROUTER_LL} (inaccessible)") and lines[10] == f"net0: {OWN_LL}/64 (inaccessible)"
    assert lab.ipv6("own") == ([], "")


def test_stateless_own_mode_slaac(lab: Lab) -> None:
    lab.serve("stateless")
    result = lab.run("own", SCRIPT + "echo ${net0.dhcpv6/ip6}.\n")
    assert result.returncode == 0, result.stderr
    slaac = "fd77::77:ff:fe00:12"  # prefix + EUI-64 of the MAC, as iPXE builds it
    assert result.stdout.splitlines() == [
        f"Configuring [ipv6] (net0 {OWN_MAC})... ok",
        f"{slaac} 64 {ROUTER_LL} fd77::53 {BOOT_URL}",
        f"net0: {slaac}/64 gw {ROUTER_LL}",
        f"net0: {OWN_LL}/64",
        ".",  # stateless: no leased address in net0.dhcpv6
    ]
    assert "DHCPINFORMATION-REQUEST" in lab.lab.log("dnsmasq-stateless.log")
    assert lab.ipv6("own") == ([], "")


def test_host_mode_learns_and_changes_nothing(lab: Lab) -> None:
    lab.serve("stateless")
    deadline = time.monotonic() + 10  # the host's kernel configures itself from the RAs
    while not lab.ipv6("host")[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    before = (lab.ipv6("host"), lab.sysctl("host", "accept_ra"))
    assert before[0][0] == ["fd77::77:ff:fe00:13/64"]
    result = lab.run("host", SCRIPT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == f"fd77::77:ff:fe00:13 64 {ROUTER_LL} fd77::53 {BOOT_URL}"
    assert "net0: 10.77.0.3/255.255.255.0" in lines
    assert f"net0: fd77::77:ff:fe00:13/64 gw {ROUTER_LL}" in lines  # the kernel's, shown as iPXE would
    assert (lab.ipv6("host"), lab.sysctl("host", "accept_ra")) == before


def test_plain_dhcp_runs_ipv6_beside_ipv4(lab: Lab) -> None:
    """``dhcp`` = every configurator: DHCPv4 and, since a router answered, IPv6 to its end."""
    lab.serve("stateless")
    result = lab.run("own", "dhcp\necho ${ip} ${ip6}\nroute\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Configuring (net0 {OWN_MAC})") and lines[0].endswith(" ok"), lines
    ip = lines[1].split()[0]
    assert ip.startswith("10.77.0.1") and lines[1].split()[1] == "fd77::77:ff:fe00:12"
    assert lines[2:] == [f"net0: {ip}/255.255.255.0 gw 10.77.0.1", f"net0: fd77::77:ff:fe00:12/64 gw {ROUTER_LL}",
                         f"net0: {OWN_LL}/64"]


def test_no_router_fails_like_ipxe(lab: Lab) -> None:
    """Without dnsmasq: ``ifconf -c ipv6`` times out with ndp.c's ETIMEDOUT, after 15.75 s as iPXE;
    with ``-t`` the monojob ends it earlier with its own error."""
    if lab.dnsmasq is not None:
        lab.lab.stop(lab.dnsmasq)
        lab.dnsmasq, lab.mode = None, ""
    result = lab.run("own", "ifconf -t 1500 -c ipv6 || echo errno=${errno}\n", "--platform", "pcbios")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "errno=0x4c072035"
