"""A private network of Linux network namespaces for integration tests and benchmarks.

Why: pyipxe must be proven against real servers nobody here wrote (nginx, dnsmasq,
tftpd-hpa, vsftpd, nfs-ganesha, ISC dhcpd…), without touching the host's network. A
:class:`NetLab` is one "switch" namespace holding a bridge (``br0``, the server's address
10.77.0.1/24) and any number of hosts, each its own namespace with an ``eth0`` plugged into
the bridge. Servers run in the switch namespace (``lab.server``); pyipxe runs in a host
namespace (``lab.client``), configured or left without an address for DHCP tests.

Everything started here is killed and every namespace deleted by :meth:`NetLab.close`.
Needs root (CI runs as root); nothing here uses the shared lab.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SUBNET = "10.77.0"
SERVER_IP = f"{SUBNET}.1"
_serial = itertools.count()


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
        **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, timeout=timeout, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def tool(name: str) -> str:
    """Path of a server or client binary (Debian's, or the privately unpacked atftpd)."""
    if name == "atftpd":
        private = PROJECT / ".cache/atftpd/usr/sbin/atftpd"
        if private.exists():
            return str(private)
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed: run scripts/install-test-packages")
    return found


@dataclass
class Host:
    """One namespace with ``eth0`` on the lab bridge."""

    ns: str
    mac: str
    ip: str | None


@dataclass
class NetLab:
    offload: bool = False
    name: str = field(default_factory=lambda: f"pyx{os.getpid() % 100000}n{next(_serial)}")
    hosts: dict[str, Host] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pyipxe-lab-")))
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = f"{self.name}-sw"
        self.server_ip = SERVER_IP
        run(["ip", "netns", "add", self.server])
        self.ns_run(self.server, ["ip", "link", "set", "lo", "up"])
        self.ns_run(self.server, ["ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"])
        self.ns_run(self.server, ["ip", "link", "set", "br0", "address", "02:77:00:00:00:01"])
        self.ns_run(self.server, ["ip", "addr", "add", f"{SERVER_IP}/24", "dev", "br0"])
        self.ns_run(self.server, ["ip", "link", "set", "br0", "up"])

    # -- topology -------------------------------------------------------------------
    def add_host(self, label: str, ip: str | None = None, *, mac: str | None = None) -> Host:
        """A new namespace whose ``eth0`` (``ip``/24, or no address) is on the bridge."""
        index = len(self.hosts) + 2
        ns = f"{self.name}-{label}"
        mac = mac or f"02:77:00:00:00:{index:02x}"
        outer, inner = f"{self.name[-9:]}a{index}", f"{self.name[-9:]}b{index}"
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        run(["ip", "link", "set", outer, "netns", self.server])
        run(["ip", "link", "set", inner, "netns", ns])
        self.ns_run(self.server, ["ip", "link", "set", outer, "name", f"port{index}"])
        self.ns_run(self.server, ["ip", "link", "set", f"port{index}", "master", "br0", "up"])
        self.ns_run(ns, ["ip", "link", "set", inner, "name", "eth0"])
        self.ns_run(ns, ["ip", "link", "set", "eth0", "address", mac])
        self.ns_run(ns, ["ip", "link", "set", "lo", "up"])
        self.ns_run(ns, ["ip", "link", "set", "eth0", "up"])
        if ip:
            self.ns_run(ns, ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
        if not self.offload:
            for namespace, dev in ((ns, "eth0"), (self.server, f"port{index}")):
                self.ns_run(namespace, ["ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off",
                                        "gso", "off", "gro", "off", "sg", "off"], check=False)
        host = Host(ns, mac, ip)
        self.hosts[label] = host
        return host

    @property
    def client(self) -> str:
        """The first host's namespace (where pyipxe usually runs)."""
        return next(iter(self.hosts.values())).ns

    # -- processes --------------------------------------------------------------------
    def ns_run(self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60,
               **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout, **kwargs)

    def spawn(self, ns: str, argv: Sequence[str], *, log: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running process in ``ns``; its output goes to ``workdir/<log>``."""
        with open(self.workdir / log, "ab") as output:
            process = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self._processes.append(process)
        return process  # type: ignore[no-any-return]

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def log(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_listening(self, ns: str, port: int, proto: str = "tcp", timeout: float = 15) -> None:
        """Wait until something in ``ns`` listens on ``port`` (``ss``), or raise."""
        flag = "-ltnH" if proto == "tcp" else "-lunH"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.ns_run(ns, ["ss", flag, f"sport = :{port}"], check=False).stdout
            if out.strip():
                return
            for process in self._processes:
                if process.poll() is not None and process.returncode not in (0, None):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {proto}/{port} in {ns}")

    def pyipxe(self, args: Sequence[str], *, ns: str | None = None, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the pyipxe CLI (this checkout's) inside a host namespace."""
        env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
        return run(["ip", "netns", "exec", ns or self.client, sys.executable, "-m", "pyipxe", *args],
                   check=False, timeout=timeout, input=input, env=env, cwd=str(self.workdir))

    def close(self) -> None:
        for process in reversed(self._processes):
            self.stop(process)
        for host in self.hosts.values():
            run(["ip", "netns", "del", host.ns], check=False)
        run(["ip", "netns", "del", self.server], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
