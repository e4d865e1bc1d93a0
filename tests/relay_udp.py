"""A userspace UDP relay that loses, duplicates and reorders datagrams, for TFTP fault tests.

Why: real servers on a perfect bridge never lose a packet, so the client's recovery paths
(retransmission, duplicate and out-of-order blocks, the server's port change) would only
ever run against our own model server. This relay sits between a client and a real server
and breaks the channel on purpose, with a seeded random generator so a failure reproduces.

TFTP changes ports mid-conversation: the RRQ goes to port 69 and the server answers from a
fresh port (its transfer ID). The relay mirrors that: each client gets its own upstream
socket; each server port seen on it gets its own downstream socket, whose port the client
then sees as the server's transfer ID. So the client talks to relay ports exactly as it
would to the server, and every datagram is forwarded to the matching peer.

Also here: :func:`call_in_netns`, which runs a function (an asyncio download, say) in a thread
that has entered a network namespace, so tests can drive pyipxe in-process from a NetLab host.

Run as a program (``python3 relay_udp.py --listen 10.77.0.1:6969 --server 10.77.0.1:69
--loss 0.1 --dup 0.1 --reorder 0.1 --seed 1``) it relays until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

Address = tuple[str, int]
T = TypeVar("T")

CLONE_NEWNET = 0x40000000


def call_in_netns(ns: str, function: Callable[[], T]) -> T:
    """Run ``function`` in a new thread inside network namespace ``ns`` (sockets it opens live there)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
        finally:
            os.close(fd)
        try:
            result.append(function())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{ns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


@dataclass
class Faults:
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0  # probability a datagram is held back
    delay: float = 0.004  # how long a held-back datagram waits (others overtake it)
    rng: random.Random = field(default_factory=lambda: random.Random(1))


class _Endpoint:
    """One relay socket; ``on_datagram`` gets what arrives on it."""

    def __init__(self, host: str, port: int, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)
        self.sock.bind((host, port))
        self.on_datagram = on_datagram
        asyncio.get_running_loop().add_reader(self.sock, self._readable)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, ConnectionRefusedError):  # nothing left, or ICMP from a dead peer
                return
            self.on_datagram(data, (str(addr[0]), int(addr[1])))

    def send(self, data: bytes, to: Address) -> None:
        with contextlib.suppress(OSError):  # a full buffer or a dead peer is just more loss
            self.sock.sendto(data, to)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock)
        self.sock.close()


class Relay:
    """Relay client ↔ server per transfer ID, through a faulty channel."""

    def __init__(self, listen: Address, server: Address, faults: Faults) -> None:
        self.listen_address = listen
        self.server = server
        self.faults = faults
        self.forwarded = self.lost = self.duplicated = self.reordered = 0
        self._endpoints: list[_Endpoint] = []
        self._upstream: dict[Address, _Endpoint] = {}  # client → socket facing the server
        self._downstream: dict[tuple[Address, int], _Endpoint] = {}  # (client, server port) → socket facing client

    def start(self) -> None:
        """Listen (call from inside the running loop)."""
        host, port = self.listen_address
        self._endpoints.append(_Endpoint(host, port, lambda data, client: self._from_client(data, client, self.server)))

    def close(self) -> None:
        for endpoint in self._endpoints:
            endpoint.close()
        self._endpoints.clear()

    def _from_client(self, data: bytes, client: Address, target: Address) -> None:
        """A datagram from ``client`` meant for ``target`` (port 69, or a transfer ID)."""
        upstream = self._upstream.get(client)
        if upstream is None:
            upstream = _Endpoint(self.listen_address[0], 0, lambda data, server: self._from_server(data, client, server))
            self._upstream[client] = upstream
            self._endpoints.append(upstream)
        self._send(upstream, data, target)

    def _from_server(self, data: bytes, client: Address, server: Address) -> None:
        key = (client, server[1])
        downstream = self._downstream.get(key)
        if downstream is None:
            downstream = _Endpoint(self.listen_address[0], 0, lambda data, source: self._from_client(data, source, server))
            self._downstream[key] = downstream
            self._endpoints.append(downstream)
        self._send(downstream, data, client)

    def _send(self, endpoint: _Endpoint, data: bytes, to: Address) -> None:
        faults, rng = self.faults, self.faults.rng
        copies = 1
        if rng.random() < faults.loss:
            self.lost += 1
            return
        if rng.random() < faults.dup:
            self.duplicated += 1
            copies = 2
        for _ in range(copies):
            self.forwarded += 1
            if rng.random() < faults.reorder:
                self.reordered += 1
                asyncio.get_running_loop().call_later(faults.delay * rng.random(), endpoint.send, data, to)
            else:
                endpoint.send(data, to)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _main(args: argparse.Namespace) -> None:
    faults = Faults(args.loss, args.dup, args.reorder, args.delay, random.Random(args.seed))
    relay = Relay(_address(args.listen), _address(args.server), faults)
    relay.start()
    print(f"relaying {args.listen} -> {args.server}", flush=True)
    last = ""
    try:
        while True:  # the counters, whenever they changed (at most ten times a second)
            await asyncio.sleep(0.1)
            counters = (f"forwarded {relay.forwarded} lost {relay.lost} duplicated {relay.duplicated} "
                        f"reordered {relay.reordered}")
            if counters != last:
                print(counters, flush=True)
                last = counters
    finally:
        relay.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--dup", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.004)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(_main(parser.parse_args()))
