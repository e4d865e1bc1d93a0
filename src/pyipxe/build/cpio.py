"""The newc ("070701") cpio format Linux unpacks as its initramfs: a writer and a reader.

Why hand-written: the format is a 110-byte ASCII header, a name and the data, each padded
to four bytes — smaller than any wrapper around cpio(1) — and writing it here is what
makes images reproducible: entries are sorted by path, inode numbers count up in that
order, and every owner, group and timestamp is fixed (``mtime``, normally 0 or
``SOURCE_DATE_EPOCH``), so the same tree gives the same bytes on any machine.

The reader exists for tests and for ``pyipxe build`` to check its own output; it treats
its input as untrusted (bad magic, short data, absurd sizes → :class:`CpioError`, never an
IndexError).
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAGIC = b"070701"
HEADER_LEN = 110
TRAILER = "TRAILER!!!"
FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
          "rdevmajor", "rdevminor", "namesize", "check")


class CpioError(ValueError):
    """The bytes are not a well-formed newc archive."""


@dataclass(frozen=True)
class Entry:
    """One member: ``path`` relative to the root, without a leading slash."""

    path: str
    mode: int  # file type bits included (stat.S_IFREG | 0o644 …)
    data: bytes = b""  # a file's contents, or a symlink's target
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node

    @property
    def kind(self) -> str:
        return {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink",
                stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}.get(stat.S_IFMT(self.mode), "other")


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | mode)


def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | mode, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, mode: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | mode, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(ino: int, entry: Entry, name: bytes, mtime: int) -> bytes:
    values = (ino, entry.mode, 0, 0, 2 if entry.kind == "dir" else 1, mtime, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(name) + 1, 0)
    return MAGIC + b"".join(b"%08X" % value for value in values)


def _member(ino: int, entry: Entry, mtime: int) -> Iterator[bytes]:
    name = entry.path.encode()
    yield _header(ino, entry, name, mtime)
    yield name + b"\0" + _pad(HEADER_LEN + len(name) + 1)
    if entry.data:
        yield entry.data
        yield _pad(len(entry.data))


def write(entries: Iterable[Entry], *, mtime: int = 0) -> bytes:
    """The archive of ``entries``: sorted by path, duplicates refused, closed by the trailer."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = entry.path.strip("/")
        if not path or path == TRAILER:
            raise CpioError(f"bad member name {entry.path!r}")
        entry = entry if path == entry.path else Entry(path, entry.mode, entry.data, entry.rdev)
        if by_path.setdefault(path, entry) != entry:
            raise CpioError(f"two different members named {path!r}")
    parts: list[bytes] = []
    for ino, path in enumerate(sorted(by_path), start=1):
        parts.extend(_member(ino, by_path[path], mtime))
    parts.extend(_member(0, Entry(TRAILER, 0), 0))
    return b"".join(parts)


def read(archive: bytes) -> list[Entry]:
    """The members of one newc archive (up to its trailer), as written by :func:`write` or cpio(1)."""
    entries: list[Entry] = []
    offset = 0
    while True:
        header = archive[offset:offset + HEADER_LEN]
        if len(header) < HEADER_LEN:
            raise CpioError(f"archive ends inside a header at offset {offset}")
        if header[:6] != MAGIC:
            raise CpioError(f"bad magic {header[:6]!r} at offset {offset}")
        try:
            values = dict(zip(FIELDS, (int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)), strict=True))
        except ValueError:
            raise CpioError(f"bad header at offset {offset}") from None
        name_start = offset + HEADER_LEN
        name_end = name_start + values["namesize"]
        if values["namesize"] < 1 or name_end > len(archive) or archive[name_end - 1] != 0:
            raise CpioError(f"bad member name at offset {offset}")
        name = archive[name_start:name_end - 1].decode("utf-8", "surrogateescape")
        data_start = name_end + (-name_end % 4)
        data_end = data_start + values["filesize"]
        if data_end > len(archive):
            raise CpioError(f"member {name!r} is cut short")
        if name == TRAILER:
            return entries
        entries.append(Entry(name, values["mode"], archive[data_start:data_end],
                             (values["rdevmajor"], values["rdevminor"])))
        offset = data_end + (-data_end % 4)
