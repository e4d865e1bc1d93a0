"""The FTP and NFS drivers against real servers: vsftpd, and nfs-ganesha with rpcbind.

The servers run in a NetLab switch namespace with configurations from tests/fixtures/ftp and
tests/fixtures/nfs; the drivers run in a client namespace, either through a small harness
that calls ``pyipxe.net.transfer.fetch`` (so each result's length, size announcement and
digest can be checked) or through the ``pyipxe run`` CLI. Error numbers are the ones real
iPXE prints for the same situation (reference §1.8; net/tcp/ftp.c and net/oncrpc/*.c).
Needs root, like every NetLab test.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import string
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import SERVER_IP, NetLab, tool

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT = Path(__file__).resolve().parent.parent
PASV_PORTS = (30000, 30031)
MOUNT_PORT = 20048

# Runs in the client namespace: fetch each URI with the real driver, print one JSON line each.
HARNESS = r"""
import asyncio, hashlib, json, sys
from ipaddress import ip_address
from pyipxe.errors import IpxeError
from pyipxe.net.transfer import FetchEnv, FetchRequest, fetch
from pyipxe.uri import parse_uri

class Sink:
    def __init__(self):
        self.chunks, self.length = {}, None
    def set_length(self, length):
        self.length = length
    def write(self, offset, data):
        assert offset not in self.chunks, offset
        self.chunks[offset] = bytes(data)
    def contents(self):
        out, position = bytearray(), 0
        for offset in sorted(self.chunks):
            assert offset == position, (offset, position)
            out += self.chunks[offset]
            position += len(self.chunks[offset])
        return bytes(out)

async def resolve(host):
    return [ip_address(host)]

async def main():
    settings = json.loads(sys.argv[1])
    for text in sys.argv[2:]:
        sink = Sink()
        env = FetchEnv(resolve=resolve, setting=settings.get)
        try:
            result = await fetch(FetchRequest(parse_uri(text)), sink, env)
        except IpxeError as error:
            print(json.dumps({"uri": text, "error": f"{error.code('pcbios'):08x}"}))
            continue
        data = sink.contents()
        print(json.dumps({"uri": text, "length": result.length, "announced": sink.length, "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}))

asyncio.run(main())
"""


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        os.chmod(lab.workdir, 0o755)  # vsftpd's anonymous user must reach the files
        yield lab


@pytest.fixture(scope="module")
def files(lab: NetLab) -> dict[str, bytes]:
    """The tree both servers publish: small, multi-MiB, nested, and symbolic links."""
    root = lab.workdir / "pub"
    contents = {
        "hello.txt": b"hello, pyipxe\n",
        "empty.bin": b"",
        "big.bin": _random_bytes(5 << 20 | 12345, 1),
        "dir/sub/nested.bin": _random_bytes(300_000, 2),
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    links = {"rel-link": "dir/sub/nested.bin", "dir/up-link": "../hello.txt", "abs-link": f"{root}/big.bin",
             "dir-link": "dir/sub", "loop": "loop", "outside": "/etc/hostname"}
    for name, target in links.items():
        (root / name).symlink_to(target)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return contents


def fetch(lab: NetLab, *uris: str, settings: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    done = lab.ns_run(lab.client, [sys.executable, "-c", HARNESS, json.dumps(settings or {}), *uris],
                      env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    return {str(result["uri"]): result for result in results}


def assert_file(result: dict[str, object], data: bytes) -> None:
    assert result.get("error") is None, result
    assert result["size"] == result["length"] == len(data)
    assert result["sha256"] == _sha(data)


def run_script(lab: NetLab, body: str) -> str:
    script = lab.workdir / ("script-" + "".join(random.choices(string.ascii_lowercase, k=8)) + ".ipxe")
    script.write_text("#!ipxe\n" + body)
    done = lab.pyipxe(["run", str(script)])
    return done.stdout + done.stderr


# ---- FTP ---------------------------------------------------------------------------------------


def start_vsftpd(lab: NetLab, root: Path) -> str:
    """vsftpd serving ``root`` anonymously on 10.77.0.1:21; returns the base URI (the bench uses it too)."""
    (lab.workdir / "vsftpd-empty").mkdir()
    template = (FIXTURES / "ftp/vsftpd.conf").read_text()
    config = string.Template(template).substitute(
        address=SERVER_IP, port=21, root=root, pasv_min=PASV_PORTS[0], pasv_max=PASV_PORTS[1],
        empty=lab.workdir / "vsftpd-empty", log=lab.workdir / "vsftpd-protocol.log")
    (lab.workdir / "vsftpd.conf").write_text(config)
    lab.spawn(lab.server, [tool("vsftpd"), str(lab.workdir / "vsftpd.conf")], log="vsftpd.log")
    lab.wait_listening(lab.server, 21)
    return f"ftp://{SERVER_IP}"


@pytest.fixture(scope="module")
def ftp(lab: NetLab, files: dict[str, bytes]) -> str:
    return start_vsftpd(lab, lab.workdir / "pub")


def test_ftp_small_and_large_files(lab: NetLab, files: dict[str, bytes], ftp: str) -> None:
    results = fetch(lab, f"{ftp}/hello.txt", f"{ftp}/big.bin", f"{ftp}/dir/sub/nested.bin", f"{ftp}/empty.bin")
    for name in ("hello.txt", "big.bin", "dir/sub/nested.bin", "empty.bin"):
        result = results[f"{ftp}/{name}"]
        assert_file(result, files[name])
        assert result["announced"] == len(files[name])  # from SIZE
    log = lab.log("vsftpd-protocol.log")
    for command in ("USER anonymous", "PASS <password>", "TYPE I", "SIZE /big.bin", "PASV", "RETR /big.bin", "QUIT"):
        assert f'"{command}"' in log, command
    assert 'anon password "ipxe@ipxe.org"' in log


def test_ftp_errors_are_ipxes(lab: NetLab, ftp: str) -> None:
    results = fetch(lab, f"{ftp}/missing.bin", f"ftp://someone:secret@{SERVER_IP}/hello.txt",
                    f"ftp://{SERVER_IP}:2121/hello.txt", f"{ftp}/dir")
    assert results[f"{ftp}/missing.bin"]["error"] == "430b6001"  # 550 to RETR: EPROTO (ftp.c)
    assert results[f"ftp://someone:secret@{SERVER_IP}/hello.txt"]["error"] == "430b6001"  # 530 to USER
    assert results[f"ftp://{SERVER_IP}:2121/hello.txt"]["error"] == "0f0a6039"  # closed port: TCP reset
    assert results[f"{ftp}/dir"]["error"] == "430b6001"  # a directory cannot be RETRieved


def test_ftp_uri_credentials(lab: NetLab, files: dict[str, bytes], ftp: str) -> None:
    uri = f"ftp://anonymous:pyipxe-test@{SERVER_IP}/hello.txt"
    assert_file(fetch(lab, uri)[uri], files["hello.txt"])
    assert 'anon password "pyipxe-test"' in lab.log("vsftpd-protocol.log")


def test_ftp_cli(lab: NetLab, files: dict[str, bytes], ftp: str) -> None:
    output = run_script(lab, f"imgfetch -n big {ftp}/big.bin\nsha256sum big\nimgstat big\n"
                             f"imgfetch {ftp}/missing.bin || echo errno=${{errno}}\n")
    assert f"{_sha(files['big.bin'])}  big" in output
    assert f"big : {len(files['big.bin'])} bytes" in output
    assert "Error 0x430b6001 (https://ipxe.org/430b6001)" in output
    assert "errno=0x430b6001" in output


# ---- NFS ---------------------------------------------------------------------------------------


def start_nfs(lab: NetLab, export: Path) -> str:
    """rpcbind and nfs-ganesha exporting ``export`` (NFSv3, TCP); returns the export's base URI."""
    template = (FIXTURES / "nfs/ganesha.conf").read_text()
    config = string.Template(template).substitute(address=SERVER_IP, nfs_port=2049, mount_port=MOUNT_PORT,
                                                  workdir=lab.workdir, export=export)
    (lab.workdir / "ganesha.conf").write_text(config)
    lab.spawn(lab.server, ["unshare", "--mount", "--propagation", "private", "sh",
                           str(FIXTURES / "nfs/run-servers.sh"), SERVER_IP, str(lab.workdir)], log="nfs.log")
    for port in (111, MOUNT_PORT, 2049):
        lab.wait_listening(lab.server, port, timeout=30)
    return f"nfs://{SERVER_IP}{export}"


@pytest.fixture(scope="module")
def nfs(lab: NetLab, files: dict[str, bytes]) -> str:
    return start_nfs(lab, lab.workdir / "pub")


def test_nfs_files_nested_and_linked(lab: NetLab, files: dict[str, bytes], nfs: str) -> None:
    cases = {"hello.txt": "hello.txt", "big.bin": "big.bin", "dir/sub/nested.bin": "dir/sub/nested.bin",
             "empty.bin": "empty.bin", "rel-link": "dir/sub/nested.bin", "abs-link": "big.bin",
             "dir/up-link": "hello.txt", "dir-link/nested.bin": "dir/sub/nested.bin"}
    results = fetch(lab, *(f"{nfs}/{name}" for name in cases), settings={"uid": "0", "gid": "0"})
    for name, target in cases.items():
        result = results[f"{nfs}/{name}"]
        assert_file(result, files[target])
        assert result["announced"] == len(files[target])


def test_nfs_explicit_port(lab: NetLab, files: dict[str, bytes], nfs: str) -> None:
    uri = nfs.replace(SERVER_IP, f"{SERVER_IP}:2049") + "/big.bin"
    assert_file(fetch(lab, uri)[uri], files["big.bin"])


def test_nfs_errors_are_ipxes(lab: NetLab, nfs: str) -> None:
    uris = {f"{nfs}/missing.bin": "2d33603b",  # LOOKUP NOENT → ENOENT (nfs.c)
            f"{nfs}/dir/missing/deeper.bin": "2d33603b",
            f"{nfs}/dir": "43336001",  # READ of a directory: ISDIR → EPROTO (nfs.c)
            f"{nfs}/dir/": "1c3c6002",  # no file name (nfs_uri.c)
            f"{nfs}/outside": "1c3c6002",  # absolute link leaving the mount (nfs_uri.c)
            f"{nfs}/loop": "20346001",  # ELOOP after 40 links (ours, nfs_open.c's site)
            f"nfs://{SERVER_IP}/not/exported.bin": "0235603c",  # MNT / refused: ACCES (mount.c)
            f"nfs://{SERVER_IP}:2050/x/y.bin": "0f0a6039"}  # nothing on the given NFS port: TCP reset
    results = fetch(lab, *uris)
    for uri, code in uris.items():
        assert results[uri]["error"] == code, uri


def test_nfs_cli(lab: NetLab, files: dict[str, bytes], nfs: str) -> None:
    output = run_script(lab, f"imgfetch -n nested {nfs}/rel-link\nsha256sum nested\n"
                             f"imgfetch {nfs}/missing.bin || echo errno=${{errno}}\n")
    assert f"{_sha(files['dir/sub/nested.bin'])}  nested" in output
    assert "No such file or directory (https://ipxe.org/2d33603b)" in output
    assert "errno=0x2d33603b" in output
