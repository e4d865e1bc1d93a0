"""Format detection and header facts on real files nobody here made, and on hostile ones.

Real files: Debian's kernel (fetched into .cache/kernel by tests/fixtures/boot/fetch-kernel.sh),
Debian's iPXE builds (package ipxe: ipxe.lkrn is a bzImage, ipxe.efi an x86-64 EFI
application, ipxe.pxe an NBP), OVMF's firmware image (package ovmf: no executable format),
and busybox (a 64-bit ELF, which iPXE's 32-bit ELF prober does not take).
"""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.boot.plan import build_plan
from pyipxe.errors import IpxeError
from pyipxe.image.formats import HEAD, detect, facts, multiboot2_header, pe_machine
from pyipxe.image.linux import parse_bzimage
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.image.spool import SpoolFile

PROJECT = Path(__file__).resolve().parent.parent
FETCH = PROJECT / "tests" / "fixtures" / "boot" / "fetch-kernel.sh"
IPXE = Path("/usr/lib/ipxe")
OVMF = Path("/usr/share/ovmf/OVMF.fd")


@pytest.fixture(scope="module")
def debian_kernel() -> bytes:
    subprocess.run([str(FETCH), str(PROJECT / ".cache" / "kernel")], check=True, timeout=600)
    return (PROJECT / ".cache" / "kernel" / "vmlinuz").read_bytes()


def kind(data: bytes, platform: str) -> str | None:
    found = detect(data[:HEAD], len(data), platform)
    return found.name if found is not None else None


def test_debian_kernel(debian_kernel: bytes) -> None:
    assert kind(debian_kernel, "pcbios") == "bzImage"
    assert kind(debian_kernel, "linux") == "bzImage"
    assert kind(debian_kernel, "efi") == "EFI"  # the EFI stub: an x86-64 PE application
    header = parse_bzimage(debian_kernel[:1 << 17], len(debian_kernel))
    assert header.version >= 0x020C and header.efi_stub and header.handover_offset
    assert header.relocatable and header.kernel_alignment == 0x200000
    assert header.kexec_problem() is None
    assert header.kernel_version is not None and "amd64" in header.kernel_version
    assert header.payload_offset is not None and header.payload_length is not None
    assert header.setup_size + header.syssize * 16 <= len(debian_kernel)  # (a signature may follow)
    assert pe_machine(debian_kernel[:HEAD]) == 0x8664


def test_debian_kernel_plan_on_both_platforms(debian_kernel: bytes) -> None:
    for platform, expected_kind, cmdline in (("pcbios", "linux", "quiet"), ("efi", "linux-efi", "vmlinuz quiet")):
        registry = ImageRegistry(platform=lambda platform=platform: platform)  # type: ignore[misc]
        image = Image("vmlinuz", SpoolFile(debian_kernel), cmdline="quiet")
        registry.register(image)
        registry.images.remove(image)
        initrd = Image("initrd.img", SpoolFile(b"x"))
        registry.register(initrd)
        plan = build_plan(registry, image, platform)
        assert (plan.kind, plan.cmdline) == (expected_kind, cmdline)
        assert plan.initrd is not None and plan.initrd.length == 1


def test_ipxe_lkrn_is_an_old_protocol_bzimage() -> None:
    data = (IPXE / "ipxe.lkrn").read_bytes()
    assert kind(data, "pcbios") == "bzImage" and kind(data, "efi") is None
    header = parse_bzimage(data[:HEAD], len(data))
    assert header.version == 0x0207 and not header.efi_stub and header.xloadflags is None
    assert header.kernel_version is not None and header.kernel_version.startswith("1.0.0+git")
    assert header.kexec_problem() == "boot protocol 2.07 is older than 2.12"


def test_ipxe_efi_is_an_x86_64_efi_application() -> None:
    data = (IPXE / "ipxe.efi").read_bytes()
    assert kind(data, "efi") == "EFI"
    assert kind(data, "pcbios") is None  # too big for an NBP, and BIOS iPXE has no PE prober
    assert facts(data[:HEAD], len(data), None)["pe"] == {"machine": "x86_64", "pe32plus": True,
                                                         "subsystem": "EFI application"}


def test_ipxe_pxe_is_an_nbp_only_on_bios() -> None:
    data = (IPXE / "ipxe.pxe").read_bytes()
    assert kind(data, "pcbios") == "PXE-NBP"
    assert kind(data, "efi") is None and kind(data, "linux") is None


def test_ovmf_firmware_is_no_executable_format() -> None:
    data = OVMF.read_bytes()
    for platform in ("pcbios", "efi", "linux"):
        assert kind(data, platform) is None
    assert facts(data[:HEAD], len(data), None) == {}


def test_busybox_is_elf64_which_ipxe_does_not_boot() -> None:
    data = Path("/bin/busybox").read_bytes()
    assert kind(data, "pcbios") is None
    assert facts(data[:HEAD], len(data), None)["elf"]["class"] == "ELF64"  # type: ignore[index]


def test_compressed_real_kernel(debian_kernel: bytes) -> None:
    assert kind(gzip.compress(debian_kernel[:65536]), "pcbios") == "gzip"
    assert kind(zlib.compress(debian_kernel[:65536]), "efi") == "zlib"


def test_multiboot2_is_a_fact_not_a_type() -> None:
    head = bytearray(64)
    magic, arch, length = 0xE85250D6, 0, 16
    head[8:24] = b"".join(value.to_bytes(4, "little") for value in (magic, arch, length,
                                                                     -(magic + arch + length) & 0xFFFFFFFF))
    assert multiboot2_header(bytes(head)) == {"offset": 8, "architecture": "i386"}
    assert kind(bytes(head), "pcbios") == "PXE-NBP"  # what iPXE would say of it


def test_truncated_real_headers_never_crash(debian_kernel: bytes) -> None:
    lkrn = (IPXE / "ipxe.lkrn").read_bytes()
    efi = (IPXE / "ipxe.efi").read_bytes()
    for data in (debian_kernel, lkrn, efi):
        for cut in (*range(0, 0x300, 7), 0x1000, 0x4000):
            head = data[:cut]
            for platform in ("pcbios", "efi"):
                detect(head, cut, platform)
            facts(head, cut, None)
            with contextlib.suppress(IpxeError):
                parse_bzimage(head, cut)


@settings(max_examples=300)
@given(st.binary(max_size=2048), st.integers(0, 1 << 33), st.sampled_from(["pcbios", "efi", "linux"]))
def test_hostile_images_are_detected_or_not_but_never_crash(data: bytes, length: int, platform: str) -> None:
    detect(data, length, platform)
    facts(data, length, None)


@given(st.binary(min_size=0x40, max_size=0x400), st.integers(0x40, 0x3C0))
def test_hostile_pe_offsets(data: bytes, pointer: int) -> None:
    head = bytearray(data)
    head[:2] = b"MZ"
    head[0x3C:0x40] = pointer.to_bytes(4, "little")
    facts(bytes(head), len(head), None)
    detect(bytes(head), len(head), "efi")
