"""One interface between the image commands and every download protocol.

Why: iPXE's image commands do not care which protocol delivers the bytes (its "xfer"
interfaces); neither do ours. A protocol driver is an ``async`` function

    async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult

living in ``pyipxe.net.<module>`` and named in :data:`DRIVERS` by URI scheme. It writes
the body into ``sink`` (at explicit offsets, so a resumed HTTP body or a windowed TFTP
transfer can land where it belongs), raises :class:`pyipxe.errors.IpxeError` with iPXE's
error numbers on failure, and returns the final URI (after redirects) and length.

Drivers are imported only when their scheme is used, which keeps ``pyipxe run`` fast.
The caller (``image/fetch.py``) owns progress display, the ``--timeout`` inactivity
watchdog, spooling and cleanup; drivers own their protocol's own timeouts.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.uri import Uri

# core/open.c: "Operation not supported" for a scheme nobody opens
ERR_UNSUPPORTED_SCHEME = ErrorSite(ErrorClass.ENOTSUP, 0x0920)

#: scheme → module in ``pyipxe.net`` whose ``fetch`` downloads it
DRIVERS: dict[str, str] = {
    "http": "pyipxe.net.http",
    "https": "pyipxe.net.http",
    "tftp": "pyipxe.net.tftp",
    "ftp": "pyipxe.net.ftp",
    "nfs": "pyipxe.net.nfs",
    "file": "pyipxe.net.local",
    "data": "pyipxe.net.local",
}


class Sink(Protocol):
    """Where a driver puts the bytes it receives."""

    def set_length(self, length: int) -> None:
        """The total length, once the protocol tells it (progress shows a percentage)."""

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Store ``data`` at ``offset``; drivers may write out of order and rewrite.

        ``data`` may be a view of the driver's receive buffer, valid only during the call:
        a sink that keeps bytes must copy them (the spool writes them to its file at once).
        """


@dataclass
class RequestParams:
    """A ``params`` list (``##params[=name]``): form fields and headers (reference §4.4)."""

    name: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    method: str | None = None


@dataclass
class FetchRequest:
    uri: Uri
    params: RequestParams | None = None


@dataclass
class FetchResult:
    uri: Uri
    length: int


Address = IPv4Address | IPv6Address


@dataclass
class TlsConfig:
    """How HTTPS verifies servers and presents a client certificate (issue 7 extends it)."""

    trust_files: list[str] = field(default_factory=list)
    system_roots: bool = True
    client_cert: str | None = None
    client_key: str | None = None


@dataclass
class FetchEnv:
    """What a driver may use; one per session, so HTTP keep-alive pools live here."""

    resolve: Callable[[str], Awaitable[list[Address]]]
    setting: Callable[[str], str | None] = lambda name: None
    tls: TlsConfig = field(default_factory=TlsConfig)
    log: Callable[[str], None] = lambda message: None
    #: per-driver state kept across fetches (connection pools); drivers key it by module name
    state: dict[str, object] = field(default_factory=dict)


Driver = Callable[[FetchRequest, Sink, FetchEnv], Awaitable[FetchResult]]



def driver_for(scheme: str | None) -> Driver:
    module = DRIVERS.get((scheme or "").lower())
    if module is None:
        raise IpxeError(ERR_UNSUPPORTED_SCHEME)
    try:
        fetch: Driver = importlib.import_module(module).fetch
    except (ModuleNotFoundError, AttributeError):  # a protocol left out of this build
        raise IpxeError(ERR_UNSUPPORTED_SCHEME) from None
    return fetch


async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    """Download ``request.uri`` into ``sink`` with the driver for its scheme."""
    return await driver_for(request.uri.scheme)(request, sink, env)
