"""``pyipxe demo`` from the command line (loopback only), and its embedded HTTP server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from pyipxe.demo import demo_tree
from pyipxe.image.formats import detect
from pyipxe.server.http import TreeServer
from test_boot_qemu import build_initramfs, debian_kernel

PROJECT = Path(__file__).resolve().parent.parent


def pyipxe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    return subprocess.run([sys.executable, "-m", "pyipxe", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL, check=False)


def test_demo_prints_the_boot_plan() -> None:
    result = pyipxe("demo", "--platform", "pcbios")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("http://127.0.0.1:") and lines[0].endswith("/boot.ipxe... ok")
    assert "Selected: linux" in lines
    assert 'vmlinuz : 5120 bytes [bzImage] [SELECTED] "console=ttyS0 quiet panic=-1"' in lines
    assert "Boot plan (print): linux on pcbios" in lines
    assert "  cmdline console=ttyS0 quiet panic=-1" in lines
    assert "Stopped before booting" not in result.stdout


def test_demo_json_plan() -> None:
    result = pyipxe("demo", "--platform", "pcbios", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    assert plan["kernel"]["name"] == "vmlinuz" and plan["kernel"]["uri"].startswith("http://127.0.0.1:")
    assert plan["initrd"]["parts"][0]["name"] == "initrd.img"


def test_demo_kernel_is_a_valid_bzimage() -> None:
    kernel = demo_tree()["/vmlinuz"]
    assert isinstance(kernel, bytes)
    found = detect(kernel, len(kernel), "pcbios")
    assert found is not None and found.name == "bzImage"


def test_demo_boots_a_real_kernel_in_qemu(tmp_path: Path) -> None:
    initrd = tmp_path / "initrd.cpio"
    build_initramfs(initrd, tmp_path)
    result = pyipxe("demo", "--boot", "qemu", "--kernel", str(debian_kernel()), "--initrd", str(initrd), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PYIPXE-BOOT-MARKER cmdline=[console=ttyS0 quiet panic=-1]" in result.stdout


def test_tree_server_answers_get_head_404_405_and_keeps_alive() -> None:
    async def exchange() -> bytes:
        server = await TreeServer({"/a": b"hello", "/dir/b c": b"x"}).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /dir/b%20c HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return data
        finally:
            await server.close()

    data = asyncio.run(exchange())
    responses = data.split(b"HTTP/1.1 ")[1:]
    assert [response[:3] for response in responses] == [b"200", b"200", b"404", b"405"]
    assert responses[0].endswith(b"\r\n\r\nhello") and b"content-length: 1" in responses[1].lower()
    assert responses[1].endswith(b"\r\n\r\n")
