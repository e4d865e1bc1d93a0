"""DHCP benchmark: time from start to bound, pyipxe against busybox udhcpc and dhclient.

One lab (tests/netlab.py), one dnsmasq serving DHCP, one client namespace whose eth0 has no
address; every client runs there in turn, in the same run, and the ratio to udhcpc is printed.
pyipxe is measured twice: as iPXE behaves (it waits 2 s for ProxyDHCP offers before its
REQUEST, so ~3 s is the *faithful* figure) and with ``proxy_wait=0`` (what the code itself
costs). Times are the client's own start-to-bound (pyipxe) or the process wall time (peers,
which includes their start-up). Reported, never asserted. Needs root.

    sudo python3 bench/dhcp.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from netlab import NetLab, tool  # noqa: E402

CLIENT = ROOT / "tests" / "fixtures" / "dhcp" / "client.py"
DNSMASQ = """port=0
interface=br0
bind-interfaces
dhcp-leasefile={workdir}/leases
dhcp-range=10.77.0.100,10.77.0.200,255.255.255.0,1h
dhcp-option=option:router,10.77.0.1
dhcp-authoritative
"""


def flush(lab: NetLab, ns: str) -> None:
    lab.ns_run(ns, ["ip", "-4", "addr", "flush", "dev", "eth0"], check=False)


def timed(lab: NetLab, ns: str, argv: list[str]) -> float:
    flush(lab, ns)
    started = time.perf_counter()
    done = lab.ns_run(ns, argv, check=False, timeout=60)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")
    return elapsed


def pyipxe(lab: NetLab, ns: str, proxy_wait: float) -> tuple[float, float]:
    """(start-to-bound inside the client, process wall time)."""
    flush(lab, ns)
    started = time.perf_counter()
    done = lab.ns_run(ns, [sys.executable, str(CLIENT), "--proxy-wait", str(proxy_wait)], check=False, timeout=60)
    wall = time.perf_counter() - started
    result = json.loads(done.stdout)
    if "error" in result:
        raise RuntimeError(f"pyipxe failed: {result}")
    return float(result["elapsed"]), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with NetLab() as lab:
        cli = lab.add_host("cli", None)
        conf = lab.workdir / "dnsmasq.conf"
        conf.write_text(DNSMASQ.format(workdir=lab.workdir))
        lab.spawn(lab.server, [tool("dnsmasq"), "-d", "-C", str(conf)], log="dnsmasq.log")
        lab.wait_listening(lab.server, 67, "udp")
        results: dict[str, float] = {}
        every: dict[str, list[float]] = {}
        udhcpc = [tool("busybox"), "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s", "/bin/true"]
        every["busybox udhcpc (wall)"] = [timed(lab, cli.ns, udhcpc) for _ in range(args.runs)]
        lease_file = str(lab.workdir / "dhclient.leases")
        pid_file = lab.workdir / "dhclient.pid"
        # Without -d dhclient returns once bound and leaves a daemon behind, stopped right after.
        dhclient = [tool("dhclient"), "-1", "-4", "-lf", lease_file, "-pf", str(pid_file), "-sf", "/bin/true", "eth0"]
        times = []
        for _ in range(args.runs):
            Path(lease_file).unlink(missing_ok=True)  # a remembered lease would skip DISCOVER
            times.append(timed(lab, cli.ns, dhclient))
            lab.ns_run(cli.ns, [tool("dhclient"), "-x", "-pf", str(pid_file)], check=False)
        every["dhclient (wall)"] = times
        faithful = [pyipxe(lab, cli.ns, 2.0) for _ in range(args.runs)]
        fast = [pyipxe(lab, cli.ns, 0.0) for _ in range(args.runs)]
        every["pyipxe, iPXE timing (bound)"] = [t for t, _ in faithful]
        every["pyipxe, iPXE timing (wall)"] = [w for _, w in faithful]
        every["pyipxe, no ProxyDHCP wait (bound)"] = [t for t, _ in fast]
        every["pyipxe, no ProxyDHCP wait (wall)"] = [w for _, w in fast]
    results = {name: statistics.median(values) for name, values in every.items()}
    base = results["busybox udhcpc (wall)"]
    print(f"median of {args.runs} runs (every run in brackets, ms), same dnsmasq, same namespace")
    for name, seconds in results.items():
        runs = " ".join(f"{value * 1000:.0f}" for value in every[name])
        print(f"  {name:36s} {seconds * 1000:8.1f} ms   x{seconds / base:6.2f} vs udhcpc   [{runs}]")


if __name__ == "__main__":
    main()
