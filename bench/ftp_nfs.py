"""FTP and NFS download benchmark: pyipxe's drivers against curl (FTP) and libnfs's nfs-cp (NFS).

In a NetLab (veth, offloads on), vsftpd and nfs-ganesha (with rpcbind) serve the same random
file (64 MiB by default), configured as in tests/test_ftp_nfs_servers.py. Each client runs in
the client namespace as its own process, best of ``--runs``:

- ``curl -o /dev/null ftp://…``: the FTP reference rate;
- ``nfs-cp nfs://… FILE`` (Debian's libnfs-utils, when installed; it cannot write to /dev/null):
  the NFS reference;
- pyipxe's FTP and NFS drivers into a ``SpoolFile`` (what ``imgfetch`` does) and into a null sink.

Ratios are against the reference of the same protocol in the same run. Reported, never asserted.

    sudo python bench/ftp_nfs.py [--size-mib 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "src"), str(PROJECT / "tests")]


class NullSink:
    def set_length(self, length: int) -> None:
        pass

    def write(self, offset: int, data: bytes | memoryview) -> None:
        pass


def child(url: str, sink_kind: str) -> None:
    """One pyipxe download in this process; prints its rate as JSON."""
    from pyipxe.image.spool import SpoolFile
    from pyipxe.net.transfer import FetchEnv, FetchRequest, Sink, fetch
    from pyipxe.uri import parse_uri

    async def resolve(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(name)]

    sink: Sink = SpoolFile() if sink_kind == "spool" else NullSink()
    started = time.perf_counter()
    result = asyncio.run(fetch(FetchRequest(parse_uri(url)), sink, FetchEnv(resolve=resolve)))
    elapsed = time.perf_counter() - started
    print(json.dumps({"bytes": result.length, "seconds": elapsed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from netlab import NetLab
    from test_ftp_nfs_servers import start_nfs, start_vsftpd

    size = args.size_mib << 20
    with NetLab(offload=True) as lab:
        lab.add_host("cli", "10.77.0.2")
        os.chmod(lab.workdir, 0o755)
        root = lab.workdir / "pub"
        root.mkdir(mode=0o755)
        with open(root / "big.bin", "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        os.chmod(root / "big.bin", 0o644)
        ftp = start_vsftpd(lab, root) + "/big.bin"
        nfs = start_nfs(lab, root) + "/big.bin"

        def timed(argv: list[str]) -> float:
            (lab.workdir / "nfs-cp.out").unlink(missing_ok=True)  # nfs-cp will not overwrite
            started = time.perf_counter()
            done = lab.ns_run(lab.client, argv, timeout=600, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{argv[0]} failed: {done.stdout}{done.stderr}")
            return time.perf_counter() - started

        def pyipxe(url: str, sink: str) -> float:
            env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
            done = lab.ns_run(lab.client, [sys.executable, __file__, "--child", url, sink], timeout=600, env=env)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["bytes"] == size, result
            return float(result["seconds"])

        rows: list[tuple[str, str, float]] = []  # protocol, client, best seconds
        cases: list[tuple[str, str, object]] = [("ftp", "curl", lambda: timed(["curl", "-s", "-o", "/dev/null", ftp]))]
        if shutil.which("nfs-cp"):
            cases.append(("nfs", "nfs-cp (libnfs)", lambda: timed(["nfs-cp", nfs, str(lab.workdir / "nfs-cp.out")])))
        for protocol, url in (("ftp", ftp), ("nfs", nfs)):
            for sink in ("spool", "null"):
                cases.append((protocol, f"pyipxe → {sink}", lambda url=url, sink=sink: pyipxe(url, sink)))
        for protocol, name, run in cases:
            best = min(run() for _ in range(args.runs))  # type: ignore[operator]
            rows.append((protocol, name, best))

        print(f"{args.size_mib} MiB, best of {args.runs}, NetLab veth with offloads")
        print(f"{'protocol':8} {'client':22} {'MiB/s':>9} {'× reference':>12}")
        for protocol, name, seconds in rows:
            reference = next(s for p, _, s in rows if p == protocol)
            ratio = reference / seconds
            print(f"{protocol:8} {name:22} {size / seconds / (1 << 20):9.0f} {ratio:12.2f}")
        if not shutil.which("nfs-cp"):
            print("(nfs-cp not installed: NFS rows compare with the first NFS row; apt-get install libnfs-utils)")


if __name__ == "__main__":
    main()
