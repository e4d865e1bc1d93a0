"""Images for the demo (and tests): a bzImage-shaped kernel and a newc initramfs, made in code.

Why generated: ``pyipxe demo`` must work from a fresh clone with no network beyond
loopback, so it cannot ship or fetch a real kernel. What it boots (with ``--boot print``)
only has to be *recognised* as iPXE would — a valid Linux boot-protocol header with the
facts the plan prints — so a few kilobytes made here do. Made in code rather than shipped
as data files so that nothing depends on how the package was installed.
"""

from __future__ import annotations

import struct

from pyipxe.image.initrd import MODE_FILE, CpioEntry

DEMO_VERSION = "0.0.0-pyipxe-demo (demo@pyipxe) #1"


def make_bzimage(*, version: int = 0x020F, setup_sects: int = 1, payload: bytes = b"", cmdline_size: int = 2047,
                 xloadflags: int = 0x3, loadflags: int = 0x01, kernel_version: str = DEMO_VERSION,
                 handover_offset: int = 0, efi_stub: bool = False) -> bytes:
    """A kernel image with a well-formed x86 boot-protocol header (it does not run)."""
    setup = bytearray((setup_sects + 1) * 512)
    if efi_stub:
        setup[0:2] = b"MZ"
        struct.pack_into("<I", setup, 0x3C, 0x40)
        setup[0x40:0x44] = b"PE\0\0"
        struct.pack_into("<H", setup, 0x44, 0x8664)
    setup[0x1F1] = setup_sects
    body = payload or b"pyipxe demo kernel: boot me with --boot print\n".ljust(4096, b"\0")
    struct.pack_into("<I", setup, 0x1F4, (len(body) + 15) // 16)
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    text = kernel_version.encode() + b"\0"
    text_offset = 0x300 if len(setup) >= 0x300 + len(text) else 0
    if text_offset:
        setup[text_offset:text_offset + len(text)] = text
        struct.pack_into("<H", setup, 0x20E, text_offset - 0x200)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<I", setup, 0x230, 0x200000)
    setup[0x234] = 1
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<I", setup, 0x260, 0x1000000)
    struct.pack_into("<I", setup, 0x264, handover_offset)
    return bytes(setup) + body


def make_cpio(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A newc archive of ``path → (content, permissions)``, with its trailer."""
    out = bytearray()
    for path, (content, mode) in files.items():
        out += CpioEntry(path, MODE_FILE | mode, len(content)).header() + content
        out += bytes(-len(out) % 4)
    out += CpioEntry("TRAILER!!!", 0, 0).header()
    return bytes(out)


DEMO_INIT = b"""#!/bin/sh
# The pyipxe demo initramfs: boot it with your own kernel (pyipxe demo --boot qemu --kernel K).
echo "pyipxe demo initramfs: hello from /init"
poweroff -f
"""


def make_initrd() -> bytes:
    return make_cpio({"init": (DEMO_INIT, 0o755)})
