"""Image format detection, in iPXE's prober order (reference §7.2).

Why detect like iPXE: ``imgstat`` prints the type, ``kernel`` refuses what cannot be
executed, and which backend boots an image depends on it. Detection runs once, at
registration, over the first bytes of the spooled image (and its length); probers run
in iPXE's order: Multiboot first, then the "normal" types, PXE NBP last.
"""

from __future__ import annotations

import platform as _platform
import struct
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageType:
    name: str
    executable: bool = True
    #: an archive is executed by extracting it and executing the result (gzip, zlib, …)
    archive: bool = False


SCRIPT = ImageType("script")
MULTIBOOT = ImageType("Multiboot")
BZIMAGE = ImageType("bzImage")
ELF = ImageType("ELF")
EFI = ImageType("EFI")
GZIP = ImageType("gzip", archive=True)
ZLIB = ImageType("zlib", archive=True)
DER = ImageType("DER", executable=False)
PEM = ImageType("PEM", executable=False)
PNG = ImageType("PNG", executable=False)
PNM = ImageType("PNM", executable=False)
LKRN = ImageType("lkrn")
ZIMG = ImageType("zimg", archive=True)
PXE_NBP = ImageType("PXE-NBP")

HEAD = 16384  # bytes a prober may look at (Multiboot searches the first 8 KiB)
PXE_NBP_MAX = 0xA0000 - 0x7C00
Prober = Callable[[bytes, int], bool]


def _multiboot(head: bytes, length: int) -> bool:
    return multiboot1_header(head) is not None


def _bzimage(head: bytes, length: int) -> bool:
    if len(head) < 0x206 + 2 or head[0x1FE:0x200] != b"\x55\xaa":
        return False
    setup_sects = head[0x1F1] or 4
    if (setup_sects + 1) * 512 > length:
        return False
    if head[0x202:0x206] == b"HdrS":
        return True
    syssize: int = struct.unpack_from("<I", head, 0x1F4)[0]  # version 1.00: syssize must match
    return (setup_sects + 1) * 512 + syssize * 16 >= length > (setup_sects + 1) * 512 + (syssize - 1) * 16


def _elf(head: bytes, length: int) -> bool:
    # 32-bit (ELFCLASS32), little-endian, version 1, with at least one PT_LOAD segment
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] != 1 or head[5] != 1 or head[6] != 1:
        return False
    phoff, = struct.unpack_from("<I", head, 28)
    phentsize, phnum = struct.unpack_from("<HH", head, 42)
    for index in range(phnum):
        start = phoff + index * phentsize
        if start + 4 > len(head):
            return False
        if struct.unpack_from("<I", head, start)[0] == 1:
            return True
    return False


def _pe(head: bytes, length: int) -> bool:
    # The firmware's LoadImage accepts only its own machine type (an ARM64 kernel on x86 is not "EFI").
    machine = pe_machine(head)
    return machine is not None and machine == NATIVE_PE_MACHINE.get(_platform.machine(), 0x8664)


def _gzip(head: bytes, length: int) -> bool:
    return head[:2] == b"\x1f\x8b"


def _zlib(head: bytes, length: int) -> bool:
    return len(head) >= 2 and head[0] & 0x8F == 0x08 and int.from_bytes(head[:2], "big") % 31 == 0


def _der(head: bytes, length: int) -> bool:
    if len(head) < 2 or head[0] != 0x30:
        return False
    first = head[1]
    if first < 0x80:
        return 2 + first == length
    count = first & 0x7F
    if not 0 < count <= 4 or len(head) < 2 + count:
        return False
    return 2 + count + int.from_bytes(head[2:2 + count], "big") == length


def _pem(head: bytes, length: int) -> bool:
    return b"-----BEGIN" in head


def _png(head: bytes, length: int) -> bool:
    return head[:8] == b"\x89PNG\r\n\x1a\n"


def _pnm(head: bytes, length: int) -> bool:
    return len(head) >= 3 and head[0:1] == b"P" and head[1:2].isdigit() and head[2:3] in b" \t\n\v\f\r"


def _lkrn(head: bytes, length: int) -> bool:
    return len(head) >= 0x40 and head[0x38:0x3C] in (b"ARM\x64", b"RSC\x05")


def _zimg(head: bytes, length: int) -> bool:
    return len(head) >= 8 and head[:2] == b"MZ" and head[4:8] == b"zimg"


def _pxe_nbp(head: bytes, length: int) -> bool:
    return 0 < length <= PXE_NBP_MAX


def _script(head: bytes, length: int) -> bool:
    # the same probe as pyipxe.script.parser.is_script (this layer sits below script/)
    return len(head) >= 7 and head[:6] in (b"#!ipxe", b"#!gpxe") and head[6:7] in b" \t\n\v\f\r"


def probers(platform: str) -> list[tuple[ImageType, Prober]]:
    """iPXE's prober order for ``platform`` (EFI builds run PE images, BIOS ones bzImage)."""
    normal: list[tuple[ImageType, Prober]] = [(SCRIPT, _script)]
    if platform == "efi":
        normal += [(ZIMG, _zimg), (EFI, _pe)]
    else:
        normal += [(BZIMAGE, _bzimage), (ELF, _elf)]
    normal += [(GZIP, _gzip), (ZLIB, _zlib), (DER, _der), (PEM, _pem), (PNG, _png), (PNM, _pnm), (LKRN, _lkrn)]
    first = [(MULTIBOOT, _multiboot)] if platform != "efi" else []
    last = [(PXE_NBP, _pxe_nbp)] if platform == "pcbios" else []
    return first + normal + last


def detect(head: bytes, length: int, platform: str = "pcbios") -> ImageType | None:
    """The image's type, or None (unknown types can still be listed, hashed and used as initrds)."""
    for image_type, probe in probers(platform):
        if probe(head, length):
            return image_type
    return None


# -- facts beyond the type (what the boot plan shows; detection above stays iPXE's) --------

PE_MACHINES = {0x014C: "i386", 0x8664: "x86_64", 0x01C2: "arm", 0x01C4: "arm", 0xAA64: "arm64",
               0x5032: "riscv32", 0x5064: "riscv64", 0x6264: "loongarch64"}
NATIVE_PE_MACHINE = {"x86_64": 0x8664, "AMD64": 0x8664, "i686": 0x014C, "i386": 0x014C, "aarch64": 0xAA64,
                     "arm64": 0xAA64, "riscv64": 0x5064, "loongarch64": 0x6264}
PE_SUBSYSTEMS = {10: "EFI application", 11: "EFI boot service driver", 12: "EFI runtime driver", 13: "EFI ROM"}
ELF_MACHINES = {3: "i386", 62: "x86_64", 40: "arm", 183: "arm64", 243: "riscv"}
MULTIBOOT1_MAGIC = 0x1BADB002
MULTIBOOT2_MAGIC = 0xE85250D6


def pe_machine(head: bytes) -> int | None:
    """The COFF machine type of an ``MZ``/``PE`` image, or None when it is not one."""
    if len(head) < 0x40 or head[:2] != b"MZ":
        return None
    pe_offset, = struct.unpack_from("<I", head, 0x3C)
    if pe_offset + 6 > len(head) or head[pe_offset:pe_offset + 4] != b"PE\0\0":
        return None
    return int(struct.unpack_from("<H", head, pe_offset + 4)[0])


def pe_facts(head: bytes) -> dict[str, object] | None:
    machine = pe_machine(head)
    if machine is None:
        return None
    pe_offset, = struct.unpack_from("<I", head, 0x3C)
    facts: dict[str, object] = {"machine": PE_MACHINES.get(machine, f"{machine:#06x}")}
    optional = pe_offset + 24
    if optional + 70 <= len(head):
        magic, = struct.unpack_from("<H", head, optional)
        facts["pe32plus"] = magic == 0x20B
        subsystem, = struct.unpack_from("<H", head, optional + 68)
        facts["subsystem"] = PE_SUBSYSTEMS.get(subsystem, str(subsystem))
    return facts


def multiboot1_header(head: bytes) -> dict[str, object] | None:
    """The Multiboot 1 header (4-aligned, first 8 KiB, checksummed), as the prober finds it."""
    for offset in range(0, min(len(head), 8192) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", head, offset)
        if magic == MULTIBOOT1_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            return {"offset": offset, "flags": f"{flags:#x}", "aout_kludge": bool(flags & 0x10000)}
    return None


def multiboot2_header(head: bytes) -> dict[str, object] | None:
    """A Multiboot 2 header (8-aligned, first 32 KiB; we see the first ``HEAD`` bytes).

    iPXE cannot boot Multiboot 2 and has no prober for it; pyipxe reports it as a fact so
    the plan can say why such a kernel is not booted.
    """
    for offset in range(0, min(len(head), 32768) - 15, 8):
        magic, arch, length, checksum = struct.unpack_from("<IIII", head, offset)
        if magic == MULTIBOOT2_MAGIC and (magic + arch + length + checksum) & 0xFFFFFFFF == 0:
            return {"offset": offset, "architecture": {0: "i386", 4: "mips32"}.get(arch, str(arch))}
    return None


def elf_facts(head: bytes) -> dict[str, object] | None:
    if len(head) < 0x18 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    order = "<" if head[5] == 1 else ">"
    machine, = struct.unpack_from(order + "H", head, 18)
    facts: dict[str, object] = {"class": "ELF32" if head[4] == 1 else "ELF64",
                                "endian": "little" if head[5] == 1 else "big",
                                "machine": ELF_MACHINES.get(machine, str(machine))}
    entry_format = order + ("I" if head[4] == 1 else "Q")
    if len(head) >= 24 + struct.calcsize(entry_format):
        facts["entry"] = f"{struct.unpack_from(entry_format, head, 24)[0]:#x}"
    return facts


def facts(head: bytes, length: int, image_type: ImageType | None) -> dict[str, object]:
    """Everything the first bytes say, beyond the type: bzImage header, PE machine, ELF class, Multiboot."""
    from pyipxe.errors import IpxeError
    from pyipxe.image.linux import parse_bzimage

    found: dict[str, object] = {}
    try:
        found["bzimage"] = parse_bzimage(head, length).facts() if head[0x202:0x206] == b"HdrS" or (
            image_type is not None and image_type.name == "bzImage") else None
    except IpxeError:
        found["bzimage"] = None
    found["pe"] = pe_facts(head)
    found["elf"] = elf_facts(head)
    found["multiboot"] = multiboot1_header(head)
    found["multiboot2"] = multiboot2_header(head)
    return {key: value for key, value in found.items() if value is not None}
