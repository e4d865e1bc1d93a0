"""iPXE's error numbers, computed exactly as iPXE computes them.

Why this exists: scripts test ``${errno}`` and users look errors up on ipxe.org by the
8-hex-digit code, so pyipxe must produce the *same numbers* as the firmware it replaces.

An iPXE error number packs four things (reference §1.8)::

    bits 30..24  POSIX-like class (ENOENT = 0x2d ...)
    bits 23..8   where it was raised: source-file id and a per-site disambiguator
    bits  7..0   the platform's own code for that class (PXENV status on BIOS,
                 EFI_STATUS | 0x80 on EFI, the Linux errno on iPXE's Linux platform)

Rules of this module:
- An :class:`ErrorSite` names one place that raises one error (class + bits 23..8); the
  platform byte is only filled in when the code is needed, because the platform pyipxe
  presents (``${platform}``) is a runtime choice.
- Nothing here knows about commands or settings; callers define their sites next to the
  code that raises them.
"""

from __future__ import annotations

import errno as _linux_errno
from dataclasses import dataclass
from enum import IntEnum


class ErrorClass(IntEnum):
    """iPXE's POSIX-like error classes (bits 30..24)."""

    ENOERR = 0x00
    E2BIG = 0x01
    EACCES = 0x02
    EADDRINUSE = 0x03
    EADDRNOTAVAIL = 0x04
    EAFNOSUPPORT = 0x05
    EAGAIN = 0x06
    EALREADY = 0x07
    EBADF = 0x08
    EBADMSG = 0x09
    EBUSY = 0x0A
    ECANCELED = 0x0B
    ECHILD = 0x0C
    ECONNABORTED = 0x0D
    ECONNREFUSED = 0x0E
    ECONNRESET = 0x0F
    EDEADLK = 0x10
    EDESTADDRREQ = 0x11
    EDOM = 0x12
    EDQUOT = 0x13
    EEXIST = 0x14
    EFAULT = 0x15
    EFBIG = 0x16
    EHOSTUNREACH = 0x17
    EIDRM = 0x18
    EILSEQ = 0x19
    EINPROGRESS = 0x1A
    EINTR = 0x1B
    EINVAL = 0x1C
    EIO = 0x1D
    EISCONN = 0x1E
    EISDIR = 0x1F
    ELOOP = 0x20
    EMFILE = 0x21
    EMLINK = 0x22
    EMSGSIZE = 0x23
    EMULTIHOP = 0x24
    ENAMETOOLONG = 0x25
    ENETDOWN = 0x26
    ENETRESET = 0x27
    ENETUNREACH = 0x28
    ENFILE = 0x29
    ENOBUFS = 0x2A
    ENODATA = 0x2B
    ENODEV = 0x2C
    ENOENT = 0x2D
    ENOEXEC = 0x2E
    ENOLCK = 0x2F
    ENOLINK = 0x30
    ENOMEM = 0x31
    ENOMSG = 0x32
    ENOPROTOOPT = 0x33
    ENOSPC = 0x34
    ENOSR = 0x35
    ENOSTR = 0x36
    ENOSYS = 0x37
    ENOTCONN = 0x38
    ENOTDIR = 0x39
    ENOTEMPTY = 0x3A
    ENOTSOCK = 0x3B
    ENOTSUP = 0x3C
    ENOTTY = 0x3D
    ENXIO = 0x3E
    EOVERFLOW = 0x40
    EPERM = 0x41
    EPIPE = 0x42
    EPROTO = 0x43
    EPROTONOSUPPORT = 0x44
    EPROTOTYPE = 0x45
    ERANGE = 0x46
    EROFS = 0x47
    ESPIPE = 0x48
    ESRCH = 0x49
    ESTALE = 0x4A
    ETIME = 0x4B
    ETIMEDOUT = 0x4C
    ETXTBSY = 0x4D
    EXDEV = 0x4F


C = ErrorClass

# Texts iPXE prints for a whole class when no more specific text exists.
GENERIC_TEXT: dict[ErrorClass, str] = {
    C.ENOERR: "Operation completed successfully",
    C.EACCES: "Permission denied",
    C.ECANCELED: "Operation canceled",
    C.ECONNRESET: "Connection reset",
    C.EINVAL: "Invalid argument",
    C.EIO: "Input/output error",
    C.ENETUNREACH: "Network unreachable",
    C.ENODEV: "No such device",
    C.ENOENT: "No such file or directory",
    C.ENOEXEC: "Exec format error",
    C.ENOMEM: "Not enough space",
    C.ENOSPC: "No space left on device",
    C.ENOTCONN: "The socket is not connected",
    C.ENOTSUP: "Operation not supported",
    C.EPERM: "Operation not permitted",
    C.ERANGE: "Result too large",
    C.ETIMEDOUT: "Connection timed out",
}

# PXENV status codes (PXE specification) used as BIOS platform codes.
_PXENV_FAILURE = 0x01
_PXENV_BAD_FUNC = 0x02
_PXENV_UNSUPPORTED = 0x03
_PXENV_OUT_OF_RESOURCES = 0x06
_PXENV_ARP_TIMEOUT = 0x11
_PXENV_UDP_OPEN = 0x19
_PXENV_TFTP_CLOSED = 0x1A
_PXENV_TFTP_OPEN = 0x1B
_PXENV_MCOPY_PROBLEM = 0x20
_PXENV_READ_TIMEOUT = 0x35
_PXENV_CANNOT_OPEN = 0x38
_PXENV_CANNOT_READ = 0x39
_PXENV_NOT_FOUND = 0x3B
_PXENV_ACCESS = 0x3C
_PXENV_CANCELED = 0xA0

_BIOS: dict[ErrorClass, int] = {
    C.E2BIG: _PXENV_BAD_FUNC, C.EACCES: _PXENV_ACCESS, C.EADDRINUSE: _PXENV_UDP_OPEN,
    C.EADDRNOTAVAIL: _PXENV_UDP_OPEN, C.EAFNOSUPPORT: _PXENV_UNSUPPORTED, C.EALREADY: _PXENV_UDP_OPEN,
    C.EBADF: _PXENV_TFTP_CLOSED, C.EBUSY: _PXENV_OUT_OF_RESOURCES, C.ECANCELED: _PXENV_CANCELED,
    C.ECHILD: _PXENV_NOT_FOUND, C.ECONNABORTED: _PXENV_CANNOT_READ, C.ECONNREFUSED: _PXENV_CANNOT_OPEN,
    C.ECONNRESET: _PXENV_CANNOT_READ, C.EDESTADDRREQ: _PXENV_BAD_FUNC, C.EFAULT: _PXENV_MCOPY_PROBLEM,
    C.EFBIG: _PXENV_MCOPY_PROBLEM, C.EHOSTUNREACH: _PXENV_ARP_TIMEOUT, C.EINVAL: _PXENV_BAD_FUNC,
    C.EIO: _PXENV_CANNOT_READ, C.EISCONN: _PXENV_UDP_OPEN, C.EMFILE: _PXENV_OUT_OF_RESOURCES,
    C.EMSGSIZE: _PXENV_BAD_FUNC, C.ENETDOWN: _PXENV_ARP_TIMEOUT, C.ENETUNREACH: _PXENV_ARP_TIMEOUT,
    C.ENFILE: _PXENV_OUT_OF_RESOURCES, C.ENOBUFS: _PXENV_OUT_OF_RESOURCES, C.ENODEV: _PXENV_NOT_FOUND,
    C.ENOENT: _PXENV_NOT_FOUND, C.ENOMEM: _PXENV_OUT_OF_RESOURCES, C.ENOPROTOOPT: _PXENV_UNSUPPORTED,
    C.ENOSPC: _PXENV_OUT_OF_RESOURCES, C.ENOSR: _PXENV_OUT_OF_RESOURCES, C.ENOSYS: _PXENV_UNSUPPORTED,
    C.ENOTSUP: _PXENV_UNSUPPORTED, C.ENXIO: _PXENV_NOT_FOUND, C.EPERM: _PXENV_ACCESS,
    C.EPROTONOSUPPORT: _PXENV_UNSUPPORTED, C.ESRCH: _PXENV_NOT_FOUND, C.ETIMEDOUT: _PXENV_READ_TIMEOUT,
}

# EFI_STATUS numbers (UEFI specification); the platform byte is the number | 0x80.
_EFI_LOAD_ERROR, _EFI_INVALID_PARAMETER, _EFI_UNSUPPORTED = 1, 2, 3
_EFI_BAD_BUFFER_SIZE, _EFI_BUFFER_TOO_SMALL, _EFI_NOT_READY, _EFI_DEVICE_ERROR = 4, 5, 6, 7
_EFI_WRITE_PROTECTED, _EFI_OUT_OF_RESOURCES, _EFI_VOLUME_CORRUPTED, _EFI_VOLUME_FULL = 8, 9, 10, 11
_EFI_MEDIA_CHANGED, _EFI_NOT_FOUND, _EFI_ACCESS_DENIED, _EFI_NO_RESPONSE = 13, 14, 15, 16
_EFI_TIMEOUT, _EFI_NOT_STARTED, _EFI_ALREADY_STARTED, _EFI_ABORTED = 18, 19, 20, 21
_EFI_PROTOCOL_ERROR, _EFI_END_OF_MEDIA, _EFI_END_OF_FILE = 24, 28, 31

_EFI: dict[ErrorClass, int] = {
    C.E2BIG: _EFI_BUFFER_TOO_SMALL, C.EACCES: _EFI_ACCESS_DENIED, C.EADDRINUSE: _EFI_ALREADY_STARTED,
    C.EADDRNOTAVAIL: _EFI_NOT_READY, C.EAFNOSUPPORT: _EFI_UNSUPPORTED, C.EAGAIN: _EFI_NOT_READY,
    C.EALREADY: _EFI_ALREADY_STARTED, C.EBADF: _EFI_INVALID_PARAMETER, C.EBADMSG: _EFI_PROTOCOL_ERROR,
    C.EBUSY: _EFI_NO_RESPONSE, C.ECANCELED: _EFI_ABORTED, C.ECHILD: _EFI_NOT_FOUND,
    C.ECONNABORTED: _EFI_ABORTED, C.ECONNREFUSED: _EFI_NO_RESPONSE, C.ECONNRESET: _EFI_ABORTED,
    C.EDEADLK: _EFI_NOT_READY, C.EDESTADDRREQ: _EFI_PROTOCOL_ERROR, C.EDOM: _EFI_INVALID_PARAMETER,
    C.EDQUOT: _EFI_VOLUME_FULL, C.EEXIST: _EFI_WRITE_PROTECTED, C.EFAULT: _EFI_INVALID_PARAMETER,
    C.EFBIG: _EFI_END_OF_MEDIA, C.EHOSTUNREACH: _EFI_NO_RESPONSE, C.EIDRM: _EFI_INVALID_PARAMETER,
    C.EILSEQ: _EFI_INVALID_PARAMETER, C.EINPROGRESS: _EFI_ALREADY_STARTED, C.EINTR: _EFI_NOT_READY,
    C.EINVAL: _EFI_INVALID_PARAMETER, C.EIO: _EFI_PROTOCOL_ERROR, C.EISCONN: _EFI_ALREADY_STARTED,
    C.EISDIR: _EFI_PROTOCOL_ERROR, C.ELOOP: _EFI_VOLUME_CORRUPTED, C.EMFILE: _EFI_OUT_OF_RESOURCES,
    C.EMLINK: _EFI_OUT_OF_RESOURCES, C.EMSGSIZE: _EFI_BAD_BUFFER_SIZE, C.EMULTIHOP: _EFI_INVALID_PARAMETER,
    C.ENAMETOOLONG: _EFI_INVALID_PARAMETER, C.ENETDOWN: _EFI_NO_RESPONSE, C.ENETRESET: _EFI_ABORTED,
    C.ENETUNREACH: _EFI_NO_RESPONSE, C.ENFILE: _EFI_OUT_OF_RESOURCES, C.ENOBUFS: _EFI_OUT_OF_RESOURCES,
    C.ENODATA: _EFI_NO_RESPONSE, C.ENODEV: _EFI_DEVICE_ERROR, C.ENOENT: _EFI_NOT_FOUND,
    C.ENOEXEC: _EFI_LOAD_ERROR, C.ENOLCK: _EFI_OUT_OF_RESOURCES, C.ENOLINK: _EFI_OUT_OF_RESOURCES,
    C.ENOMEM: _EFI_OUT_OF_RESOURCES, C.ENOMSG: _EFI_PROTOCOL_ERROR, C.ENOPROTOOPT: _EFI_UNSUPPORTED,
    C.ENOSPC: _EFI_VOLUME_FULL, C.ENOSR: _EFI_OUT_OF_RESOURCES, C.ENOSTR: _EFI_PROTOCOL_ERROR,
    C.ENOSYS: _EFI_UNSUPPORTED, C.ENOTCONN: _EFI_NOT_STARTED, C.ENOTDIR: _EFI_VOLUME_CORRUPTED,
    C.ENOTEMPTY: _EFI_VOLUME_CORRUPTED, C.ENOTSOCK: _EFI_INVALID_PARAMETER, C.ENOTSUP: _EFI_UNSUPPORTED,
    C.ENOTTY: _EFI_UNSUPPORTED, C.ENXIO: _EFI_NOT_FOUND, C.EOVERFLOW: _EFI_BUFFER_TOO_SMALL,
    C.EPERM: _EFI_ACCESS_DENIED, C.EPIPE: _EFI_ABORTED, C.EPROTO: _EFI_PROTOCOL_ERROR,
    C.EPROTONOSUPPORT: _EFI_UNSUPPORTED, C.EPROTOTYPE: _EFI_INVALID_PARAMETER,
    C.ERANGE: _EFI_BUFFER_TOO_SMALL, C.EROFS: _EFI_WRITE_PROTECTED, C.ESPIPE: _EFI_END_OF_FILE,
    C.ESRCH: _EFI_NOT_STARTED, C.ESTALE: _EFI_PROTOCOL_ERROR, C.ETIME: _EFI_TIMEOUT,
    C.ETIMEDOUT: _EFI_TIMEOUT, C.ETXTBSY: _EFI_MEDIA_CHANGED, C.EXDEV: _EFI_VOLUME_CORRUPTED,
}

PLATFORMS = ("pcbios", "efi", "linux")


def platform_code(cls: ErrorClass, platform: str) -> int:
    """The low byte iPXE's ``platform`` build puts into errors of class ``cls``."""
    if cls == C.ENOERR:
        return 0
    if platform == "efi":
        return _EFI.get(cls, _EFI_PROTOCOL_ERROR) | 0x80
    if platform == "linux":
        name = "ENOTSUP" if cls == C.ENOTSUP else cls.name
        return getattr(_linux_errno, name, _linux_errno.EIO) & 0xFF
    return _BIOS.get(cls, _PXENV_FAILURE)


@dataclass(frozen=True)
class ErrorSite:
    """One place that raises one error: its class and bits 23..8 of the number.

    ``text`` is set where iPXE has a message for this exact error ("Not found" for an
    HTTP 404) instead of the class's generic text.
    """

    cls: ErrorClass
    where: int
    text: str | None = None

    def code(self, platform: str) -> int:
        return (self.cls << 24) | ((self.where & 0xFFFF) << 8) | platform_code(self.cls, platform)


# Texts for exact errors, keyed by the number without its platform byte.
_SPECIAL_TEXT: dict[int, str] = {}


def register_special(site: ErrorSite) -> ErrorSite:
    """Record a site's own text so that :func:`describe` finds it from the bare number."""
    if site.text is not None:
        _SPECIAL_TEXT[((site.cls << 24) | (site.where << 8)) & 0x7FFFFF00] = site.text
    return site


def describe(code: int, platform: str) -> str:
    """The text iPXE prints for an error number: exact text, else class text, else ``Error 0x…``."""
    if code == 0:
        return GENERIC_TEXT[C.ENOERR]
    special = _SPECIAL_TEXT.get(code & 0x7FFFFF00)
    if special is not None and code & 0x7FFFFF00:
        return special
    try:
        cls = ErrorClass((code >> 24) & 0x7F)
    except ValueError:
        cls = None
    if cls is not None and cls in GENERIC_TEXT and (code & 0xFF) == platform_code(cls, platform):
        return GENERIC_TEXT[cls]
    return f"Error 0x{code:08x}"


def format_error(code: int, platform: str) -> str:
    """``<text> (https://ipxe.org/<code>)``, the form every iPXE error message ends with."""
    return f"{describe(code, platform)} (https://ipxe.org/{code:08x})"


class IpxeError(Exception):
    """A failure carrying an iPXE error number; the only exception commands raise to fail.

    Either a :class:`ErrorSite` (number computed for the presented platform) or a raw
    number (``exit 3`` returns 3 whatever the platform).
    """

    def __init__(self, site: ErrorSite | None = None, *, raw: int | None = None) -> None:
        if (site is None) == (raw is None):
            raise TypeError("IpxeError needs exactly one of site or raw")
        self.site = site
        self.raw = raw
        super().__init__(site if site is not None else f"0x{raw:08x}")

    def code(self, platform: str) -> int:
        if self.site is not None:
            return self.site.code(platform)
        assert self.raw is not None
        return self.raw & 0xFFFFFFFF

    def message(self, platform: str) -> str:
        return format_error(self.code(platform), platform)
