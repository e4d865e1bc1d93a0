"""Golden transcripts over the network: pyipxe against real nginx and tftpd-hpa equals real iPXE.

Each ``tests/golden/net/cases/NAME.ipxe`` was run on the real iPXE with
``real-ipxe --serve tests/golden/net/tree`` (QEMU user networking: the tree is served over
HTTP and TFTP at 10.0.2.2, ``${base}`` = ``http://10.0.2.2/``, next-server 10.0.2.2) and its
console kept as ``NAME.out``; ``NAME.expected`` + ``NAME.note`` record where current iPXE
differs from that 2019 build. Here the same tree is served by nginx (HTTP) and tftpd-hpa
(TFTP) in a private network namespace at 10.77.0.1, pyipxe runs in a client namespace with
``base`` and ``next-server`` set to match, and the transcripts must be equal once the server
address is substituted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import NetLab, tool

GOLDEN = Path(__file__).parent / "golden" / "net"
CASES = sorted((GOLDEN / "cases").glob("*.ipxe"))
ORACLE_SERVER = "10.0.2.2"

# ``user root``: the tree is served from the checkout, whose directories may be private (a
# mktemp -d clone is 0700), so workers running as www-data could not read it.
NGINX_CONF = """
daemon off;
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {work}/nginx-access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    default_type application/octet-stream;
    server {{
        listen {address}:80;
        root {root};
        autoindex off;
    }}
}}
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        conf = lab.workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=lab.workdir, address=lab.server_ip, root=GOLDEN / "tree"))
        lab.spawn(lab.server, [tool("nginx"), "-c", str(conf), "-e", str(lab.workdir / "nginx-error.log")],
                  log="nginx.log")
        lab.spawn(lab.server, [tool("in.tftpd"), "--listen", "--foreground", "--address", f"{lab.server_ip}:69",
                               "--secure", str(GOLDEN / "tree")], log="tftpd.log")
        lab.wait_listening(lab.server, 80)
        lab.wait_listening(lab.server, 69, "udp")
        yield lab


def _expected(case: Path, server: str) -> str:
    override = case.with_suffix(".expected")
    text = (override if override.exists() else case.with_suffix(".out")).read_text()
    return text.replace("http://ipxe.org/", "https://ipxe.org/").replace(ORACLE_SERVER, server).rstrip("\n")


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_transcript(lab: NetLab, case: Path) -> None:
    result = lab.pyipxe(["run", "--platform", "pcbios", "--set", f"base=http://{lab.server_ip}/",
                         "--set", f"next-server={lab.server_ip}", str(case)], timeout=120)
    assert result.stdout.rstrip("\n") == _expected(case, lab.server_ip), result.stderr


def test_run_chains_a_url(lab: NetLab) -> None:
    url = f"http://{lab.server_ip}/sub/chained.ipxe"
    result = lab.pyipxe(["run", url])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [f"{url}... ok", f"in chained {url}", "sibling.txt... ok"]
    missing = lab.pyipxe(["run", f"http://{lab.server_ip}/nothing.ipxe"])
    assert missing.returncode == 1
    assert missing.stdout == f"http://{lab.server_ip}/nothing.ipxe... Not found (https://ipxe.org/2d0c613b)\n"
    assert "Could not boot: Not found (https://ipxe.org/2d0c613b)" in missing.stderr
