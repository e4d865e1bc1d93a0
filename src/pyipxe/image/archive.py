"""Extracting archive images: gzip and zlib (iPXE's imgextract and archive execution).

Why streaming: a compressed initrd can expand to gigabytes; it is inflated chunk by
chunk from one spool file into another, never held in memory. Python's zlib does the
inflating (a maintained C library), we only frame it as iPXE does.
"""

from __future__ import annotations

import zlib

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.image.spool import SpoolFile

# core/archive.c (not an archive type) and image/gzip.c, image/zlib.c (corrupt data);
# the archive.c file number is assumed (it is newer than the errfile.h we could read)
ERR_NOT_ARCHIVE = ErrorSite(ErrorClass.ENOTSUP, 0x3F20)
ERR_CORRUPT_GZIP = ErrorSite(ErrorClass.EINVAL, 0x0880)
ERR_CORRUPT_ZLIB = ErrorSite(ErrorClass.EINVAL, 0x0980)

CHUNK = 1 << 20


def _inflate(source: SpoolFile, wbits: int, error: ErrorSite) -> SpoolFile:
    target = SpoolFile()
    inflater = zlib.decompressobj(wbits)
    offset = 0
    try:
        for chunk in source.chunks(CHUNK):
            data = inflater.decompress(chunk)
            while data:
                target.write(offset, data)
                offset += len(data)
                data = inflater.decompress(inflater.unconsumed_tail, CHUNK) if inflater.unconsumed_tail else b""
            if inflater.eof:
                break
        tail = inflater.flush()
        if tail:
            target.write(offset, tail)
        if not inflater.eof:
            raise IpxeError(error)
    except zlib.error:
        target.close()
        raise IpxeError(error) from None
    except IpxeError:
        target.close()
        raise
    return target


def extract(registry: ImageRegistry, image: Image, name: str | None = None) -> Image:
    """A new registered image holding ``image``'s contents (archive.c's image_extract)."""
    kind = image.type.name if image.type is not None else ""
    if kind == "gzip":
        data = _inflate(image.data, 16 + zlib.MAX_WBITS, ERR_CORRUPT_GZIP)
    elif kind == "zlib":
        data = _inflate(image.data, zlib.MAX_WBITS, ERR_CORRUPT_ZLIB)
    else:
        raise IpxeError(ERR_NOT_ARCHIVE)
    new_name = name if name is not None else image.name
    if name is None and "." in new_name:
        new_name = new_name[:new_name.rindex(".")]
    extracted = registry.new_image(image.uri, data, name=new_name)
    extracted.trusted = image.trusted
    registry.register(extracted)
    return extracted


async def execute_archive(registry: ImageRegistry, image: Image) -> None:
    """Executing an archive extracts it and replaces itself with the result (same cmdline)."""
    extracted = extract(registry, image)
    extracted.cmdline = image.cmdline
    extracted.autofree = True
    registry.replace_current(extracted)
