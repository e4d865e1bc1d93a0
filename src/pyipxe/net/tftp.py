"""The asyncio driver for ``tftp://`` downloads: sockets and time for :mod:`pyipxe.proto.tftp`.

Why hand-written: the protocol lives in the sans-IO client (no maintained sans-IO TFTP
library exists); this module only moves datagrams and timer expiries between it and one
UDP socket, and turns its outputs into sink writes, sends and errors.

What iPXE does and we do too (reference §4.2): the RRQ goes to the URI's port (69 unless
given) for the path minus its first ``/`` (``tftp://h//abs`` asks ``/abs``), in octet mode
with ``blksize 1432`` and ``tsize 0``; the first reply fixes the server's transfer port;
``tsize`` presizes the image; errors carry iPXE's numbers (net/udp/tftp.c).

What we add, and how to turn it off:

- ``windowsize`` (RFC 7440): we also ask for a window of :data:`DEFAULT_WINDOWSIZE` blocks
  per ACK. Servers that do not know the option ignore it (RFC 2347), so the request stays
  compatible; if a server refuses it with ERROR 8 we retry once with iPXE's exact request.
  Two settings control the request, read at each download so a script can change them:
  ``set tftp-windowsize 1`` (or 0) sends iPXE's request unchanged (lock-step), any other
  value up to 65535 asks for that window; ``set tftp-blksize N`` (8..65464) replaces 1432.
- Speed on the hot path. The socket is connected to the server's transfer port after the
  first reply, so the kernel filters strangers and we ``recv`` without address tuples. The
  transport from ``create_datagram_endpoint`` reads one datagram per readiness event; inside
  a window we drain what else is queued straight from the socket (up to :data:`_BATCH`,
  then the loop gets a turn), so a window costs one wake-up, not sixteen. The receive
  buffer is raised to :data:`RCVBUF` so bursts never overflow it. In-order full blocks take
  the client's short path (``TftpClient.receive``), and its timer is lazy, so a block costs
  no timer work at all.
- ACK first, write later. The ACK goes out the moment the client asks for it; file bytes
  are collected and written to the sink in contiguous runs of :data:`_RUN_BYTES`, one call
  per run instead of one per block. (We also measured busy-polling the socket after an
  ACK, and trying one more ``recv`` right after it: in a VM both were slower, because a
  spinning client pushes the server onto another CPU and every wake-up becomes a
  cross-CPU interrupt. So we wait in the event loop.)

ICMP "port unreachable" (a dead server) is logged and otherwise ignored, as iPXE ignores it,
so a vanished server fails with iPXE's TFTP timeout error; a send with no route fails at once
with "Network unreachable", as iPXE's IPv4 layer does.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import cast

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.proto import tftp as proto
from pyipxe.uri import uri_port

#: settings a script can set to change what we ask (see the module docstring)
SETTING_WINDOWSIZE = "tftp-windowsize"
SETTING_BLKSIZE = "tftp-blksize"
#: RFC 7440's experiments found 16 near the best; it keeps a lost block's cost to one window
DEFAULT_WINDOWSIZE = 16
#: receive buffer: many windows of the largest blocks, so bursts never overflow it
RCVBUF = 4 << 20
#: datagrams handled per wake-up before other tasks get a turn
_BATCH = 64
#: bytes of contiguous blocks collected before they are written to the sink in one call
_RUN_BYTES = 128 << 10

# net/udp/tftp.c, tftp_core_open(): a URI without host or path is "Invalid argument"
# (the oracle prints 1c126002 for tftp://10.0.2.2). Bad tftp-* settings are ours; same site.
ERR_INVALID_URI = ErrorSite(ErrorClass.EINVAL, 0x1260)
# net/ipv4.c: no route to the server, "Network unreachable" (reference §1.8: 28056011)
ERR_NETWORK_UNREACHABLE = ErrorSite(ErrorClass.ENETUNREACH, 0x0560)


async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    """Download a ``tftp://`` URI into ``sink``; see the module docstring."""
    uri = request.uri
    if not uri.host or uri.path is None:
        raise IpxeError(ERR_INVALID_URI)
    blksize = _setting_number(env, SETTING_BLKSIZE, proto.IPXE_BLKSIZE, proto.MIN_BLKSIZE, proto.MAX_BLKSIZE)
    windowsize = _setting_number(env, SETTING_WINDOWSIZE, DEFAULT_WINDOWSIZE, 0, proto.MAX_WINDOWSIZE)
    port = uri_port(uri, proto.TFTP_PORT)
    addresses = await env.resolve(uri.host)
    if not addresses:
        raise IpxeError(ERR_INVALID_URI)
    server = addresses[0]
    filename = proto.filename_from_uri_path(uri.path).encode("utf-8", "surrogateescape")
    window = windowsize if windowsize > 1 else None
    try:
        size = await _download(filename, server, port, sink, env, blksize, window)
    except _OptionsRefused:
        env.log("TFTP: server refused our options (ERROR 8); retrying with iPXE's request")
        size = await _download(filename, server, port, sink, env, blksize, None)
    return FetchResult(uri, size)


def _setting_number(env: FetchEnv, name: str, default: int, low: int, high: int) -> int:
    text = env.setting(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip(), 0)
    except ValueError:
        value = -1
    if not low <= value <= high:
        env.log(f"TFTP: {name} {text!r} is not a number in {low}..{high}")
        raise IpxeError(ERR_INVALID_URI)
    return value


class _OptionsRefused(Exception):
    """The server answered our RRQ with ERROR 8 while we asked beyond iPXE's options."""


async def _download(
    filename: bytes,
    server: IPv4Address | IPv6Address,
    port: int,
    sink: Sink,
    env: FetchEnv,
    blksize: int,
    windowsize: int | None,
) -> int:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if server.version == 6 else socket.AF_INET
    client = proto.TftpClient(filename, (str(server), port), blksize=blksize, windowsize=windowsize)
    asked = f"blksize {blksize} tsize 0" + (f" windowsize {windowsize}" if windowsize else "")
    env.log(f"TFTP: RRQ {filename.decode('utf-8', 'replace')!r} to {server}:{port} ({asked})")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _enlarge_receive_buffer(sock)
        sock.setblocking(False)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        done: asyncio.Future[int] = loop.create_future()
        session = _Session(client, sink, env, sock, loop, done)
        transport, _ = await loop.create_datagram_endpoint(lambda: session, sock=sock)
    except OSError as exc:
        sock.close()
        env.log(f"TFTP: cannot open a UDP socket: {exc}")
        raise IpxeError(ERR_NETWORK_UNREACHABLE) from exc
    try:
        session.begin()
        return await done
    finally:
        session.finish()
        transport.close()


def _enlarge_receive_buffer(sock: socket.socket) -> None:
    """Ask for :data:`RCVBUF`; as root, beyond ``net.core.rmem_max`` (SO_RCVBUFFORCE)."""
    force = getattr(socket, "SO_RCVBUFFORCE", 33)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)


class _Session(asyncio.DatagramProtocol):
    """One transfer: feeds the client, acts on its outputs, owns the timer."""

    def __init__(
        self,
        client: proto.TftpClient,
        sink: Sink,
        env: FetchEnv,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[int],
    ) -> None:
        self.client = client
        self.sink = sink
        self.env = env
        self.sock = sock
        self.loop = loop
        self.done = done
        self.transport: asyncio.DatagramTransport | None = None
        self.connected = False
        self.finished = False
        self.started = 0.0
        self._bufsize = 65536
        self._timer: asyncio.TimerHandle | None = None
        self._run: list[bytes] = []  # payloads of contiguous blocks not yet written
        self._run_offset = 0
        self._run_end = 0  # flush once a block starts at or past this offset

    # -- asyncio.DatagramProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.finished:
            return
        if self.connected:  # the kernel only lets the transfer peer through now
            self._drain(data)
            return
        source = (_canonical(str(addr[0])), int(addr[1]))
        self._act(self.client.handle(proto.Datagram(data, source)))
        if not self.finished and self.client.peer is not None:
            self._connect(self.client.peer)
            self._flush()

    def error_received(self, exc: Exception) -> None:
        if self.finished:
            return
        if isinstance(exc, OSError) and exc.errno == errno.ENETUNREACH:
            self._finish_with(IpxeError(ERR_NETWORK_UNREACHABLE), f"send failed: {exc}")
            return
        # ICMP port unreachable and friends: iPXE ignores them and so do we (the timer decides).
        self.env.log(f"TFTP: ignoring socket error: {exc}")

    # -- driving

    def begin(self) -> None:
        self.started = time.perf_counter()
        self._act(self.client.start())

    def finish(self) -> None:
        """Stop everything; tell the server if we are giving up mid-transfer (Ctrl-C, --timeout)."""
        if not self.finished:
            for output in self.client.abort():
                if isinstance(output, proto.Send):
                    self._send(output.data, output.to)
        self.finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _connect(self, peer: proto.Address) -> None:
        """Connect to the server's transfer port: the kernel then filters strangers for us."""
        self.connected = True
        self._bufsize = self.client.blksize + 5  # one spare byte exposes an oversized block
        try:
            self.sock.connect(peer)
        except OSError as exc:  # keep working unconnected; the client still filters
            self.env.log(f"TFTP: cannot connect the socket to {peer[0]}:{peer[1]}: {exc}")
            self.connected = False
            return
        if self.transport is not None and hasattr(self.transport, "max_size"):
            # asyncio's selector transport reads into a 256 KiB buffer per datagram; ours fit this
            self.transport.max_size = self._bufsize
        client = self.client
        if client.oack is None:
            self.env.log(f"TFTP: {peer[0]}:{peer[1]} ignores options: blksize 512, no window, size unknown")
        else:
            offered = " ".join(f"{name} {value}" for name, value in client.oack)
            self.env.log(f"TFTP: OACK from {peer[0]}:{peer[1]}: {offered or '(empty)'}")

    def _drain(self, first: bytes) -> None:
        """Handle ``first`` and, inside a window, what else is queued: the hot path of a transfer.

        ACKs go out the moment the client asks for them. File bytes are collected into one
        contiguous run and written to the sink every :data:`_RUN_BYTES` (and at the end, and
        when the timer fires), so a write never delays an ACK and costs one call per run
        instead of one per block. Right after an ACK the next block cannot be there yet, so
        we go back to the event loop rather than try a ``recv`` that would only fail.
        """
        recv, receive, send, bufsize = self.sock.recv, self.client.receive, self.sock.send, self._bufsize
        peer = self.client.peer
        assert peer is not None
        run = self._run
        data = first
        for _ in range(_BATCH):
            acked = False
            for output in receive(data, peer):
                if isinstance(output, proto.Data):
                    if not run:
                        self._run_offset = output.offset
                        self._run_end = output.offset + _RUN_BYTES
                    run.append(output.payload)
                    if output.offset >= self._run_end:
                        self._flush()
                elif isinstance(output, proto.Send) and output.to == peer:
                    acked = True
                    try:
                        send(output.data)
                    except OSError:
                        self._send(output.data, output.to)
                else:
                    self._act([output])
                    if self.finished:
                        return
            if acked:
                return
            try:
                data = recv(bufsize)
            except BlockingIOError:
                return
            except OSError as exc:
                self.error_received(exc)
                return

    def _flush(self) -> None:
        """Write the collected run of contiguous blocks to the sink in one call."""
        run = self._run
        if run:
            self.sink.write(self._run_offset, run[0] if len(run) == 1 else b"".join(run))
            run.clear()

    def _act(self, outputs: list[proto.Output]) -> None:
        for output in outputs:
            if isinstance(output, proto.Data):
                self._flush()
                self.sink.write(output.offset, output.payload)
            elif isinstance(output, proto.Send):
                self._send(output.data, output.to)
            elif isinstance(output, proto.SetTimer):
                self._set_timer(output.seconds, output.token)
            elif isinstance(output, proto.SizeKnown):
                self.sink.set_length(output.size)
            elif isinstance(output, proto.Done):
                self._flush()
                self._succeed(output.size)
            else:
                # ERROR 8 to an RRQ asking more than iPXE does: retry with iPXE's request
                refused = output.server_code == 8 and "windowsize" in self.client.asked
                self._finish_with(_OptionsRefused() if refused else output.error, output.reason)

    def _send(self, data: bytes, to: proto.Address) -> None:
        try:
            if self.connected and to == self.client.peer:
                self.sock.send(data)
            else:
                self.sock.sendto(data, to)
        except BlockingIOError:
            assert self.transport is not None
            self.transport.sendto(data, to)  # queued by asyncio until the socket drains
        except OSError as exc:
            self.error_received(exc)

    # -- timer: the client's single retransmission timer (armed rarely: the client's timer is lazy)

    def _set_timer(self, seconds: float, token: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(seconds, self._on_timer, token)

    def _on_timer(self, token: int) -> None:
        self._timer = None
        if self.finished:
            return
        self._flush()  # a quiet moment: let the sink (and the progress display) catch up
        before = self.client.stats.retransmissions
        outputs = self.client.handle(proto.TimerExpired(token))
        if self.client.stats.retransmissions != before:
            what = "RRQ" if self.client.state is proto.State.REQUESTING else f"ACK {self.client.acked}"
            self.env.log(f"TFTP: no reply; resending {what} (retransmission {self.client.stats.retransmissions})")
        self._act(outputs)

    # -- ends

    def _succeed(self, size: int) -> None:
        self.finished = True
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        stats = self.client.stats
        self.env.log(
            f"TFTP: {size} bytes in {elapsed:.3f} s ({size / elapsed / 1048576:.1f} MiB/s), {stats.blocks} blocks, "
            f"{stats.acks} ACKs, {stats.retransmissions} retransmissions, {stats.duplicates} duplicates, "
            f"{stats.out_of_order} out of order, {stats.dropped} dropped"
        )
        if not self.done.done():
            self.done.set_result(size)

    def _finish_with(self, error: Exception, reason: str) -> None:
        self.finished = True
        self.env.log(f"TFTP: failed: {reason}")
        if not self.done.done():
            self.done.set_exception(error)


def _canonical(host: str) -> str:
    """The address text as ``str(ip_address)`` prints it, so sources compare equal to the server's."""
    try:
        return str(ip_address(host))
    except ValueError:
        return host
