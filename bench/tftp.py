"""TFTP download speed: pyipxe against the standard C clients, in one NetLab run.

A 64 MiB random file is fetched from real servers on the lab bridge by each client; every
copy is checked by SHA-256. Reported, never asserted:

- tftpd-hpa (lock-step only: it does not know ``windowsize``), blksize 1428:
  pyipxe vs ``busybox tftp -g -b 1428`` and ``atftp --option "blksize 1428" -g``
  (target: pyipxe faster);
- atftpd (knows RFC 7440), blksize 1428: pyipxe with windowsize 16 vs pyipxe lock-step
  (``tftp-windowsize 1``, iPXE's own request; target 4x), and ``atftp`` with windowsize 16.

pyipxe runs in-process in the client namespace, downloading into its real image spool
(``SpoolFile``) as ``imgfetch`` does; the C clients write a file in the same directory.
Each contender runs ``--runs`` times, interleaved, and the median rate is shown (the
2-vCPU lab machine's scheduler makes single runs noisy: a ping-pong is fast when client
and server share a CPU and slow when every wake-up crosses CPUs).

    sudo python3 bench/tftp.py [--size-mib 64] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from netlab import NetLab, tool  # noqa: E402
from pyipxe.image.spool import SpoolFile  # noqa: E402
from pyipxe.net import tftp  # noqa: E402
from pyipxe.net.transfer import FetchEnv, FetchRequest  # noqa: E402
from pyipxe.uri import parse_uri  # noqa: E402
from relay_udp import call_in_netns  # noqa: E402

BLKSIZE = 1428


@dataclass
class Contender:
    server: str
    name: str
    run: Callable[[], tuple[float, float]]  # seconds of wall time and of client CPU for one download (checked)
    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def _thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pyipxe_fetch(lab: NetLab, spool: str, digest: str, size: int, settings: dict[str, str]) -> tuple[float, float]:
    async def resolve(host: str) -> list[IPv4Address | IPv6Address]:
        return [ip_address(host)]

    env = FetchEnv(resolve=resolve, setting=settings.get)

    def download() -> tuple[float, float]:
        sink = SpoolFile(directory=spool)
        try:
            cpu = _thread_cpu()
            started = time.perf_counter()
            asyncio.run(tftp.fetch(FetchRequest(parse_uri(f"tftp://{lab.server_ip}/big")), sink, env))
            elapsed, cpu = time.perf_counter() - started, _thread_cpu() - cpu
            if len(sink) != size or sink.digest("sha256").hex() != digest:
                raise SystemExit("pyipxe: wrong bytes")
            return elapsed, cpu
        finally:
            sink.close()

    return call_in_netns(lab.client, download)


def c_client(lab: NetLab, argv: list[str], output: Path, digest: str) -> tuple[float, float]:
    output.unlink(missing_ok=True)
    cpu = _children_cpu()
    started = time.perf_counter()
    result = lab.ns_run(lab.client, argv, check=False, timeout=300)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu  # (ip netns exec execs the client)
    if result.returncode != 0 or hashlib.sha256(output.read_bytes()).hexdigest() != digest:
        raise SystemExit(f"{argv[0]} failed: {result.stderr[-300:]}")
    return elapsed, cpu


def start_server(lab: NetLab, which: str, root: Path) -> object:
    if which == "tftpd-hpa":
        argv = [tool("in.tftpd"), "-L", "-s", "-a", f"{lab.server_ip}:69", str(root)]
    else:
        argv = [tool("atftpd"), "--daemon", "--no-fork", "--port", "69", "--bind-address", lab.server_ip,
                "--user", "root.root", "--logfile", "-", "--verbose=5", str(root)]
    process = lab.spawn(lab.server, argv, log=f"{which}.log")
    lab.wait_listening(lab.server, 69, "udp")
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib << 20
    spool = tempfile.mkdtemp(prefix="pyipxe-bench-", dir="/var/tmp")
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        root = lab.workdir / "root"
        root.mkdir()
        os.chmod(lab.workdir, 0o755)
        os.chmod(root, 0o755)
        content = os.urandom(size)
        digest = hashlib.sha256(content).hexdigest()
        (root / "big").write_bytes(content)
        os.chmod(root / "big", 0o644)
        out = Path(spool) / "out"
        server = lab.server_ip

        def py(**settings: str) -> Callable[[], tuple[float, float]]:
            return lambda: pyipxe_fetch(lab, spool, digest, size, {"tftp-blksize": str(BLKSIZE), **settings})

        def c(*argv: str) -> Callable[[], tuple[float, float]]:
            return lambda: c_client(lab, [*argv, "-r", "big", "-l", str(out), server], out, digest)

        atftp_blk = ("atftp", "--option", f"blksize {BLKSIZE}")
        groups = {
            "tftpd-hpa": [
                Contender("tftpd-hpa", "pyipxe (asks windowsize 16, lock-step here)", py()),
                Contender("tftpd-hpa", f"busybox tftp -g -b {BLKSIZE}", c("busybox", "tftp", "-g", "-b", str(BLKSIZE))),
                Contender("tftpd-hpa", f"atftp blksize {BLKSIZE}", c(*atftp_blk, "-g")),
            ],
            "atftpd": [
                Contender("atftpd", "pyipxe windowsize 16", py(**{"tftp-windowsize": "16"})),
                Contender("atftpd", "pyipxe windowsize 1 (lock-step)", py(**{"tftp-windowsize": "1"})),
                Contender("atftpd", "atftp windowsize 16", c(*atftp_blk, "--option", "windowsize 16", "-g")),
                Contender("atftpd", "atftp lock-step", c(*atftp_blk, "-g")),
                Contender("atftpd", "pyipxe windowsize 64 (for reference)", py(**{"tftp-windowsize": "64"})),
            ],
        }
        for which, contenders in groups.items():
            process = start_server(lab, which, root)
            for _ in range(args.runs):
                for contender in contenders:
                    elapsed, cpu = contender.run()
                    contender.rates.append(size / elapsed / 1048576)
                    contender.cpu.append(cpu / (size // BLKSIZE + 1) * 1e6)
            lab.stop(process)  # type: ignore[arg-type]
    shutil.rmtree(spool, ignore_errors=True)

    print(f"TFTP, {args.size_mib} MiB, blksize {BLKSIZE}, {args.runs} runs each. Rates in MiB/s (median, min..max);")
    print("client CPU in microseconds per block (median; user+system, the client process only).")
    print(f"  {'server':10} {'client':46} {'median':>7} {'min..max':>15} {'CPU/blk':>8}  first row / this")
    for which, contenders in groups.items():
        reference = statistics.median(contenders[0].rates)
        for contender in contenders:
            rate = statistics.median(contender.rates)
            print(f"  {which:10} {contender.name:46} {rate:7.1f} {min(contender.rates):7.1f}..{max(contender.rates):6.1f}"
                  f" {statistics.median(contender.cpu):8.1f}  {reference / rate:5.2f}x")
    hpa, atftpd = groups["tftpd-hpa"], groups["atftpd"]
    ours = statistics.median(hpa[0].rates)
    best_c = max(statistics.median(c.rates) for c in hpa[1:])
    window = statistics.median(atftpd[0].rates) / statistics.median(atftpd[1].rates)
    print(f"target 1: pyipxe faster than the C clients against tftpd-hpa: {ours / best_c:.2f}x "
          f"({'met' if ours > best_c else 'missed'})")
    print(f"target 2: windowsize 16 vs lock-step against atftpd: {window:.2f}x ({'met' if window >= 4 else 'missed'})")


if __name__ == "__main__":
    main()
