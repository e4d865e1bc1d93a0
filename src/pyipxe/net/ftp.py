"""The asyncio driver for ``ftp://`` downloads, and the TCP streams the FTP and NFS drivers share.

Why hand-written: the protocol lives in :mod:`pyipxe.proto.ftp` (no sans-IO FTP library
exists; ``ftplib`` blocks). This module moves bytes: the control connection's to the state
machine and back, the data connection's straight into the sink at increasing offsets.

What iPXE does and we do too (reference §4.2, net/tcp/ftp.c): passive mode only; USER, PASS,
TYPE I, SIZE, PASV, RETR, QUIT; the data connection goes to the address the 227 reply names;
errors carry iPXE's numbers (any refused command is EPROTO, a closed port "Connection reset").

What we add: ``TCP_NODELAY`` on the control connection (each command is one small segment),
large receive buffers read with ``recv_into`` (:class:`Stream`, no per-chunk allocation), a
connect timeout and an inactivity timeout (:data:`IDLE_TIMEOUT`) on the whole session, where
iPXE relies on TCP's retransmission limit and the caller's ``--timeout``.

:class:`Stream` and :func:`connect_tcp` are shared with :mod:`pyipxe.net.nfs`; they belong in
a ``net/tcp.py`` once more drivers need them.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.proto import ftp as proto
from pyipxe.uri import uri_port

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
                                 idle: float = IDLE_TIMEOUT) -> None:
    """Wait for ``finished``; fail with TCP's timeout once no stream has received for ``idle`` s."""
    while True:
        latest = max((stream.last_activity for stream in streams()), default=time.monotonic())
        remaining = latest + idle - time.monotonic()
        if remaining <= 0:
            raise IpxeError(ERR_TCP_TIMEOUT)
        done, _ = await asyncio.wait({finished}, timeout=remaining)
        if done:
            finished.result()
            return


# ---- the FTP driver -----------------------------------------------------------------------------


async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    """Download an ``ftp://`` URI into ``sink``; see the module docstring."""
    uri = request.uri
    if not uri.host or not uri.path:
        raise IpxeError(proto.ERR_INVALID)  # ftp_open's sanity checks
    client = proto.FtpClient(uri.path, uri.user, uri.password)
    addresses = await env.resolve(uri.host)
    if not addresses:
        raise IpxeError(proto.ERR_INVALID)
    session = _Session(client, sink, env)
    try:
        await session.run(addresses[0], uri_port(uri, proto.FTP_PORT))
    finally:
        session.close()
    return FetchResult(uri, session.offset)


class _Session:
    def __init__(self, client: proto.FtpClient, sink: Sink, env: FetchEnv) -> None:
        self.client = client
        self.sink = sink
        self.env = env
        self.offset = 0
        self.server: Address | None = None
        self.control: Stream | None = None
        self.data: Stream | None = None
        self._data_task: asyncio.Task[None] | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self, server: Address, port: int) -> None:
        self.server = server
        self.control = await connect_tcp(server, port, self._on_control, self._on_control_end,
                                         buffer_size=CONTROL_BUFFER, nodelay=True)
        await wait_with_idle_timeout(self.finished, lambda: [s for s in (self.control, self.data) if s])

    def close(self) -> None:
        if self._data_task is not None and not self._data_task.done():
            self._data_task.cancel()
        for stream in (self.data, self.control):
            if stream is not None:
                stream.close()
        if not self.finished.done():
            self.finished.cancel()

    # -- control connection

    def _on_control(self, view: memoryview) -> None:
        self._act(self.client.receive(bytes(view)))

    def _on_control_end(self, error: BaseException | None) -> None:
        if error is not None:
            self._fail(error)
        else:
            self._act(self.client.control_closed())

    def _act(self, outputs: list[proto.Output]) -> None:
        for output in outputs:
            if isinstance(output, proto.Send):
                self.env.log(f"FTP > {output.data.decode('latin-1').rstrip()}")
                assert self.control is not None
                self.control.send(output.data)
            elif isinstance(output, proto.SizeKnown):
                self.sink.set_length(output.size)
            elif isinstance(output, proto.OpenData):
                self._data_task = asyncio.ensure_future(self._open_data(output.host, output.port))
            elif isinstance(output, proto.Done):
                if not self.finished.done():
                    self.finished.set_result(None)
            else:
                self.env.log(f"FTP: {output.reason}")
                self._fail(output.error)

    def _fail(self, error: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(error)

    # -- data connection

    async def _open_data(self, host: str, port: int) -> None:
        address: Address = ip_address(host)
        if address.is_unspecified and self.server is not None:
            address = self.server  # "227 (0,0,0,0,…)": the control connection's server
        try:
            self.data = await connect_tcp(address, port, self._on_data, self._on_data_end)
        except IpxeError as error:
            self._fail(error)

    def _on_data(self, view: memoryview) -> None:
        self.sink.write(self.offset, view)
        self.offset += len(view)

    def _on_data_end(self, error: BaseException | None) -> None:
        if error is not None:
            self._fail(error)
        else:
            self._act(self.client.data_finished())

