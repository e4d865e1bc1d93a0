"""End to end: machines that boot pyipxe first, in QEMU (TCG) on a tap into a NetLab.

Real servers nobody here wrote run in the lab's switch namespace: dnsmasq (DHCP) and nginx
(HTTP for the pxe form, HTTPS with a certificate from a CA made here for the embedded
script). Images are built by this checkout's ``pyipxe build`` with the test CA as their only
trust root. Each VM must show, on its serial console: pyipxe started as init, the embedded
script running, a DHCP lease, the kexec'd kernel's initrd marker (the initrd is a tiny
program written by tests/fixtures/build/bootlab.py). The bad image must land in the pyipxe
shell with the error on screen, and the shell must answer typed commands.

Runs: the ISO under SeaBIOS and under OVMF, the pxe form chainloaded by QEMU's own iPXE ROM
(Debian's ipxe-qemu), and the bad script. Every wait is bounded.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netlab import PROJECT, NetLab

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "build"))
import bootlab

MARKER = f"PYIPXE-KEXEC-MARKER-{secrets.token_hex(4)}"
GOOD_SCRIPT = f"""#!ipxe
echo PYIPXE-EMBED-START ${{hello}}
dhcp
echo PYIPXE-LEASE ${{net0/ip}}
kernel https://{bootlab.SERVER}/target/vmlinuz console=ttyS0 quiet panic=-1
initrd https://{bootlab.SERVER}/target/marker.img
boot
"""
BAD_SCRIPT = f"""#!ipxe
echo PYIPXE-BAD-START
dhcp
chain https://{bootlab.SERVER}/no-such-script.ipxe
"""


@dataclass
class Built:
    boot: bootlab.BootLab
    good_iso: Path
    bad_iso: Path
    pxe_dir: Path


def pyipxe_build(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pyipxe", "build", "--fast", "--cache", str(bootlab.CACHE),
                             "--wait", "0.5", *args], capture_output=True, text=True, timeout=600, check=False,
                            env={"PYTHONPATH": str(PROJECT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    with NetLab() as lab:
        boot = bootlab.BootLab(lab)
        target = boot.www / "target"
        target.mkdir()
        kernel = bootlab.debian_kernel()
        (target / "vmlinuz").write_bytes(kernel.read_bytes())
        (target / "marker.img").write_bytes(bootlab.marker_initrd(f"\n{MARKER}\n".encode()))
        scripts = lab.workdir / "scripts"
        scripts.mkdir()
        (scripts / "good.ipxe").write_text(GOOD_SCRIPT)
        (scripts / "bad.ipxe").write_text(BAD_SCRIPT)
        good_iso, bad_iso = lab.workdir / "good.iso", lab.workdir / "bad.iso"
        pyipxe_build("--embed", str(scripts / "good.ipxe"), "--trust", str(boot.ca), "--set", "hello=embedded-setting",
                     "--format", "iso", "-o", str(good_iso))
        pyipxe_build("--embed", str(scripts / "good.ipxe"), "--trust", str(boot.ca), "--set", "hello=embedded-setting",
                     "--format", "pxe", "-o", str(boot.www / "pxe"))
        pyipxe_build("--embed", str(scripts / "bad.ipxe"), "--trust", str(boot.ca), "--format", "iso", "-o", str(bad_iso))
        yield Built(boot, good_iso, bad_iso, boot.www / "pxe")


def assert_boots_through(machine: bootlab.Vm, *, limit: float = 240) -> None:
    """The whole path, in order, each step bounded by what is left of ``limit``."""
    machine.wait_for("pyipxe 0.1.0 -- iPXE as a Linux userspace network bootloader", limit)
    machine.wait_for("PYIPXE-EMBED-START embedded-setting", limit)
    machine.wait_for("PYIPXE-LEASE 10.77.0.1", limit)  # dnsmasq's range: 10.77.0.100-150
    machine.wait_for(MARKER, limit)
    text = machine.text()
    assert "Kernel panic" not in text.split(MARKER)[0]


def test_iso_boots_under_seabios_and_kexecs(built: Built) -> None:
    with bootlab.vm(built.boot, built.boot.lab.workdir / "seabios.log", iso=built.good_iso) as machine:
        assert_boots_through(machine)
        assert machine.wait_exit(60) is not None  # the marker program powered the VM off


def test_iso_boots_under_ovmf_and_kexecs(built: Built) -> None:
    with bootlab.vm(built.boot, built.boot.lab.workdir / "ovmf.log", iso=built.good_iso, firmware="uefi") as machine:
        assert_boots_through(machine, limit=300)


def test_pxe_form_chainloaded_by_the_ipxe_rom(built: Built) -> None:
    with bootlab.vm(built.boot, built.boot.lab.workdir / "pxe.log", network_boot=True) as machine:
        machine.wait_for("iPXE", 60)  # QEMU's NIC ROM is Debian's iPXE
        assert_boots_through(machine)
    access = (built.boot.state / "access.log").read_text()
    assert "GET /pxe/boot.ipxe" in access and "GET /pxe/initrd.img" in access


def test_bad_script_drops_to_the_shell_with_the_error(built: Built) -> None:
    with bootlab.vm(built.boot, built.boot.lab.workdir / "bad.log", iso=built.bad_iso) as machine:
        machine.wait_for("PYIPXE-BAD-START", 240)
        machine.wait_for("no-such-script.ipxe", 120)
        machine.wait_for("starting the pyipxe shell", 60)
        machine.wait_for("iPXE>", 60)
        text = machine.text()
        assert "https://ipxe.org/" in text.split("starting the pyipxe shell")[0]  # the error, with iPXE's link
        machine.type(b"set x answers && echo shell-${x}-typed\r")
        machine.wait_for("shell-answers-typed", 60)  # expanded: not the echo of what was typed
        assert "Kernel panic" not in machine.text()
