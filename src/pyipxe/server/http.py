"""A small asyncio HTTP/1.1 file server over an in-memory or on-disk tree (``pyipxe demo``).

Why our own (on h11, the same HTTP state machine the client side uses) rather than
``http.server``: it must live in the session's one event loop next to the client it
serves, start on a free loopback port in milliseconds, and serve a tree that exists only
in memory (the demo's generated kernel and initrd). It answers GET and HEAD with
Content-Length and keep-alive, 404 for anything else in the tree, 405 for other methods,
and reads files in chunks so a large kernel given with ``--kernel`` is never held whole.
A later issue grows ``pyipxe serve`` (TFTP, DHCP/proxyDHCP) here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import h11

CHUNK = 1 << 16
#: what a tree maps a path ("/boot.ipxe") to: the bytes themselves, or a file to read
Entry = bytes | Path


@dataclass
class TreeServer:
    tree: Mapping[str, Entry]
    host: str = "127.0.0.1"
    port: int = 0
    log: list[str] = field(default_factory=list)
    _server: asyncio.base_events.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> TreeServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # keep-alive clients: end their connections too
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _lookup(self, target: bytes) -> Entry | None:
        path = unquote(urlsplit(target.decode("ascii", "replace")).path)
        return self.tree.get(path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        self._writers.add(writer)
        try:
            while True:
                event = await self._next(connection, reader)
                if not isinstance(event, h11.Request):
                    break  # the client closed (or h11 paused on something we do not serve)
                while not isinstance(await self._next(connection, reader), h11.EndOfMessage):
                    pass  # a request body is read and ignored
                await self._respond(connection, writer, event)
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    break
                connection.start_next_cycle()
        except (h11.ProtocolError, OSError, TimeoutError, asyncio.CancelledError):
            pass  # a broken client, or the server closing: nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _next(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            connection.receive_data(await asyncio.wait_for(reader.read(CHUNK), 30))

    async def _respond(self, connection: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request) -> None:
        method = request.method.decode()
        entry = self._lookup(request.target)
        self.log.append(f"{method} {request.target.decode('ascii', 'replace')}")
        if method not in ("GET", "HEAD"):
            await self._simple(connection, writer, 405, b"method not allowed\n")
            return
        if entry is None or (isinstance(entry, Path) and not entry.is_file()):
            await self._simple(connection, writer, 404, b"not found\n")
            return
        length = len(entry) if isinstance(entry, bytes) else entry.stat().st_size
        headers = [("Content-Length", str(length)), ("Content-Type", "application/octet-stream")]
        writer.write(connection.send(h11.Response(status_code=200, headers=headers)) or b"")
        if method == "GET":
            if isinstance(entry, bytes):
                for offset in range(0, length, CHUNK):
                    writer.write(connection.send(h11.Data(data=entry[offset:offset + CHUNK])) or b"")
                    await writer.drain()
            else:
                with entry.open("rb") as source:
                    while chunk := source.read(CHUNK):
                        writer.write(connection.send(h11.Data(data=chunk)) or b"")
                        await writer.drain()
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    @staticmethod
    async def _simple(connection: h11.Connection, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        headers = [("Content-Length", str(len(body))), ("Content-Type", "text/plain")]
        writer.write(connection.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(connection.send(h11.Data(data=body)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()
