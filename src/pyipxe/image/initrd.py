"""The Linux initrd iPXE builds from the image list, CPIO "magic initrd" wrapping included (§7.3).

Why exactly iPXE's layout: a kernel booted by pyipxe must see the same initramfs it would
see under iPXE. Every registered, non-hidden image except the kernel goes in, in
registration order, each starting on a 4 KiB boundary (zero padding between, none at the
end). An image with a command line is preceded by newc CPIO headers: its first word is the
path inside the initramfs, ``mode=`` (octal, default 0644) the file mode, ``mkdir=N`` asks
for the last N parent directories too (-1: all). The image's bytes always follow its
headers; there is no ``TRAILER!!!`` (the kernel's unpacker does not need one).

The numbers are parsed as C's ``strtoul`` parses them and stored as iPXE stores them
(``mkdir=-1`` wraps to "all", an absurd mode is cut to eight hex digits), so odd arguments
give iPXE's odd bytes, not a traceback. Nothing here copies image data into memory: the
layout is a list of segments, written to a spool file (or hashed) in chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pyipxe.image.spool import CHUNK, SpoolFile

INITRD_ALIGN = 4096
CPIO_ALIGN = 4
CPIO_MAGIC = b"070701"
CPIO_HEADER_LEN = 110
MODE_FILE = 0o100000
MODE_DIR = 0o040000
DEFAULT_MODE = 0o644
DEFAULT_DIR_MODE = 0o755


def strtoul(text: str, base: int) -> int:
    """C's ``strtoul`` on ``text`` (64-bit unsigned long): leading digits only, "-" wraps."""
    text = text.lstrip(" \t\n\v\f\r")
    negative = text[:1] == "-"
    if text[:1] in "+-" and text:
        text = text[1:]
    if base == 16 and text[:2].lower() == "0x":
        text = text[2:]
    digits = ""
    for char in text:
        if char.isascii() and char.isalnum() and int(char, 36) < base:
            digits += char
        else:
            break
    value = int(digits, base) if digits else 0
    if value >= 1 << 64:
        return (1 << 64) - 1  # ULONG_MAX on overflow
    return (-value if negative else value) & ((1 << 64) - 1)


def image_argument(cmdline: str, key: str) -> str | None:
    """iPXE's image_argument: the text after ``key`` where a word starts with it."""
    for word in cmdline.split(" "):
        if word.startswith(key):
            return word[len(key):]
    return None


@dataclass(frozen=True)
class CpioEntry:
    path: str
    mode: int  # the full st_mode as stored (type bits included)
    size: int

    @property
    def is_dir(self) -> bool:
        return self.mode & 0o170000 == MODE_DIR

    def header(self) -> bytes:
        """The newc header, the name, its NUL and padding to 4 bytes."""
        name = self.path.encode("utf-8", "surrogateescape")
        fields = [0, self.mode, 0, 0, 1, 0, self.size, 0, 0, 0, 0, len(name) + 1, 0]
        text = b"".join(f"{value:08x}".encode()[:8] for value in fields)  # snprintf into 9 bytes
        raw = CPIO_MAGIC + text + name
        return raw + b"\0" * (CPIO_ALIGN - len(raw) % CPIO_ALIGN)  # at least the NUL


def _levels(path: str) -> list[tuple[str, bool]]:
    """Each directory level of ``path`` then the file itself: (name, is_dir).

    A level ends where a run of slashes follows a non-slash character; leading slashes
    belong to the first level and are kept, as are doubled slashes inside. A path ending
    in slashes names a directory and has no file level.
    """
    levels: list[tuple[str, bool]] = []
    seen_name = False
    for index, char in enumerate(path):
        if char == "/":
            if seen_name and path[index - 1] != "/":
                levels.append((path[:index], True))
        else:
            seen_name = True
    if not seen_name:
        return []
    if not path.endswith("/"):
        levels.append((path, False))
    return levels


def cpio_entries(cmdline: str | None, length: int) -> list[CpioEntry]:
    """The CPIO entries iPXE writes before an image with this command line (none → raw)."""
    if not cmdline:
        return []
    path = cmdline.split(" ", 1)[0]
    levels = _levels(path)
    if not levels:
        return []
    mode = DEFAULT_MODE
    argument = image_argument(cmdline, "mode=")
    if argument is not None:
        mode = strtoul(argument, 8) & 0xFFFFFFFF  # an unsigned int in iPXE
    count = 1
    argument = image_argument(cmdline, "mkdir=")
    if argument is not None:
        count = (count + strtoul(argument, 10)) & 0xFFFFFFFF
    if count == 0:
        count = len(levels)  # mkdir=-1: the whole tree
    chosen = levels[len(levels) - min(count, len(levels)):]
    return [CpioEntry(name, MODE_DIR | DEFAULT_DIR_MODE, 0) if is_dir
            else CpioEntry(name, MODE_FILE | mode, length)
            for name, is_dir in chosen]


def cpio_prefix(cmdline: str | None, length: int) -> bytes:
    return b"".join(entry.header() for entry in cpio_entries(cmdline, length))


# -- the whole initrd ---------------------------------------------------------------------

@dataclass
class InitrdPart:
    """One image's place in the initrd."""

    name: str
    data: SpoolFile
    cmdline: str | None
    #: offset of the part (its CPIO headers, if any) in the initrd; a multiple of 4096
    offset: int = 0
    entries: list[CpioEntry] = field(default_factory=list)
    prefix: bytes = b""

    @property
    def length(self) -> int:
        return self.data.length

    @property
    def data_offset(self) -> int:
        return self.offset + len(self.prefix)

    @property
    def end(self) -> int:
        return self.data_offset + self.length


@dataclass
class InitrdLayout:
    """The concatenation, described as segments: padding, CPIO prefixes, image bytes."""

    parts: list[InitrdPart]

    @property
    def length(self) -> int:
        return self.parts[-1].end if self.parts else 0

    def segments(self) -> Iterator[bytes]:
        position = 0
        for part in self.parts:
            if part.offset > position:
                yield bytes(part.offset - position)
            if part.prefix:
                yield part.prefix
            yield from part.data.chunks(CHUNK)
            position = part.end

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for segment in self.segments():
            digest.update(segment)
        return digest.hexdigest()

    def spool(self) -> SpoolFile:
        """The initrd as one file. A lone raw image is used as it is (no copy)."""
        if len(self.parts) == 1 and not self.parts[0].prefix:
            return self.parts[0].data
        spool = SpoolFile()
        position = 0
        for segment in self.segments():
            spool.write(position, segment)
            position += len(segment)
        return spool


def layout(images: Sequence[tuple[str, SpoolFile, str | None]]) -> InitrdLayout:
    """Lay ``(name, data, cmdline)`` images out as iPXE does, in the order given."""
    parts: list[InitrdPart] = []
    position = 0
    for name, data, cmdline in images:
        position = (position + INITRD_ALIGN - 1) // INITRD_ALIGN * INITRD_ALIGN
        entries = cpio_entries(cmdline, data.length)
        part = InitrdPart(name, data, cmdline, position, entries, b"".join(entry.header() for entry in entries))
        parts.append(part)
        position = part.end
    return InitrdLayout(parts)
