"""The sans-IO TFTP client: wire format, negotiation, TIDs, loss, wraparound, errors, timers, fuzz.

Packets are built here with ``struct`` rather than with the module's own encoders, so
the tests check the wire format instead of agreeing with themselves. Lossy transfers
run against a small model server in virtual time with a seeded channel, so they are
deterministic and fast.
"""

from __future__ import annotations

import heapq
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipxe.errors import format_error
from pyipxe.proto import tftp
from pyipxe.proto.tftp import (
    Backoff,
    Data,
    Datagram,
    Done,
    Failed,
    Output,
    SetTimer,
    SizeKnown,
    State,
    TftpClient,
    TimerExpired,
)

SERVER = ("10.0.0.1", 69)
TID = ("10.0.0.1", 40000)
OTHER_TID = ("10.0.0.1", 40001)
OTHER_HOST = ("10.0.0.9", 40000)


# ---- packet builders and output helpers --------------------------------------------------


def data(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", 3, block & 0xFFFF) + payload


def oack(*pairs: tuple[str, str]) -> bytes:
    return b"\x00\x06" + b"".join(f"{name}\0{value}\0".encode() for name, value in pairs)


def error(code: int, message: str = "oops") -> bytes:
    return struct.pack("!HH", 5, code) + message.encode() + b"\0"


def ack(block: int) -> bytes:
    return struct.pack("!HH", 4, block & 0xFFFF)


def sends(out: list[Output]) -> list[tuple[bytes, tuple[str, int]]]:
    return [(o.data, o.to) for o in out if isinstance(o, tftp.Send)]


def delivered(out: list[Output]) -> bytes:
    return b"".join(o.payload for o in out if isinstance(o, Data))


def started(**kwargs: object) -> TftpClient:
    client = TftpClient("boot/pxelinux.0", SERVER, **kwargs)  # type: ignore[arg-type]
    client.start()
    return client


def feed(client: TftpClient, packet: bytes, source: tuple[str, int] = TID) -> list[Output]:
    return client.handle(Datagram(packet, source))


# ---- requests ----------------------------------------------------------------------------


def test_rrq_is_ipxes_by_default() -> None:
    client = TftpClient(tftp.filename_from_uri_path("/boot/pxelinux.0"), SERVER)
    out = client.start()
    assert sends(out) == [(b"\x00\x01boot/pxelinux.0\0octet\0blksize\x001432\0tsize\x000\0", SERVER)]
    assert out[1] == SetTimer(1.0, 1)
    assert client.state is State.REQUESTING


def test_rrq_options_and_plain_rfc1350() -> None:
    out = TftpClient("f", SERVER, blksize=8192, windowsize=16, timeout=3).start()
    assert sends(out)[0][0] == b"\x00\x01f\0octet\0blksize\x008192\0tsize\x000\0timeout\x003\0windowsize\x0016\0"
    out = TftpClient(b"f", SERVER, blksize=None, tsize=False).start()
    assert sends(out)[0][0] == b"\x00\x01f\0octet\0"


def test_uri_path_loses_only_its_first_slash() -> None:
    assert tftp.filename_from_uri_path("/pxelinux.0") == "pxelinux.0"
    assert tftp.filename_from_uri_path("//abs/x") == "/abs/x"
    assert tftp.filename_from_uri_path("C:\\tftpboot\\icky#path") == "C:\\tftpboot\\icky#path"


@pytest.mark.parametrize("kwargs", [{"blksize": 7}, {"blksize": 65465}, {"windowsize": 0}, {"timeout": 256}])
def test_bad_arguments_are_caller_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TftpClient("f", SERVER, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TftpClient("a\0b", SERVER)


def test_start_twice_is_a_caller_error() -> None:
    client = started()
    with pytest.raises(RuntimeError):
        client.start()


# ---- negotiation -------------------------------------------------------------------------


def test_oack_is_acked_and_values_apply() -> None:
    client = started(windowsize=8)
    out = feed(client, oack(("BLKSIZE", "1024"), ("tsize", "3000"), ("windowsize", "4")))
    assert out[0] == SizeKnown(3000)
    assert sends(out) == [(ack(0), TID)]
    assert isinstance(out[-1], SetTimer)
    assert (client.state, client.peer, client.tsize) == (State.TRANSFERRING, TID, 3000)
    assert (client.blksize, client.windowsize) == (1024, 4)


def test_options_not_acknowledged_keep_rfc1350_values() -> None:
    client = started(windowsize=8)
    feed(client, oack(("tsize", "10")))
    assert (client.blksize, client.windowsize) == (512, 1)


def test_negotiated_timeout_sets_the_retransmission_interval() -> None:
    client = started(timeout=3)
    out = feed(client, oack(("timeout", "3")))
    assert out[-1] == SetTimer(3.0, 2)


def test_oack_tolerates_trailing_garbage_like_ipxe() -> None:
    client = started()
    feed(client, oack(("blksize", "1000")) + b"\xff\xfe")
    assert client.state is State.TRANSFERRING and client.blksize == 1000


@pytest.mark.parametrize(
    ("kwargs", "pairs", "code"),
    [
        ({}, [("blksize", "2000")], 0x1C126102),  # larger than asked
        ({}, [("blksize", "7")], 0x1C126102),
        ({}, [("blksize", "12x")], 0x1C126102),
        ({}, [("tsize", "-1")], 0x1C126202),
        ({}, [("windowsize", "4")], 0x1C126002),  # not asked for
        ({}, [("multicast", "")], 0x1C126002),
        ({}, [("tsize", "1"), ("TSIZE", "1")], 0x1C126002),  # repeated
        ({"windowsize": 4}, [("windowsize", "5")], 0x1C126002),
        ({"windowsize": 4}, [("windowsize", "0")], 0x1C126002),
        ({"timeout": 2}, [("timeout", "5")], 0x1C126002),
        ({"blksize": None, "tsize": False}, [], 0x1C126002),  # OACK to a plain request
    ],
)
def test_bad_oack_is_refused_with_error_8(kwargs: dict[str, object], pairs: list[tuple[str, str]], code: int) -> None:
    client = started(**kwargs)
    out = feed(client, oack(*pairs))
    [(packet, to)] = sends(out)
    assert packet[:4] == b"\x00\x05\x00\x08" and packet.endswith(b"\0") and to == TID
    assert isinstance(out[-1], Failed) and out[-1].error.code("pcbios") == code
    assert client.state is State.FAILED
    assert feed(client, data(1, b"x")) == []


def test_server_without_options_answers_data_directly() -> None:
    client = started(windowsize=4)
    out = feed(client, data(1, b"a" * 512))
    assert delivered(out) == b"a" * 512 and sends(out) == [(ack(1), TID)]
    assert (client.blksize, client.windowsize, client.tsize) == (512, 1, None)
    out = feed(client, data(2, b"end"))
    assert delivered(out) == b"end" and sends(out) == [(ack(2), TID)] and out[-1] == Done(515)


def test_first_data_must_be_block_one_and_rfc1350_sized() -> None:
    client = started()
    assert feed(client, data(2, b"x")) == []
    assert feed(client, data(1, b"x" * 513)) == []
    assert client.state is State.REQUESTING and client.peer is None and client.stats.dropped == 2


def test_repeated_oack_means_ack_0_was_lost() -> None:
    client = started()
    feed(client, oack(("blksize", "512")))
    assert sends(feed(client, oack(("blksize", "512")))) == [(ack(0), TID)]
    assert sends(feed(client, oack(("blksize", "512")))) == [(ack(0), TID)]  # lock-step: every time
    feed(client, data(1, b"x" * 512))
    assert feed(client, oack(("blksize", "512"))) == []
    client = started(windowsize=4)
    feed(client, oack(("blksize", "512"), ("windowsize", "4")))
    acks = [sends(feed(client, oack(("blksize", "512"), ("windowsize", "4")))) for _ in range(6)]
    assert acks == [[(ack(0), TID)], [], [], [], [(ack(0), TID)], []]  # once per window of strays


# ---- transfer IDs ------------------------------------------------------------------------


def test_tid_locks_on_first_reply_and_strangers_get_error_5() -> None:
    client = started()
    feed(client, oack(("blksize", "512")))
    for stranger in (OTHER_TID, OTHER_HOST, SERVER):
        out = feed(client, data(1, b"evil"), stranger)
        assert sends(out) == [(b"\x00\x05\x00\x05Unknown transfer ID\0", stranger)]
        assert delivered(out) == b""
    assert feed(client, error(1), OTHER_TID) == []  # never answer an ERROR
    assert feed(client, b"\x00", OTHER_TID) == []  # nor garbage
    assert client.state is State.TRANSFERRING and client.stats.foreign == 5
    out = feed(client, data(1, b"good"))
    assert delivered(out) == b"good" and sends(out) == [(ack(1), TID)]


def test_hot_path_checks_the_source_and_size_too() -> None:
    client = started(blksize=8)
    feed(client, oack(("blksize", "8")))
    out = client.receive(data(1, b"e" * 8), OTHER_TID)  # right header and size, wrong port
    assert delivered(out) == b"" and sends(out)[0][1] == OTHER_TID
    assert client.receive(data(1, b"x" * 9), TID) == []  # right header, one byte too many
    assert client.receive(data(1, b"g" * 8), TID) == [Data(0, b"g" * 8), tftp.Send(ack(1), TID)]
    assert client.stats.foreign == 1 and client.stats.dropped == 1


def test_other_hosts_cannot_answer_the_rrq() -> None:
    client = started()
    assert sends(feed(client, data(1, b"x"), OTHER_HOST))[0][1] == OTHER_HOST
    assert client.state is State.REQUESTING and client.peer is None


# ---- data, windows, duplicates, gaps -----------------------------------------------------


def test_window_acks_every_nth_block_and_the_last() -> None:
    client = started(blksize=8, windowsize=4)
    feed(client, oack(("blksize", "8"), ("windowsize", "4")))
    acks = [sends(feed(client, data(n, bytes([n]) * 8))) for n in range(1, 9)]
    assert acks == [[], [], [], [(ack(4), TID)], [], [], [], [(ack(8), TID)]]
    out = feed(client, data(9, b"end"))
    assert sends(out) == [(ack(9), TID)] and out[-1] == Done(67)


def test_gap_reacks_last_in_order_block_once_and_never_delivers_out_of_order() -> None:
    client = started(blksize=8, windowsize=4)
    feed(client, oack(("blksize", "8"), ("windowsize", "4")))
    assert delivered(feed(client, data(1, b"1" * 8))) == b"1" * 8
    out = feed(client, data(3, b"3" * 8))
    assert delivered(out) == b"" and sends(out) == [(ack(1), TID)]
    assert feed(client, data(4, b"4" * 8)) == []
    out = feed(client, data(2, b"2" * 8))
    assert [(o.offset, o.payload) for o in out if isinstance(o, Data)] == [(8, b"2" * 8)]
    assert client.stats.out_of_order == 2


def test_duplicates_are_reacked_and_never_delivered_twice() -> None:
    client = started(blksize=8)
    feed(client, oack(("blksize", "8")))
    feed(client, data(1, b"a" * 8))
    feed(client, data(2, b"b" * 8))
    for _ in range(3):  # lock-step: the server resends block 2 because our ACK was lost, each time
        out = feed(client, data(2, b"b" * 8))
        assert delivered(out) == b"" and sends(out) == [(ack(2), TID)]
    assert sends(feed(client, data(1, b"a" * 8))) == [(ack(2), TID)]
    assert client.stats.duplicates == 4 and client.stats.payload_bytes == 16


def test_a_retransmitted_window_earns_one_ack() -> None:
    client = started(blksize=8, windowsize=4)
    feed(client, oack(("blksize", "8"), ("windowsize", "4")))
    for n in range(1, 5):
        feed(client, data(n, bytes([n]) * 8))
    for _ in range(2):  # our ACK 4 was lost twice: the server resends blocks 1-4 twice
        acks = [sends(feed(client, data(n, bytes([n]) * 8))) for n in range(1, 5)]
        assert acks == [[(ack(4), TID)], [], [], []]
    assert client.stats.duplicates == 8 and client.stats.blocks == 4


def test_oversized_and_malformed_packets_are_dropped() -> None:
    client = started(blksize=8)
    feed(client, oack(("blksize", "8")))
    junk = [data(1, b"x" * 9), b"", b"\x00", b"\x00\x03\x00", b"\x00\x09\x00\x01", ack(1), b"\x00\x04\x00\x01\x00"]
    junk += [b"\x00\x01f\0octet\0", b"\x00\x05\x00"]  # an RRQ from the server; a truncated ERROR
    for packet in junk:
        assert feed(client, packet) == []
    assert client.stats.dropped == 9 and client.state is State.TRANSFERRING


def test_final_block_is_reacked_after_done() -> None:
    client = started(blksize=8)
    feed(client, oack(("blksize", "8")))
    assert feed(client, data(1, b""))[-1] == Done(0)
    assert sends(feed(client, data(1, b""))) == [(ack(1), TID)]
    assert sends(feed(client, data(1, b""))) == [(ack(1), TID)]
    assert feed(client, data(2, b"")) == [] and feed(client, error(1)) == []
    assert client.state is State.DONE


def test_block_numbers_wrap_past_65535() -> None:
    blocks = 65536 + 100
    client = started(blksize=8, tsize=False)
    feed(client, oack(("blksize", "8")))
    offset = 0
    for n in range(1, blocks + 1):
        out = client.handle(Datagram(data(n, n.to_bytes(8, "big")), TID))
        assert out[0] == Data(offset, n.to_bytes(8, "big"))
        assert out[1] == tftp.Send(ack(n), TID)
        offset += 8
    assert feed(client, data(65535, b"x" * 8)) == [tftp.Send(ack(blocks), TID)]  # old block, not new data
    out = feed(client, data(blocks + 1, b"end"))
    assert out[0] == Data(offset, b"end") and out[-1] == Done(offset + 3)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "bios", "efi", "text"),
    [
        (1, 0x2D12613B, 0x2D12618E, "Not found"),  # current iPXE; the 2019 build printed 2d12603b
        (2, 0x0212603C, 0x0212608F, "Permission denied"),
        (4, 0x3D126001, 0x3D126083, "Error 0x3d126001"),
        (0, 0x3C126003, 0x3C126083, "Operation not supported"),
        (3, 0x3C126003, 0x3C126083, "Operation not supported"),
        (8, 0x3C126003, 0x3C126083, "Operation not supported"),
        (0xFFFF, 0x3C126003, 0x3C126083, "Operation not supported"),
    ],
)
@pytest.mark.parametrize("when", ["requesting", "transferring"])
def test_server_errors_map_to_ipxe_numbers(code: int, bios: int, efi: int, text: str, when: str) -> None:
    client = started()
    source = TID if when == "requesting" else ("10.0.0.1", 50000)
    if when == "transferring":
        feed(client, oack(("blksize", "512")), source)
    out = feed(client, error(code, "no such file"), source)
    [failed] = out
    assert isinstance(failed, Failed) and client.state is State.FAILED
    assert failed.error.code("pcbios") == bios and failed.error.code("efi") == efi
    assert format_error(bios, "pcbios") == f"{text} (https://ipxe.org/{bios:08x})"
    assert "no such file" in failed.reason and failed.server_code == code


# ---- timers ------------------------------------------------------------------------------


def expire_all(client: TftpClient, first: SetTimer) -> tuple[list[float], list[Output]]:
    schedule, timer, out = [first.seconds], first, []
    while True:
        out = client.handle(TimerExpired(timer.token))
        timers = [o for o in out if isinstance(o, SetTimer)]
        if not timers:
            return schedule, out
        timer = timers[0]
        schedule.append(timer.seconds)


def test_rrq_backoff_schedule_then_timeout() -> None:
    client = TftpClient("f", SERVER)
    out = client.start()
    assert isinstance(out[1], SetTimer)
    schedule, last = expire_all(client, out[1])
    assert schedule == [1, 2, 4, 4, 4] and sum(schedule) == Backoff().give_up
    [failed] = last
    assert isinstance(failed, Failed) and failed.error.code("pcbios") == 0x4C126035
    assert format_error(0x4C126035, "pcbios") == "Connection timed out (https://ipxe.org/4c126035)"
    assert client.stats.retransmissions == 4


def test_timeouts_resend_rrq_then_ack_of_last_in_order_block() -> None:
    client = TftpClient("f", SERVER, backoff=Backoff(initial=0.5, cap=1.0, give_up=10.0), windowsize=4)
    client.start()
    out = client.handle(TimerExpired(1))
    assert sends(out)[0] == (sends(TftpClient("f", SERVER, windowsize=4).start())[0][0], SERVER)
    assert out[-1] == SetTimer(1.0, 2)
    [*_, timer] = feed(client, oack(("blksize", "512"), ("windowsize", "4")))  # progress resets the backoff
    assert timer == SetTimer(0.5, 3)
    out = feed(client, data(1, b"x" * 512))
    assert sends(out) == [] and not [o for o in out if isinstance(o, SetTimer)]  # blocks never touch the timer
    assert client.handle(TimerExpired(3)) == [SetTimer(0.5, 4)]  # progress since it was armed: re-arm only
    out = client.handle(TimerExpired(4))
    assert sends(out) == [(ack(1), TID)] and out[-1] == SetTimer(1.0, 5)
    assert client.stats.retransmissions == 2


def test_stale_and_late_timers_are_ignored() -> None:
    client = started()
    feed(client, oack(("blksize", "512")))
    assert client.handle(TimerExpired(1)) == []  # superseded by the OACK's timer
    feed(client, data(1, b"end"))
    assert client.handle(TimerExpired(2)) == [] and client.handle(TimerExpired(3)) == []


def test_abort_tells_the_server() -> None:
    client = started()
    assert client.abort() == []  # nobody to tell yet
    client = started()
    feed(client, oack(("blksize", "512")))
    assert sends(client.abort()) == [(b"\x00\x05\x00\x00TFTP Aborted\0", TID)]
    assert client.state is State.CANCELLED and feed(client, data(1, b"x")) == []


# ---- whole transfers against a model server ----------------------------------------------


@dataclass
class Session:
    """One server-side transfer: an RFC 7440 sender that ignores duplicate ACKs (RFC 1123)."""

    port: int
    content: bytes
    blksize: int = 512
    window: int = 1
    oack: bytes | None = None
    base: int = 1  # first unacknowledged block (0 = the OACK)
    tries: int = 0
    finished: bool = False

    @property
    def last(self) -> int:
        return len(self.content) // self.blksize + 1

    def packets(self) -> list[bytes]:
        if self.base == 0:
            assert self.oack is not None
            return [self.oack]
        end = min(self.base + self.window, self.last + 1)
        return [data(n, self.content[(n - 1) * self.blksize : n * self.blksize]) for n in range(self.base, end)]

    def on_ack(self, wire: int) -> bool:
        """True when the ACK moved the window (so send it)."""
        k = self.base - 1 + ((wire - (self.base - 1)) & 0xFFFF)
        if k == self.base - 1 or k >= min(self.base + self.window, self.last + 1):
            return False
        self.base, self.tries = k + 1, 0
        self.finished = self.base > self.last
        return not self.finished


@dataclass
class Sim:
    """Client and model server on a seeded lossy, duplicating, reordering channel in virtual time."""

    content: bytes
    client: TftpClient
    rng: random.Random
    loss: float = 0.0
    dup: float = 0.0
    jitter: float = 0.0
    options: bool = True  # does the server do RFC 2347?
    server_blksize: int = 65464
    server_window: int = 64
    now: float = 0.0
    queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    seq: int = 0
    sessions: dict[int, Session] = field(default_factory=dict)
    received: bytearray = field(default_factory=bytearray)
    results: list[Output] = field(default_factory=list)

    def at(self, delay: float, action: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (self.now + delay, self.seq, action))

    def wire(self, action: Callable[[], None]) -> None:
        for _ in range(2 if self.rng.random() < self.dup else 1):
            if self.rng.random() >= self.loss:
                self.at(0.001 + self.rng.random() * self.jitter, action)

    def to_client(self, packet: bytes, port: int) -> None:
        self.wire(lambda: self.client_outputs(self.client.handle(Datagram(packet, ("10.0.0.1", port)))))

    def client_outputs(self, out: list[Output]) -> None:
        for o in out:
            if isinstance(o, tftp.Send):
                self.wire(lambda o=o: self.server_receive(o.data, o.to[1]))  # type: ignore[misc]
            elif isinstance(o, SetTimer):
                self.at(o.seconds, lambda o=o: self.client_outputs(self.client.handle(TimerExpired(o.token))))  # type: ignore[misc]
            elif isinstance(o, Data):
                assert o.offset == len(self.received)
                self.received += o.payload
            else:
                self.results.append(o)

    def server_receive(self, packet: bytes, port: int) -> None:
        opcode = int.from_bytes(packet[:2], "big")
        if port == 69 and opcode == 1:  # like tftpd-hpa, every RRQ forks a session on a new port
            fields = packet[2:].split(b"\0")
            asked = dict(zip(fields[2:-1:2], fields[3:-1:2], strict=True))
            session = Session(40000 + len(self.sessions), self.content)
            if self.options and asked:
                pairs = []
                for name, value in asked.items():
                    if name == b"blksize":
                        session.blksize = min(int(value), self.server_blksize)
                        pairs.append(("blksize", str(session.blksize)))
                    elif name == b"windowsize":
                        session.window = min(int(value), self.server_window)
                        pairs.append(("windowsize", str(session.window)))
                    elif name == b"tsize":
                        pairs.append(("tsize", str(len(self.content))))
                    elif name == b"timeout":
                        pairs.append(("timeout", value.decode()))
                session.oack, session.base = oack(*pairs), 0
            self.sessions[session.port] = session
            self.transmit(session)
            return
        current = self.sessions.get(port)
        if current is None or current.finished:
            return
        if opcode == 5:
            current.finished = True
        elif opcode == 4 and current.on_ack(int.from_bytes(packet[2:4], "big")):
            self.transmit(current)

    def transmit(self, session: Session) -> None:
        for packet in session.packets():
            self.to_client(packet, session.port)
        base = session.base

        def retry() -> None:
            if not session.finished and session.base == base:
                session.tries += 1
                session.finished = session.tries > 8
                if not session.finished:
                    self.transmit(session)

        self.at(0.7, retry)

    def run(self) -> Output:
        self.client_outputs(self.client.start())
        while self.queue and self.now < 3600:
            self.now, _, action = heapq.heappop(self.queue)
            action()
        [result] = [r for r in self.results if isinstance(r, Done | Failed)]
        return result


def content_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("blksize", [8, 512, 1432, 8192])
@pytest.mark.parametrize("windowsize", [None, 1, 4, 16])
@pytest.mark.parametrize("extra", [0, 1, -1])  # exact multiple, one over, one short
def test_lossless_transfers(blksize: int, windowsize: int | None, extra: int) -> None:
    content = content_of(blksize * 9 + extra)
    client = TftpClient("f", SERVER, blksize=blksize, windowsize=windowsize)
    sim = Sim(content, client, random.Random(1))
    assert sim.run() == Done(len(content))
    assert bytes(sim.received) == content and client.blksize == blksize
    assert client.stats.retransmissions == client.stats.duplicates == client.stats.dropped == 0
    assert client.stats.acks == 1 + -(-client.stats.blocks // (windowsize or 1))  # ACK 0, then one per window


def test_empty_file_and_plain_server() -> None:
    sim = Sim(b"", TftpClient("f", SERVER), random.Random(1))
    assert sim.run() == Done(0) and sim.results[0] == SizeKnown(0)
    content = content_of(5000)
    client = TftpClient("f", SERVER, windowsize=8)
    sim = Sim(content, client, random.Random(1), options=False)
    assert sim.run() == Done(5000) and bytes(sim.received) == content and client.blksize == 512


def test_server_lowers_blksize_and_window() -> None:
    content = content_of(30000)
    client = TftpClient("f", SERVER, blksize=8192, windowsize=32)
    sim = Sim(content, client, random.Random(1), server_blksize=1024, server_window=3)
    assert sim.run() == Done(30000) and bytes(sim.received) == content
    assert (client.blksize, client.windowsize) == (1024, 3)


def test_retransmitted_rrq_forks_a_second_session_which_gets_error_5() -> None:
    content = content_of(4000)
    client = TftpClient("f", SERVER, backoff=Backoff(initial=0.0005, cap=1.0, give_up=15.0))
    sim = Sim(content, client, random.Random(1))  # the RRQ timer fires before the OACK lands
    assert sim.run() == Done(4000) and bytes(sim.received) == content
    assert len(sim.sessions) >= 2 and client.peer == ("10.0.0.1", 40000)
    assert client.stats.foreign >= 1 and all(s.finished for s in sim.sessions.values())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("windowsize", [None, 8])
def test_lossy_channel_delivers_the_exact_bytes(seed: int, windowsize: int | None) -> None:
    content = content_of(512 * 60 + 77, seed)
    client = TftpClient("f", SERVER, blksize=512, windowsize=windowsize)
    sim = Sim(content, client, random.Random(seed), loss=0.1, dup=0.1, jitter=0.02)
    assert sim.run() == Done(len(content))
    assert bytes(sim.received) == content
    assert client.stats.blocks == 61


def test_lossy_channel_exercises_every_recovery_path() -> None:
    totals = tftp.Stats()
    for seed in range(6):
        client = TftpClient("f", SERVER, blksize=512, windowsize=8)
        Sim(content_of(40000, seed), client, random.Random(seed), loss=0.15, dup=0.15, jitter=0.05).run()
        for name in ("retransmissions", "duplicates", "out_of_order"):
            setattr(totals, name, getattr(totals, name) + getattr(client.stats, name))
    assert totals.retransmissions and totals.duplicates and totals.out_of_order


def test_dead_channel_times_out() -> None:
    client = TftpClient("f", SERVER)
    sim = Sim(content_of(100), client, random.Random(1), loss=1.0)
    result = sim.run()
    assert isinstance(result, Failed) and result.error.code("pcbios") == 0x4C126035
    assert sim.now == pytest.approx(15.0)


# ---- fuzz --------------------------------------------------------------------------------

sources = st.sampled_from([SERVER, TID, OTHER_TID, OTHER_HOST])
option_pairs = st.lists(
    st.tuples(
        st.sampled_from(["blksize", "tsize", "windowsize", "timeout", "x", ""]),
        st.one_of(st.integers(0, 70000).map(str), st.text(max_size=4)),
    ),
    max_size=4,
)
datagrams = st.one_of(
    st.binary(max_size=24),
    st.builds(data, st.integers(0, 6), st.binary(max_size=20)),
    st.builds(data, st.integers(0, 65535), st.binary(max_size=20)),
    option_pairs.map(lambda pairs: oack(*pairs)),
    st.builds(error, st.integers(0, 65535), st.text(max_size=8)),
    st.builds(ack, st.integers(0, 65535)),
)
inputs = st.lists(
    st.one_of(st.builds(Datagram, datagrams, sources), st.builds(TimerExpired, st.integers(0, 8))),
    max_size=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=inputs,
    blksize=st.sampled_from([8, 16, 512, None]),
    windowsize=st.sampled_from([None, 1, 3]),
    tsize=st.booleans(),
    start=st.booleans(),
)
def test_fuzz_never_raises_and_delivers_only_valid_data(
    events: list[Datagram | TimerExpired], blksize: int | None, windowsize: int | None, tsize: bool, start: bool
) -> None:
    client = TftpClient("f", SERVER, blksize=blksize, windowsize=windowsize, tsize=tsize)
    if start:
        client.start()
    offset, finished = 0, False
    for event in events:
        before = client.state
        out = client.handle(event)
        chunks = [o for o in out if isinstance(o, Data)]
        assert len(chunks) <= 1
        for chunk in chunks:
            assert isinstance(event, Datagram) and event.data[:2] == b"\x00\x03"
            assert event.data[4:] == chunk.payload and event.source == client.peer
            assert chunk.offset == offset and len(chunk.payload) <= client.blksize
            offset += len(chunk.payload)
        if finished:
            assert all(isinstance(o, tftp.Send) for o in out)
        if any(isinstance(o, Done | Failed) for o in out):
            finished = True
            assert client.state in (State.DONE, State.FAILED)
        if before in (State.IDLE, State.FAILED, State.CANCELLED):
            assert out == []
    assert client.stats.payload_bytes == offset
