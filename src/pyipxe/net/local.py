"""``data:`` and ``file:`` URIs: images that need no network.

``data:`` is iPXE's (reference §4.2). ``file:`` is iPXE's on EFI (files of the boot
volume); on Linux the natural meaning is a local path, which is what pyipxe gives it:
``file:/abs``, ``file:///abs`` and ``file:relative`` (relative to the working directory).
"""

from __future__ import annotations

import asyncio
import os

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.uri import Uri, parse_data_uri, uri_decode

# Guessed sites (iPXE's efi_local.c has no Linux counterpart): missing file, unreadable file
ERR_NO_FILE = ErrorSite(ErrorClass.ENOENT, 0x7F00)
ERR_UNREADABLE = ErrorSite(ErrorClass.EACCES, 0x7F00)
ERR_READ = ErrorSite(ErrorClass.EIO, 0x7F00)

CHUNK = 1 << 20


def local_path(uri: Uri) -> str:
    if uri.opaque is not None:
        return uri_decode(uri.opaque).decode("utf-8", "surrogateescape")
    return uri_decode(uri.path or "").decode("utf-8", "surrogateescape")


async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    uri = request.uri
    if (uri.scheme or "").lower() == "data":
        data = parse_data_uri(uri)
        sink.set_length(len(data))
        if data:
            sink.write(0, data)
        return FetchResult(uri, len(data))
    path = local_path(uri)
    env.log(f"file: reading {path}")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise IpxeError(ERR_NO_FILE) from None
    except PermissionError:
        raise IpxeError(ERR_UNREADABLE) from None
    except OSError:
        raise IpxeError(ERR_READ) from None
    try:
        size = os.fstat(fd).st_size
        sink.set_length(size)
        offset = 0
        while True:
            try:
                data = os.pread(fd, CHUNK, offset)
            except IsADirectoryError:
                raise IpxeError(ERR_NO_FILE) from None
            except OSError:
                raise IpxeError(ERR_READ) from None
            if not data:
                break
            sink.write(offset, data)
            offset += len(data)
            await asyncio.sleep(0)
        return FetchResult(uri, offset)
    finally:
        os.close(fd)
