"""Image bytes spooled to an unnamed temporary file.

Why a file: a 1 GiB initrd must never need 1 GiB of RAM, and a download that fails or is
interrupted must leave nothing behind. ``tempfile.TemporaryFile`` gives an O_TMPFILE
(or immediately unlinked) file on Linux: it has no name, so even a crash or SIGKILL
leaves no temporary file; closing it frees the space. Writes go to explicit offsets
(``pwrite``), so resumed or windowed transfers can land out of order.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20


def spool_directory() -> str:
    """``$PYIPXE_SPOOL``, else ``$TMPDIR``, else /var/tmp (disk, unlike a tmpfs /tmp)."""
    for candidate in (os.environ.get("PYIPXE_SPOOL"), os.environ.get("TMPDIR"), "/var/tmp"):
        if candidate and Path(candidate).is_dir() and os.access(candidate, os.W_OK):
            return candidate
    return tempfile.gettempdir()


class SpoolFile:
    """A growable byte store backed by an unnamed file; implements the download ``Sink``."""

    def __init__(self, data: bytes = b"", *, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory or spool_directory())  # noqa: SIM115 - lives as long as the image
        self._fd = self._file.fileno()
        self.length = 0
        self.expected: int | None = None
        if data:
            self.write(0, data)

    # -- Sink -------------------------------------------------------------------------
    def set_length(self, length: int) -> None:
        self.expected = length

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        position = offset
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written
        self.length = max(self.length, position)

    # -- reading ----------------------------------------------------------------------
    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        if size is None:
            size = self.length - offset
        size = max(0, min(size, self.length - offset))
        return os.pread(self._fd, size, offset) if size else b""

    def chunks(self, chunk: int = CHUNK) -> Iterator[bytes]:
        offset = 0
        while offset < self.length:
            data = self.read(offset, chunk)
            if not data:
                break
            offset += len(data)
            yield data

    def digest(self, algorithm: str) -> bytes:
        hasher = hashlib.new(algorithm)
        for data in self.chunks():
            hasher.update(data)
        return hasher.digest()

    def truncate(self, length: int) -> None:
        os.ftruncate(self._fd, length)
        self.length = length

    def fileno(self) -> int:
        """For consumers that need a real file (kexec_file_load, QEMU)."""
        return self._fd

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __len__(self) -> int:
        return self.length
