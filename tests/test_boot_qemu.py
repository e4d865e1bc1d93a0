"""End to end: a real Linux kernel netbooted by ``pyipxe run --boot qemu`` from a real nginx.

Debian's kernel (tests/fixtures/boot/fetch-kernel.sh puts it in .cache/kernel) and a busybox
initramfs built here (its /init, tests/fixtures/boot/init.sh, prints markers on the serial
console and powers off) are served by Debian's nginx in a NetLab's switch namespace;
pyipxe runs in the client namespace, downloads them over HTTP with its own driver, and
boots them in QEMU (TCG). The test reads the markers from pyipxe's stdout, where the VM's
serial console goes. A second initrd given a path (``/etc/marker mode=444``) must show up
in the VM as that file, through iPXE's CPIO wrapping.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import PROJECT, NetLab, tool

FIXTURES = Path(__file__).parent / "fixtures" / "boot"
KERNEL_CACHE = PROJECT / ".cache" / "kernel"
SERVER = "10.77.0.1"
CMDLINE = "console=ttyS0 quiet panic=-1"


def debian_kernel() -> Path:
    """Debian's kernel, fetched on first use (the same script CI's install step runs)."""
    subprocess.run([str(FIXTURES / "fetch-kernel.sh"), str(KERNEL_CACHE)], check=True, timeout=600)
    return KERNEL_CACHE / "vmlinuz"


def build_initramfs(target: Path, work: Path) -> None:
    """A newc initramfs with busybox (and the libraries it links) and our /init."""
    root = work / "initramfs"
    for directory in ("bin", "proc", "dev", "etc"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    busybox = Path(tool("busybox"))
    shutil.copy2(busybox, root / "bin" / "busybox")
    libraries = subprocess.run(["ldd", str(busybox)], capture_output=True, text=True, check=False).stdout
    for word in libraries.split():
        if word.startswith("/") and Path(word).exists():
            destination = root / word.lstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(word, destination)
    shutil.copy2(FIXTURES / "init.sh", root / "init")
    os.chmod(root / "init", 0o755)
    names = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    archive = subprocess.run([str(busybox), "cpio", "-o", "-H", "newc"], input="\n".join(names).encode(),
                             cwd=root, capture_output=True, check=True).stdout
    target.write_bytes(archive)


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        root = lab.workdir / "www"
        root.mkdir()
        kernel = debian_kernel()
        shutil.copy2(kernel, root / "vmlinuz")
        (root / "vmlinuz.gz").write_bytes(gzip.compress(kernel.read_bytes(), compresslevel=1))
        build_initramfs(root / "initrd.cpio", lab.workdir)
        (root / "marker.txt").write_text("hello-from-initrd")
        arm64 = bytearray(4096)  # an ARM64 Linux Image header: "lkrn", not for this machine
        arm64[0x38:0x3C] = b"ARM\x64"
        (root / "arm64.img").write_bytes(bytes(arm64))
        start_nginx(lab, root)
        yield lab


def start_nginx(lab: NetLab, root: Path) -> None:
    """Debian's nginx in the lab's switch namespace, serving ``root`` on port 80."""
    state = lab.workdir / "nginx"
    state.mkdir()
    config = state / "nginx.conf"
    text = (FIXTURES / "nginx.conf").read_text()
    config.write_text(text.replace("@DIR@", str(state)).replace("@ROOT@", str(root)).replace("@LISTEN@", SERVER))
    lab.spawn(lab.server, [tool("nginx"), "-c", str(config), "-p", str(state), "-e", "stderr"], log="nginx.log")
    lab.wait_listening(lab.server, 80)


def boot(lab: NetLab, name: str, script: str) -> subprocess.CompletedProcess[str]:
    path = lab.workdir / name
    path.write_text(script)
    return lab.pyipxe(["run", "--boot", "qemu", str(path)], timeout=180)


def test_kernel_and_initrd_boot_and_print_the_marker(lab: NetLab) -> None:
    result = boot(lab, "one.ipxe", f"#!ipxe\nkernel http://{SERVER}/vmlinuz {CMDLINE}\n"
                                   f"initrd http://{SERVER}/initrd.cpio\nboot\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"http://{SERVER}/vmlinuz... ok" in result.stdout
    assert f"PYIPXE-BOOT-MARKER cmdline=[{CMDLINE}]" in result.stdout, result.stdout + result.stderr
    assert "PYIPXE-ETC-MARKER missing" in result.stdout


def test_a_named_second_initrd_appears_as_a_file_with_its_mode(lab: NetLab) -> None:
    result = boot(lab, "two.ipxe", f"#!ipxe\nkernel http://{SERVER}/vmlinuz {CMDLINE}\n"
                                   f"initrd http://{SERVER}/initrd.cpio\n"
                                   f"initrd http://{SERVER}/marker.txt /etc/marker mode=444\nboot\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PYIPXE-ETC-MARKER content=[hello-from-initrd] mode=[444]" in result.stdout, result.stdout + result.stderr


def test_a_compressed_kernel_is_extracted_and_booted_with_its_arguments(lab: NetLab) -> None:
    result = boot(lab, "gz.ipxe", f"#!ipxe\ninitrd http://{SERVER}/initrd.cpio\n"
                                  f"chain http://{SERVER}/vmlinuz.gz {CMDLINE} gz=1\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PYIPXE-BOOT-MARKER cmdline=[{CMDLINE} gz=1]" in result.stdout, result.stdout + result.stderr


def test_a_failed_boot_returns_to_the_script(lab: NetLab) -> None:
    """An image QEMU cannot boot fails ``boot`` as in iPXE (the script goes on) and says why on stderr."""
    result = boot(lab, "bad.ipxe", f"#!ipxe\nkernel http://{SERVER}/arm64.img\nboot || echo fell through\n")
    assert "Could not boot: Exec format error (https://ipxe.org/2e008001)\nfell through" in result.stdout, \
        result.stdout + result.stderr
    assert "arm64.img is an lkrn image for another architecture" in result.stderr
    assert result.returncode == 0


def test_an_efi_application_boots_under_ovmf(tmp_path: Path) -> None:
    """Debian's ipxe.efi on the efi platform: OVMF starts it from a virtual FAT disk; it prints its
    banner on the serial console; when it returns, the firmware shell powers the VM off."""
    script = tmp_path / "efi.ipxe"
    script.write_text("#!ipxe\nchain file:///usr/lib/ipxe/ipxe.efi\n")
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    result = subprocess.run([sys.executable, "-m", "pyipxe", "run", "--platform", "efi", "--boot", "qemu",
                             str(script)], capture_output=True, text=True, timeout=180, env=env,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iPXE initialising devices...ok" in result.stdout
    assert "-bios /usr/share/qemu/OVMF.fd" in result.stderr
