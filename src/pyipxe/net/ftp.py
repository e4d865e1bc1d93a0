"""The asyncio driver for ``ftp://`` downloads.

Why hand-written: the protocol lives in :mod:`pyipxe.proto.ftp` (no sans-IO FTP library
exists; ``ftplib`` blocks). This module moves bytes: the control connection's to the state
machine and back, the data connection's straight into the sink at increasing offsets.

What iPXE does and we do too (reference §4.2, net/tcp/ftp.c): passive mode only; USER, PASS,
TYPE I, SIZE, PASV, RETR, QUIT; the data connection goes to the address the 227 reply names;
errors carry iPXE's numbers (any refused command is EPROTO, a closed port "Connection reset").

What we add: ``TCP_NODELAY`` on the control connection (each command is one small segment),
large receive buffers read with ``recv_into`` (:class:`Stream`, no per-chunk allocation), a
connect timeout and an inactivity timeout (:data:`pyipxe.net.tcp.IDLE_TIMEOUT`) on the whole session, where
iPXE relies on TCP's retransmission limit and the caller's ``--timeout``.

TCP streams and TCP's errors come from :mod:`pyipxe.net.tcp` (shared with the NFS driver).
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

from pyipxe.errors import IpxeError
from pyipxe.net.tcp import CONTROL_BUFFER, Address, Stream, connect_tcp, wait_with_idle_timeout
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.proto import ftp as proto
from pyipxe.uri import uri_port

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

