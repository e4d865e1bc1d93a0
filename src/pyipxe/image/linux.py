"""The Linux x86 boot protocol header ("bzImage setup header"), parsed for facts and checks.

Why a parser of our own: every backend needs the same few facts — is this a bzImage at all,
which protocol version, how long a command line the kernel takes, does it carry an EFI stub,
may ``kexec_file_load`` load it (64-bit entry, loadable above 4 GiB) — and the boot plan
prints them. The layout is Linux's Documentation/arch/x86/boot.rst; fields newer than the
header's protocol version are reported as absent, never read as zero-valued facts.

Rules: the input is untrusted (a downloaded image); parsing never raises anything but
:class:`IpxeError` (iPXE's "Exec format error" from bzimage.c), and never reads past what
it was given.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# arch/x86/image/bzimage.c (ERRFILE_bzimage: arch | image | 0x00010000): not a bzImage
ERR_NOT_BZIMAGE = ErrorSite(ErrorClass.ENOEXEC, 0x8180)

BOOT_FLAG = 0xAA55
HDRS = b"HdrS"
#: iPXE's limit for kernels older than protocol 2.06, which do not say (BZI_CMDLINE_SIZE)
OLD_CMDLINE_SIZE = 0x7FF
#: bytes of the image that hold every field parsed here (the header ends before 0x270)
HEADER_END = 0x270

LOADED_HIGH = 0x01
XLF_KERNEL_64 = 1 << 0
XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1
XLF_EFI_HANDOVER_32 = 1 << 2
XLF_EFI_HANDOVER_64 = 1 << 3
XLF_EFI_KEXEC = 1 << 4
XLOADFLAG_NAMES = {
    XLF_KERNEL_64: "KERNEL_64", XLF_CAN_BE_LOADED_ABOVE_4G: "CAN_BE_LOADED_ABOVE_4G",
    XLF_EFI_HANDOVER_32: "EFI_HANDOVER_32", XLF_EFI_HANDOVER_64: "EFI_HANDOVER_64", XLF_EFI_KEXEC: "EFI_KEXEC",
}


@dataclass(frozen=True)
class BzImageHeader:
    """The facts of one bzImage; ``None`` means "the header's protocol predates the field"."""

    setup_sects: int
    syssize: int
    version: int  # 0x0100 for kernels without "HdrS"
    loadflags: int
    kernel_version: str | None
    initrd_addr_max: int
    kernel_alignment: int | None
    relocatable: bool | None
    xloadflags: int | None
    cmdline_size: int
    init_size: int | None
    pref_address: int | None
    handover_offset: int | None
    payload_offset: int | None
    payload_length: int | None
    efi_stub: bool

    @property
    def setup_size(self) -> int:
        """Bytes of real-mode setup code (boot sector included)."""
        return (self.setup_sects + 1) * 512

    @property
    def version_text(self) -> str:
        return f"{self.version >> 8}.{self.version & 0xFF:02d}"

    @property
    def loaded_high(self) -> bool:
        return bool(self.loadflags & LOADED_HIGH)

    def xloadflag_names(self) -> list[str]:
        flags = self.xloadflags or 0
        return [name for bit, name in XLOADFLAG_NAMES.items() if flags & bit]

    def kexec_problem(self) -> str | None:
        """Why Linux's ``kexec_file_load`` (bzImage64 loader) would refuse this kernel, or None."""
        if self.version < 0x020C:
            return f"boot protocol {self.version_text} is older than 2.12"
        if not self.loaded_high:
            return "the kernel does not load high (zImage)"
        flags = self.xloadflags or 0
        if not flags & XLF_KERNEL_64:
            return "the kernel has no 64-bit entry point"
        if not flags & XLF_CAN_BE_LOADED_ABOVE_4G:
            return "the kernel cannot be loaded above 4 GiB"
        return None

    def facts(self) -> dict[str, object]:
        """What the boot plan shows (JSON-ready)."""
        facts = asdict(self)
        facts["version"] = self.version_text
        facts["xloadflags"] = None if self.xloadflags is None else self.xloadflag_names()
        for key in ("init_size", "pref_address", "handover_offset", "kernel_alignment", "initrd_addr_max"):
            value = facts[key]
            facts[key] = None if value is None else f"{value:#x}"
        return facts


def _u8(data: bytes, offset: int) -> int:
    return data[offset]


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _kernel_version(head: bytes, pointer: int) -> str | None:
    """The NUL-terminated version string the header points at (offset + 0x200)."""
    if pointer == 0:
        return None
    start = pointer + 0x200
    if start >= len(head):
        return None
    end = head.find(b"\0", start, start + 256)
    text = head[start:end if end >= 0 else start + 256]
    return text.decode("ascii", "replace") or None


def has_pe_header(head: bytes) -> bool:
    """``MZ`` with a ``PE\\0\\0`` signature where the DOS header points: an EFI stub."""
    if len(head) < 0x40 or head[:2] != b"MZ":
        return False
    pe_offset = _u32(head, 0x3C)
    return pe_offset + 4 <= len(head) and head[pe_offset:pe_offset + 4] == b"PE\0\0"


def parse_bzimage(head: bytes, length: int) -> BzImageHeader:
    """Parse the setup header from the image's first bytes (``head``) and its total ``length``."""
    if len(head) < 0x202 or _u16(head, 0x1FE) != BOOT_FLAG:
        raise IpxeError(ERR_NOT_BZIMAGE)
    setup_sects = _u8(head, 0x1F1) or 4
    syssize = _u32(head, 0x1F4)
    if (setup_sects + 1) * 512 > length:
        raise IpxeError(ERR_NOT_BZIMAGE)
    modern = len(head) >= 0x208 and head[0x202:0x206] == HDRS
    version = _u16(head, 0x206) if modern else 0x0100

    def field(minimum: int, offset: int, size: int) -> int | None:
        if version < minimum or offset + size > len(head):
            return None
        return _u32(head, offset) if size == 4 else _u16(head, offset) if size == 2 else _u8(head, offset)

    loadflags = field(0x0200, 0x211, 1) or 0
    pointer = field(0x0200, 0x20E, 2)
    initrd_addr_max = field(0x0203, 0x22C, 4)
    cmdline_size = field(0x0206, 0x238, 4)
    pref_low, pref_high = field(0x020A, 0x258, 4), field(0x020A, 0x25C, 4)
    relocatable = field(0x0205, 0x234, 1)
    return BzImageHeader(
        setup_sects=setup_sects,
        syssize=syssize,
        version=version,
        loadflags=loadflags,
        kernel_version=_kernel_version(head, pointer) if pointer else None,
        initrd_addr_max=initrd_addr_max if initrd_addr_max is not None else 0x37FFFFFF,
        kernel_alignment=field(0x0205, 0x230, 4),
        relocatable=None if relocatable is None else bool(relocatable),
        xloadflags=field(0x020C, 0x236, 2),
        cmdline_size=cmdline_size if cmdline_size is not None else OLD_CMDLINE_SIZE,
        init_size=field(0x020A, 0x260, 4),
        pref_address=None if pref_low is None or pref_high is None else pref_low | pref_high << 32,
        handover_offset=field(0x020B, 0x264, 4),
        payload_offset=field(0x0208, 0x248, 4),
        payload_length=field(0x0208, 0x24C, 4),
        efi_stub=has_pe_header(head),
    )


def bzimage_cmdline(args: str | None, header: BzImageHeader) -> str:
    """The command line a bzImage receives: exactly the image's arguments, cut to the header's limit."""
    text = args or ""
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) > header.cmdline_size:
        text = encoded[:header.cmdline_size].decode("utf-8", "surrogateescape")
    return text


def _parse_size(text: str) -> int | None:
    """``mem=`` as iPXE reads it: a number (C prefixes) with an optional K/M/G suffix."""
    digits = text.rstrip("KMGkmg")
    suffix = text[len(digits):][:1].upper()
    try:
        value = int(digits, 0)
    except ValueError:
        return None
    return value << {"": 0, "K": 10, "M": 20, "G": 30}[suffix]


def cmdline_options(cmdline: str) -> dict[str, object]:
    """The arguments iPXE itself acts on for a bzImage: ``vga=`` (video mode) and ``mem=`` (initrd cap)."""
    found: dict[str, object] = {}
    for word in cmdline.split(" "):
        key, equals, value = word.partition("=")
        if not equals:
            continue
        if key == "vga" and "vga" not in found:
            modes = {"normal": 0xFFFF, "ext": 0xFFFE, "ask": 0xFFFD}
            try:
                found["vga"] = modes[value] if value in modes else int(value, 0)
            except ValueError:
                found["vga"] = None
        elif key == "mem" and "mem" not in found:
            found["mem"] = _parse_size(value)
    return found
