"""SMBIOS structures as iPXE addresses them: ``${smbios/<type>.<offset>.<length>}``.

Why: scripts read vendor fields by raw position (``${smbios/2.5.0}``, the base board's
product), not only through the named settings. Linux exposes the firmware's table at
``/sys/firmware/dmi/tables/DMI``; this module decodes it the way iPXE's smbios_settings
does: a tag packs instance, type, offset and length in its four bytes; a length of 0
means "the byte at offset is a string number"; an offset of 0 means "length is the
string number"; anything else is ``length`` raw bytes (hex by default).

Rules: the table is untrusted input: truncated or malformed structures end the walk,
they never raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DMI_TABLE = Path("/sys/firmware/dmi/tables/DMI")
END_OF_TABLE = 127


@dataclass(frozen=True)
class Structure:
    type: int
    formatted: bytes  # the formatted area, header included
    strings: tuple[bytes, ...]


def parse_table(data: bytes) -> list[Structure]:
    structures: list[Structure] = []
    position = 0
    while position + 4 <= len(data):
        kind, length = data[position], data[position + 1]
        if length < 4 or position + length > len(data):
            break
        formatted = data[position : position + length]
        end = data.find(b"\0\0", position + length)
        if end < 0:
            break
        area = data[position + length : end]
        strings = tuple(area.split(b"\0")) if area else ()
        structures.append(Structure(kind, formatted, strings))
        position = end + 2
        if kind == END_OF_TABLE:
            break
    return structures


def smbios_tag(kind: int, offset: int, length: int, instance: int = 0) -> int:
    return (instance << 24) | (kind << 16) | (offset << 8) | length


def fetch(structures: list[Structure], tag: int) -> tuple[bytes, bool] | None:
    """(value, is_string) for ``tag``, or None when the structure or field is absent."""
    instance, kind, offset, length = (tag >> 24) & 0xFF, (tag >> 16) & 0xFF, (tag >> 8) & 0xFF, tag & 0xFF
    matches = [s for s in structures if s.type == kind]
    if instance >= len(matches):
        return None
    structure = matches[instance]
    if length == 0 or offset == 0:
        if offset == 0:
            index = length
        elif offset < len(structure.formatted):
            index = structure.formatted[offset]
        else:
            return None
        if index == 0 or index > len(structure.strings):
            return None
        return structure.strings[index - 1], True
    if offset + length > len(structure.formatted):
        return None
    return structure.formatted[offset : offset + length], False


def load_table(path: Path = DMI_TABLE) -> list[Structure] | None:
    try:
        return parse_table(path.read_bytes())
    except OSError:
        return None
