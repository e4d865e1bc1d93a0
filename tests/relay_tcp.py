"""A userspace TCP relay that breaks connections on purpose (a fault injector for HTTP resume).

Why: pyipxe resumes an HTTP download whose connection breaks mid-body. To prove it
against a real server, this relay sits between the client and nginx, forwards bytes both
ways, and cuts a connection once ``cut_after`` bytes have gone from server to client —
with a TCP reset (``SO_LINGER`` 0) or a plain close, alternately or as asked. Only the
first ``cuts`` connections are cut, so the download can finish.

Usable in-process (``await CuttingRelay(...).start()`` on the running loop) or from a
shell: ``python tests/relay_tcp.py --listen 127.0.0.1:9000 --target 10.77.0.1:80
--cut-after 1000000 --cuts 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
from dataclasses import dataclass, field


@dataclass
class CuttingRelay:
    target_host: str
    target_port: int
    cut_after: int | None = None
    cuts: int = 1
    modes: tuple[str, ...] = ("reset", "close")  # how each successive cut ends the connection
    connections: int = 0
    cut_count: int = 0
    forwarded: list[int] = field(default_factory=list)  # server→client bytes per connection
    _server: asyncio.Server | None = None
    _pumps: set[asyncio.Future[bool]] = field(default_factory=set)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pump in self._pumps:  # connections still open (a client's keep-alive pool)
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        self.forwarded.append(0)
        cut = self.cut_after if self.cut_count < self.cuts else None
        if cut is not None:
            self.cut_count += 1
        mode = self.modes[index % len(self.modes)]
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.close()
            return
        upstream = asyncio.ensure_future(self._pump(client_reader, server_writer, None, index, downstream=False))
        downstream = asyncio.ensure_future(self._pump(server_reader, client_writer, cut, index, downstream=True))
        self._pumps |= {upstream, downstream}
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        if downstream.done() and downstream.result() and mode == "reset":
            sock = client_writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends a RST instead of a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for task in (upstream, downstream):
            task.cancel()
        await asyncio.gather(upstream, downstream, return_exceptions=True)
        self._pumps -= {upstream, downstream}
        for writer in (client_writer, server_writer):
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: int | None,
                    index: int, *, downstream: bool) -> bool:
        """Copy until EOF; True when the cut point was reached (the connection is to be broken)."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return False
                if downstream:
                    done = self.forwarded[index]
                    if cut is not None and done + len(data) >= cut:
                        writer.write(data[:cut - done])
                        await writer.drain()
                        self.forwarded[index] = cut
                        return True
                    self.forwarded[index] = done + len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--target", required=True)
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--cuts", type=int, default=1)
    args = parser.parse_args()
    listen_host, listen_port = args.listen.rsplit(":", 1)
    target_host, target_port = args.target.rsplit(":", 1)

    async def serve() -> None:
        relay = CuttingRelay(target_host, int(target_port), args.cut_after, args.cuts)
        port = await relay.start(listen_host, int(listen_port))
        print(f"relaying {listen_host}:{port} -> {args.target}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
