"""TCP streams for the drivers that speak over TCP themselves (FTP, NFS), and TCP's errors.

Why shared: every TCP-based download needs the same things iPXE's TCP gives it — a connect
timeout, iPXE's error numbers for a reset/refused connection, no route or no neighbour, and
an inactivity timeout — and the same fast receive path (:class:`Stream`: large buffers read
with ``recv_into``, handed on as views, no per-chunk allocation).
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

#: seconds to establish a TCP connection (iPXE's TCP gives up after about 15 s of SYNs)
CONNECT_TIMEOUT = 15.0
#: seconds without a byte from the server before a session fails (ours; see module docstring)
IDLE_TIMEOUT = 60.0
#: receive buffer of a data stream; reads land here and go to the sink without copies
DATA_BUFFER = 1 << 20
CONTROL_BUFFER = 16 << 10

# net/tcp.c (ERRFILE_tcp = net file 0x0a): a reset (or refused) connection and a TCP timeout
ERR_CONNECTION_RESET = ErrorSite(ErrorClass.ECONNRESET, 0x0A60)
ERR_TCP_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x0A60)
# net/ipv4.c: no route (reference §1.8: 28056011); net/neighbour.c: no ARP answer (4c376035)
ERR_NETWORK_UNREACHABLE = ErrorSite(ErrorClass.ENETUNREACH, 0x0560)
ERR_NEIGHBOUR_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x3760)

Address = IPv4Address | IPv6Address


def socket_error(error: BaseException) -> IpxeError:
    """The iPXE error a socket failure stands for."""
    if isinstance(error, IpxeError):
        return error
    if isinstance(error, TimeoutError):
        return IpxeError(ERR_TCP_TIMEOUT)
    code = getattr(error, "errno", None)
    if code == errno.ENETUNREACH:
        return IpxeError(ERR_NETWORK_UNREACHABLE)
    if code == errno.EHOSTUNREACH:
        return IpxeError(ERR_NEIGHBOUR_TIMEOUT)
    if code == errno.ETIMEDOUT:
        return IpxeError(ERR_TCP_TIMEOUT)
    return IpxeError(ERR_CONNECTION_RESET)


class Stream(asyncio.BufferedProtocol):
    """One TCP connection whose bytes go to ``on_data`` as views of a reused buffer.

    ``on_data`` must consume the view before returning (the next read overwrites it);
    ``on_end`` is called once: None for a clean end (EOF), the iPXE error for a failed
    connection, or the very exception ``on_data`` raised (a sink's or a bug's, untranslated).
    """

    def __init__(self, on_data: Callable[[memoryview], None], on_end: Callable[[BaseException | None], None],
                 buffer_size: int) -> None:
        self._on_data = on_data
        self._on_end = on_end
        self._buffer = memoryview(bytearray(buffer_size))
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self.last_activity = time.monotonic()
        self._ended = False

    # -- asyncio.BufferedProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        self.last_activity = time.monotonic()
        try:
            self._on_data(self._buffer[:nbytes])
        except Exception as error:  # a sink or protocol failure ends this connection
            self._end(error, translate=False)

    def eof_received(self) -> bool:
        self._end(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    # -- ours

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close without reporting an end: the caller is finished with this connection."""
        self._ended = True
        if self.transport is not None:
            self.transport.abort()

    def _end(self, error: BaseException | None, *, translate: bool = True) -> None:
        if self._ended:
            return
        self._ended = True
        if self.transport is not None:
            self.transport.close()
        self._on_end(socket_error(error) if error is not None and translate else error)


async def connect_tcp(address: Address, port: int, on_data: Callable[[memoryview], None],
                      on_end: Callable[[BaseException | None], None], *, buffer_size: int = DATA_BUFFER,
                      privileged: bool = False, nodelay: bool = False,
                      timeout: float = CONNECT_TIMEOUT) -> Stream:
    """Connect to ``address``:``port``; with ``privileged``, from a port below 1024 when we may.

    NFS servers often refuse unprivileged ports ("secure" exports); iPXE binds below 1024 for
    that reason. Without root we connect from any port and let the server decide.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    candidates: list[int | None] = [None]
    if privileged and os.geteuid() == 0:
        candidates = [*random.sample(range(600, 1024), 16), None]
    last_error: BaseException | None = None
    for local_port in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if local_port is not None:
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", local_port))
            if nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.wait_for(loop.sock_connect(sock, (str(address), port)), timeout)
        except OSError as error:
            sock.close()
            last_error = error
            if local_port is not None and error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                continue  # that port is taken (or in TIME_WAIT to this server): try another
            raise socket_error(error) from error
        except BaseException:
            sock.close()
            raise
        _, protocol = await loop.create_connection(lambda: Stream(on_data, on_end, buffer_size), sock=sock)
        return protocol
    raise socket_error(last_error or OSError(errno.EADDRINUSE, "no local port"))


async def wait_with_idle_timeout(finished: asyncio.Future[None], streams: Callable[[], list[Stream]],
                                 idle: float | None = None) -> None:
    """Wait for ``finished``; fail with TCP's timeout once no stream has received for ``idle`` s."""
    idle = IDLE_TIMEOUT if idle is None else idle
    started = time.monotonic()
    while True:
        latest = max((stream.last_activity for stream in streams()), default=started)
        remaining = latest + idle - time.monotonic()
        if remaining <= 0:
            raise IpxeError(ERR_TCP_TIMEOUT)
        done, _ = await asyncio.wait({finished}, timeout=remaining)
        if done:
            finished.result()
            return
