"""The asyncio driver for ``nfs://`` downloads: TCP connections and the sink for :mod:`pyipxe.proto.nfs`.

Why hand-written: the protocol lives in the sans-IO client (no sans-IO NFS library exists for
Python); this module opens the connections it asks for, moves bytes both ways and writes
READ data into the sink, out of order as the server answers pipelined READs.

What iPXE does and we do too (reference §4.2, net/oncrpc/*.c): portmapper on TCP 111, MOUNT v3
and NFS v3 over TCP, each connection from a privileged port (below 1024) so that exports
marked "secure" accept us (we need root for that; without it we connect from any port);
AUTH_SYS credentials with the ``hostname`` setting as machine name ("iPXE" when unset) and
the ``uid`` and ``gid`` settings (0 when unset). iPXE sends the ``uid`` setting as the gid
too (oncrpc.c reads ``uid_setting`` twice); we send ``gid``.

What we add: pipelined READs (see :mod:`pyipxe.proto.nfs`), ``TCP_NODELAY``, a connect
timeout and an inactivity timeout (shared with the FTP driver).
"""

from __future__ import annotations

import asyncio

from pyipxe.errors import IpxeError
from pyipxe.net.tcp import Address, Stream, connect_tcp, wait_with_idle_timeout
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.proto import nfs as proto
from pyipxe.proto.oncrpc import AuthSys
from pyipxe.uri import uri_port

#: receive buffer per connection; READ replies of up to 1 MiB arrive through it
BUFFER = 1 << 20


def _uint_setting(env: FetchEnv, name: str) -> int:
    text = env.setting(name)
    try:
        return int(text.strip(), 0) & 0xFFFFFFFF if text else 0
    except ValueError:
        return 0


def credentials(env: FetchEnv) -> AuthSys:
    """AUTH_SYS as iPXE's ``oncrpc_init_cred_sys`` fills it (see the module docstring)."""
    return AuthSys(machine=env.setting("hostname") or "iPXE", uid=_uint_setting(env, "uid"),
                   gid=_uint_setting(env, "gid"))


async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    """Download an ``nfs://`` URI into ``sink``; see the module docstring."""
    uri = request.uri
    if not uri.host or not uri.path:
        raise IpxeError(proto.ERR_BAD_URI)
    machine = proto.NfsDownload(uri.path, nfs_port=uri_port(uri, 0) or None, cred=credentials(env))
    addresses = await env.resolve(uri.host)
    if not addresses:
        raise IpxeError(proto.ERR_BAD_URI)
    session = _Session(machine, addresses[0], sink, env)
    try:
        await session.run()
    finally:
        session.close()
    env.log(f"NFS: {machine.stats}")
    return FetchResult(uri, machine.size or 0)


class _Session:
    def __init__(self, machine: proto.NfsDownload, server: Address, sink: Sink, env: FetchEnv) -> None:
        self.machine = machine
        self.server = server
        self.sink = sink
        self.env = env
        self.streams: dict[str, Stream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        self._act(self.machine.start())
        await wait_with_idle_timeout(self.finished, lambda: list(self.streams.values()))

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for stream in self.streams.values():
            stream.close()
        self.streams.clear()
        if not self.finished.done():
            self.finished.cancel()

    def _act(self, outputs: list[proto.Output]) -> None:
        for output in outputs:
            if isinstance(output, proto.Data):
                self.sink.write(output.offset, output.payload)
            elif isinstance(output, proto.Send):
                self.streams[output.channel].send(output.data)
            elif isinstance(output, proto.Connect):
                task = asyncio.ensure_future(self._connect(output.channel, output.port))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(output, proto.Close):
                stream = self.streams.pop(output.channel, None)
                if stream is not None:
                    stream.close()
            elif isinstance(output, proto.SizeKnown):
                self.sink.set_length(output.size)
            elif isinstance(output, proto.Done):
                if not self.finished.done():
                    self.finished.set_result(None)
            else:
                self.env.log(f"NFS: {output.reason}")
                self._fail(output.error)

    def _fail(self, error: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(error)

    async def _connect(self, channel: str, port: int) -> None:
        try:
            stream = await connect_tcp(self.server, port, lambda view: self._act(self.machine.received(channel, view)),
                                       lambda error: self._on_end(channel, error), buffer_size=BUFFER,
                                       privileged=True, nodelay=True)
        except IpxeError as error:
            self._fail(error)
            return
        if self.machine.finished:
            stream.close()
            return
        self.streams[channel] = stream
        self._act(self.machine.connected(channel))

    def _on_end(self, channel: str, error: BaseException | None) -> None:
        self.streams.pop(channel, None)
        if error is not None:
            self._fail(error)
        else:
            self._act(self.machine.closed(channel))
