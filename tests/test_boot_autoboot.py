"""``pyipxe boot`` and ``autoboot`` (reference §6): DHCP from a real dnsmasq, the boot script and
kernel from a real nginx, in a NetLab whose client has no address until DHCP gives one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import NetLab, tool
from pyipxe.demo.images import make_bzimage
from test_boot_qemu import start_nginx

FIXTURES = Path(__file__).parent / "fixtures" / "boot"
SERVER = "10.77.0.1"

BOOT_SCRIPT = f"""#!ipxe
echo booting ${{net0/ip}} from ${{filename}}
kernel vmlinuz console=ttyS0 autobooted
initrd http://{SERVER}/initrd.img
boot
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("cli")  # no address: DHCP must configure it
        root = lab.workdir / "www"
        root.mkdir()
        (root / "boot.ipxe").write_text(BOOT_SCRIPT)
        (root / "returns.ipxe").write_text("#!ipxe\necho this script returns\n")
        (root / "vmlinuz").write_bytes(make_bzimage())
        (root / "initrd.img").write_bytes(b"initrd!")
        start_nginx(lab, root)
        yield lab


def dnsmasq(lab: NetLab, filename: str) -> None:
    config = lab.workdir / "dnsmasq.conf"
    boot = f"dhcp-boot={filename},,{SERVER}" if filename else ""
    config.write_text((FIXTURES / "dnsmasq.conf").read_text().replace("@DIR@", str(lab.workdir)).replace("@BOOT@", boot))
    for process in list(lab._processes):
        if "dnsmasq" in " ".join(str(arg) for arg in process.args):  # type: ignore[union-attr]
            lab.stop(process)
    lab.spawn(lab.server, [tool("dnsmasq"), "-d", "-C", str(config)], log="dnsmasq.log")
    lab.wait_listening(lab.server, 67, "udp")


def test_pyipxe_boot_dhcps_and_boots_the_filename(lab: NetLab) -> None:
    dnsmasq(lab, f"http://{SERVER}/boot.ipxe")
    result = lab.pyipxe(["boot", "--network", "own", "--json"], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "net0: 02:77:00:00:00:02 using" in out and "Configuring (net0 02:77:00:00:00:02)" in out
    assert f"http://{SERVER}/boot.ipxe... ok" in out
    assert f"boot.ipxe : {len(BOOT_SCRIPT)} bytes [script]\n" in out  # printed before AUTOFREE is set
    assert "booting 10.77.0.1" in out and f"from http://{SERVER}/boot.ipxe" in out  # 10.77.0.1xx
    plan = json.loads(out[out.index("\n{") + 1:])
    assert plan["cmdline"] == "console=ttyS0 autobooted"
    assert plan["kernel"]["uri"] == f"http://{SERVER}/vmlinuz"
    assert [part["name"] for part in plan["initrd"]["parts"]] == ["initrd.img"]  # the AUTOFREE script is gone


def test_an_image_that_returns_does_not_stop_autoboot(lab: NetLab) -> None:
    dnsmasq(lab, f"http://{SERVER}/returns.ipxe")
    result = lab.pyipxe(["run", "--network", "own", "-"], input="#!ipxe\nautoboot\necho after autoboot\n")
    assert "this script returns\n\n" in result.stdout, result.stdout + result.stderr
    assert "after autoboot" in result.stdout and result.returncode == 0


def test_nothing_to_boot(lab: NetLab) -> None:
    dnsmasq(lab, "")
    result = lab.pyipxe(["boot", "--network", "own"], timeout=120)
    assert "Nothing to boot: No such file or directory (https://ipxe.org/2d03e13b)" in result.stdout, \
        result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("No more network devices")
    assert result.returncode == 1
