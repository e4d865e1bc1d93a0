"""HTTP download benchmark: pyipxe's driver against curl, same nginx, same run.

In a NetLab (veth, offloads on), nginx serves a random file (512 MiB by default). Each
client runs in the client namespace as its own process, best of ``--runs``:

- ``curl -o /dev/null``: the reference rate (and ``curl -o`` a file where spools go, since
  writing 512 MiB to the page cache is part of the cost);
- pyipxe's driver into a ``SpoolFile`` (what ``imgfetch`` does), and into a null sink;
- the same over HTTPS (curl and pyipxe, test CA made here).

pyipxe's peak RSS is the child's ``VmHWM``. Targets: rate ≥ 0.9 × curl's, RSS < 100 MiB.
A last table compares body parsing alone, in memory: pyipxe's ``ResponseReader`` against
h11 on the same chunked-up response (why proto/http.py does not use h11 for bodies).
Reported, never asserted.

    sudo python bench/http.py [--size-mib 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "src"), str(PROJECT / "tests")]

SERVER = "10.77.0.1"


# -- the child: one pyipxe download -------------------------------------------------------------

class NullSink:
    def set_length(self, length: int) -> None:
        pass

    def write(self, offset: int, data: bytes | memoryview) -> None:
        pass


def child(url: str, sink_kind: str, ca: str | None) -> None:
    from pyipxe.image.spool import SpoolFile
    from pyipxe.net import http
    from pyipxe.net.transfer import FetchEnv, FetchRequest, Sink, TlsConfig
    from pyipxe.uri import parse_uri

    async def resolve(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(SERVER)]

    sink: Sink = SpoolFile() if sink_kind == "spool" else NullSink()
    env = FetchEnv(resolve=resolve, tls=TlsConfig(trust_files=[ca] if ca else [], system_roots=False))
    started = time.perf_counter()
    result = asyncio.run(http.fetch(FetchRequest(parse_uri(url)), sink, env))
    elapsed = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": elapsed, "bytes": result.length, "vmhwm_kib": hwm}))


# -- the parent: lab, server, clients ------------------------------------------------------------

def _curl(lab: object, url: str, ca: str | None, output: str = "/dev/null") -> float:
    from netlab import NetLab
    assert isinstance(lab, NetLab)
    argv = ["curl", "-s", "-o", output, "-w", "%{time_total} %{size_download}", url]
    if ca:
        argv[1:1] = ["--cacert", ca, "--resolve", f"pyipxe.test:443:{SERVER}"]
    out = lab.ns_run(lab.client, argv, timeout=600).stdout.split()
    return int(out[1]) / float(out[0])


def _pyipxe(lab: object, url: str, sink: str, ca: str | None) -> tuple[float, int]:
    from netlab import NetLab
    assert isinstance(lab, NetLab)
    argv = [sys.executable, __file__, "--child", url, "--sink", sink] + (["--ca", ca] if ca else [])
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    out = lab.ns_run(lab.client, argv, timeout=600, env=env).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["bytes"] / data["seconds"], data["vmhwm_kib"]


def _certificates(directory: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from test_http_nginx import make_ca, make_leaf, write_pair
    ca_key, ca = make_ca("pyipxe bench CA")
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_pair(directory, "good", *make_leaf(ca_key, ca, ["pyipxe.test", SERVER]))
    for stem in ("untrusted", "expired"):  # the template names them; the bench never uses them
        write_pair(directory, stem, *make_leaf(ca_key, ca, ["pyipxe.test"]))


def parser_table(size: int) -> list[tuple[str, float]]:
    """MB/s of body parsing alone: pyipxe's reader vs h11, 256 KiB feeds of one response."""
    import h11

    from pyipxe.proto.http import Body, ResponseReader
    body = os.urandom(1 << 20) * max(1, size // (1 << 20))
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    view = memoryview(response)
    step = 256 << 10
    rows = []
    started = time.perf_counter()
    reader = ResponseReader()
    total = 0
    for pos in range(0, len(view), step):
        for event in reader.feed(view[pos:pos + step]):
            if isinstance(event, Body):
                total += len(event.data)
    rows.append(("pyipxe ResponseReader", len(body) / (time.perf_counter() - started) / 1e6))
    assert total == len(body)
    started = time.perf_counter()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    total = 0
    for pos in range(0, len(view), step):
        conn.receive_data(view[pos:pos + step])
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
                break
            if isinstance(event, h11.Data):
                total += len(event.data)
    rows.append(("h11 Connection", len(body) / (time.perf_counter() - started) / 1e6))
    assert total == len(body)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--sink", default="spool")
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sink, args.ca)
        return

    from netlab import NetLab, tool
    from pyipxe.image.spool import spool_directory
    from test_http_nginx import render, start_nginx

    with NetLab(offload=True) as lab:
        lab.add_host("cli", "10.77.0.2")
        state, root = lab.workdir / "nginx", lab.workdir / "www"
        for directory in (state, root / "files"):
            directory.mkdir(parents=True)
        with open(root / "files" / "big.bin", "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        _certificates(state)
        (state / "htpasswd").write_text("")
        for path in (lab.workdir, state, root, root / "files", *root.rglob("*"), *state.iterdir()):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        start_nginx(lab, render("nginx.conf", state, root), [80, 443], "nginx.log")
        assert tool("curl")
        ca = str(state / "ca.pem")
        plain, secure = f"http://{SERVER}/files/big.bin", "https://pyipxe.test/files/big.bin"
        rows: list[tuple[str, float, int | None]] = []
        curl_plain = max(_curl(lab, plain, None) for _ in range(args.runs))
        rows.append(("curl -o /dev/null (http)", curl_plain, None))
        spool_file = str(Path(spool_directory()) / f"pyipxe-bench-{os.getpid()}")
        curl_file = max(_curl(lab, plain, None, spool_file) for _ in range(args.runs))
        os.unlink(spool_file)
        rows.append(("curl -o <spool dir>/file (http)", curl_file, None))
        for sink in ("spool", "null"):
            best = max((_pyipxe(lab, plain, sink, None) for _ in range(args.runs)), key=lambda r: r[0])
            rows.append((f"pyipxe driver → {sink} (http)", *best))
        curl_tls = max(_curl(lab, secure, ca) for _ in range(args.runs))
        rows.append(("curl -o /dev/null (https)", curl_tls, None))
        best = max((_pyipxe(lab, secure, "spool", ca) for _ in range(args.runs)), key=lambda r: r[0])
        rows.append(("pyipxe driver → spool (https)", *best))

    print(f"{args.size_mib} MiB over a veth pair, offloads on, best of {args.runs}"
          f" ({datetime.date.today().isoformat()})")
    print(f"{'client':34} {'MB/s':>9} {'vs curl':>8} {'peak RSS':>10}")
    for name, rate, hwm in rows:
        reference = curl_tls if "https" in name else curl_plain
        rss = f"{hwm / 1024:.0f} MiB" if hwm else ""
        print(f"{name:34} {rate / 1e6:9.0f} {rate / reference:8.2f} {rss:>10}")
    print()
    print(f"{'body parser (in memory, 256 KiB feeds)':40} {'MB/s':>9}")
    for name, rate in parser_table(min(args.size_mib, 256) << 20):
        print(f"{name:40} {rate:9.0f}")


if __name__ == "__main__":
    main()
