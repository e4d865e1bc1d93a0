"""A sans-IO TFTP read client: RFC 1350 with options (RFC 2347/2348/2349/7440), as iPXE asks.

Why hand-written: no maintained sans-IO TFTP library exists for Python (tftpy and
py3tftp own their sockets and event loops), and pyipxe needs iPXE's exact request
(``blksize 1432``, ``tsize 0``), its error numbers and its leniencies. The protocol is
small enough to state as one table.

Rules of this module (everything that affects transitions lives here):
- No sockets, no clocks, no asyncio. A driver feeds :class:`Datagram` and
  :class:`TimerExpired` to :meth:`TftpClient.handle` and acts on the returned outputs:
  :class:`Send`, :class:`SetTimer`, :class:`SizeKnown`, :class:`Data`, :class:`Done`,
  :class:`Failed`. Addresses are ``(host, port)`` exactly as the socket reports them.
- Nothing from the network raises. Malformed, truncated, oversized or unexpected
  packets are dropped and counted in :class:`Stats`; only caller misuse raises.
- Bytes are delivered exactly once and in order: ``Data.offset`` always equals the
  number of bytes delivered before it. Blocks that arrive early are not buffered.
- One retransmission timer. Each :class:`SetTimer` replaces the previous one; an expiry
  whose token is not the latest is stale and ignored. Done/Failed end all timers.
- The timer is lazy: blocks do not re-arm it (that would cost an event per packet). An
  expiry after progress since it was armed just re-arms it at the initial interval, so a
  stall is noticed within two intervals and retransmissions count only silent intervals.
- :meth:`TftpClient.receive` is the hot path: the next in-order full-sized block from the
  peer is recognised by its 4-byte header and length alone and skips the general parser.

Theory of operation. ``start()`` sends the RRQ to the server port. The first acceptable
reply from the server's host locks the transfer ID (the server's new port); later
packets from any other source get ERROR 5 and change nothing. An OACK is checked
against what we asked (ERROR 8 and failure if the server added options or raised
values) and answered with ACK 0; a DATA 1 instead means the server ignores options and
RFC 1350 values apply. Blocks are numbered absolutely inside and compared modulo 2**16
on the wire, so transfers past block 65535 wrap to 0 (as tftpd-hpa and iPXE do). We ACK
every ``windowsize``-th in-order block and the short block that ends the file. A
duplicate or early block prompts a re-ACK of the last in-order block (RFC 7440 §4), then
one more per ``windowsize`` further strays at the same position: in lock-step that
answers every retransmission of the server (RFC 1350), while a retransmitted window of
``windowsize`` blocks earns one ACK, not one per block, so it cannot start an ACK storm.

Transitions (state x packet from the transfer peer); pairs not listed drop the packet:

    state         OACK                        DATA                           ERROR
    REQUESTING    ok: ACK 0 -> TRANSFERRING   block 1: RFC 1350 -> as below  -> FAILED
                  bad: ERROR 8 -> FAILED
    TRANSFERRING  before block 1: re-ACK 0    in order: deliver (-> DONE on  -> FAILED
                                              a short block); else re-ACK
    DONE          -                           final block again: re-ACK it   -

Timer expiry (irregular, in code below the table): after progress it only re-arms; else
REQUESTING resends the RRQ, TRANSFERRING re-ACKs the last in-order block; the interval
doubles up to a cap and the transfer fails with ETIMEDOUT after ``Backoff.give_up`` seconds
without progress.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError, register_special

Address = tuple[str, int]

TFTP_PORT = 69
RFC1350_BLKSIZE = 512
IPXE_BLKSIZE = 1432  # what iPXE requests (reference §4.2): fits a 1500-byte MTU
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464  # RFC 2348
MAX_WINDOWSIZE = 65535  # RFC 7440


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


# Errors, numbered as iPXE's net/udp/tftp.c (file 0x12, net category) raises them (§1.8).
# TFTP error 1 is "Not found" 2d12613b in current iPXE (reference §1.8; iPXE 1.21.1 prints
# "tftp://…/menu.ipxe... Not found (https://ipxe.org/2d12613b)"); the 2019 build printed the
# plain ENOENT 2d12603b, and the golden transcripts target current iPXE.
ERR_NOT_FOUND = register_special(ErrorSite(ErrorClass.ENOENT, 0x1261, "Not found"))  # TFTP error 1
ERR_ACCESS_DENIED = ErrorSite(ErrorClass.EACCES, 0x1260)  # TFTP error 2
ERR_ILLEGAL_OP = ErrorSite(ErrorClass.ENOTTY, 0x1260)  # TFTP error 4
ERR_SERVER = ErrorSite(ErrorClass.ENOTSUP, 0x1260)  # any other TFTP error code
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x1260)
ERR_INVALID_BLKSIZE = ErrorSite(ErrorClass.EINVAL, 0x1261)  # iPXE's EINVAL_BLKSIZE
ERR_INVALID_TSIZE = ErrorSite(ErrorClass.EINVAL, 0x1262)  # iPXE's EINVAL_TSIZE
# iPXE ignores options it did not ask for; we refuse them (RFC 2347 §"Option Acknowledgment").
ERR_INVALID_OPTION = ErrorSite(ErrorClass.EINVAL, 0x1260)

_SERVER_ERRORS: dict[int, ErrorSite] = {1: ERR_NOT_FOUND, 2: ERR_ACCESS_DENIED, 4: ERR_ILLEGAL_OP}

# TFTP error codes we send.
_UNDEFINED, _UNKNOWN_TID, _BAD_OPTIONS = 0, 5, 8

# OACK option -> (error if unacceptable, acceptable(got, asked)). Servers may lower
# blksize (RFC 2348) and windowsize (RFC 7440) but must echo timeout (RFC 2349).
_OPTION_RULES: dict[str, tuple[ErrorSite, Callable[[int, int], bool]]] = {
    "blksize": (ERR_INVALID_BLKSIZE, lambda got, asked: MIN_BLKSIZE <= got <= asked),
    "tsize": (ERR_INVALID_TSIZE, lambda got, asked: True),
    "timeout": (ERR_INVALID_OPTION, lambda got, asked: got == asked),
    "windowsize": (ERR_INVALID_OPTION, lambda got, asked: 1 <= got <= asked),
}


# ---- events in ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP payload that arrived on the client's socket, and where it came from."""

    data: bytes
    source: Address


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """The timer armed by the :class:`SetTimer` carrying ``token`` ran out."""

    token: int


Input = Datagram | TimerExpired


# ---- events out --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` as one UDP datagram to ``to`` (the RRQ port, then the locked TID)."""

    data: bytes
    to: Address


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm the single retransmission timer; report its expiry with the same token."""

    seconds: float
    token: int


@dataclass(frozen=True, slots=True)
class SizeKnown:
    """The server announced the file size (``tsize``), before any data."""

    size: int


@dataclass(frozen=True, slots=True)
class Data:
    """File bytes at ``offset``; offsets are contiguous and never repeat."""

    offset: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Done:
    """The file is complete (``size`` bytes); stop the timer. The final ACK is sent."""

    size: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The transfer failed; ``reason`` is for ``-v`` diagnostics, ``error`` for ``${errno}``."""

    error: IpxeError
    reason: str
    server_code: int | None = None  # the TFTP error code, when the server sent an ERROR


Output = Send | SetTimer | SizeKnown | Data | Done | Failed


class State(Enum):
    IDLE = "idle"
    REQUESTING = "requesting"
    TRANSFERRING = "transferring"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


_ACTIVE = frozenset({State.REQUESTING, State.TRANSFERRING})


@dataclass(frozen=True)
class Backoff:
    """Retransmission schedule: wait ``initial`` s, doubling up to ``cap``; give up after ``give_up`` s of silence.

    iPXE's retry timer starts from an RTT estimate and fails once its doubled timeout
    passes 10 s (about 15.75 s in all). We have no estimate, so we start at the classic
    TFTP 1 s and keep the same overall patience: 1, 2, 4, 4, 4 -> fail at 15 s.
    """

    initial: float = 1.0
    cap: float = 4.0
    give_up: float = 15.0


@dataclass
class Stats:
    """Counters for ``-v`` output and benchmarks."""

    blocks: int = 0  # in-order blocks delivered
    payload_bytes: int = 0
    acks: int = 0  # ACKs sent, including re-ACKs
    retransmissions: int = 0  # RRQs/ACKs resent on timer expiry
    duplicates: int = 0  # blocks (or OACKs) already received
    out_of_order: int = 0  # blocks ahead of a gap, discarded
    dropped: int = 0  # malformed, truncated, oversized or unexpected packets
    foreign: int = 0  # packets from a source other than the transfer peer


# ---- wire format -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Packet:
    opcode: Opcode
    block: int = 0
    payload: bytes = b""
    options: tuple[tuple[str, str], ...] = ()
    code: int = 0
    message: str = ""


def _parse(data: bytes) -> _Packet | None:
    """Decode one datagram, or ``None`` when it is not a well-formed TFTP packet."""
    if len(data) < 2:
        return None
    opcode = int.from_bytes(data[:2], "big")
    if opcode == Opcode.OACK:
        return _Packet(Opcode.OACK, options=_parse_options(data[2:]))
    if len(data) < 4:
        return None
    number = int.from_bytes(data[2:4], "big")
    if opcode == Opcode.DATA:
        return _Packet(Opcode.DATA, block=number, payload=data[4:])
    if opcode == Opcode.ERROR:
        message = data[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return _Packet(Opcode.ERROR, code=number, message=message)
    if opcode == Opcode.ACK and len(data) == 4:
        return _Packet(Opcode.ACK, block=number)
    if opcode in (Opcode.RRQ, Opcode.WRQ) and data.endswith(b"\0"):
        return _Packet(Opcode(opcode))
    return None


def _parse_options(body: bytes) -> tuple[tuple[str, str], ...]:
    """OACK name/value pairs, stopping at the first incomplete one.

    Lenient like iPXE: at least one server (IBM Tivoli PXE 5.1) pads OACKs with
    trailing garbage, and refusing those would make the file unreachable.
    """
    fields = body.split(b"\0")[:-1]  # the last piece is unterminated (or empty)
    pairs: list[tuple[str, str]] = []
    for i in range(0, len(fields) - 1, 2):
        if not fields[i]:
            break
        pairs.append((fields[i].decode("latin-1"), fields[i + 1].decode("latin-1")))
    return tuple(pairs)


def _number(text: str) -> int | None:
    """A decimal option value (RFC 2347: ASCII digits only), bounded so int() cannot balk."""
    return int(text) if 0 < len(text) <= 20 and text.isascii() and text.isdigit() else None


_DATA_HEADER = struct.Struct("!HH")  # opcode and block number: the header of DATA and ACK


def _ack(block: int) -> bytes:
    return _DATA_HEADER.pack(Opcode.ACK, block & 0xFFFF)


def _error(code: int, message: str) -> bytes:
    return struct.pack("!HH", Opcode.ERROR, code) + message.encode() + b"\0"


def encode_rrq(filename: bytes, options: dict[str, int]) -> bytes:
    """An octet-mode read request with ``options`` in the given order."""
    pairs = b"".join(name.encode() + b"\0" + str(value).encode() + b"\0" for name, value in options.items())
    return struct.pack("!H", Opcode.RRQ) + filename + b"\0octet\0" + pairs


def filename_from_uri_path(path: str) -> str:
    """The RRQ filename for a ``tftp://`` URI path: iPXE drops only the first ``/``.

    So ``tftp://h/pxelinux.0`` asks for ``pxelinux.0`` and ``tftp://h//abs`` for ``/abs``.
    """
    return path[1:] if path.startswith("/") else path


# ---- the client --------------------------------------------------------------------------


class TftpClient:
    """One TFTP download as a state machine; see the module docstring for the rules."""

    def __init__(
        self,
        filename: str | bytes,
        server: Address,
        *,
        blksize: int | None = IPXE_BLKSIZE,
        tsize: bool = True,
        windowsize: int | None = None,
        timeout: int | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        name = filename.encode() if isinstance(filename, str) else filename
        if b"\0" in name:
            raise ValueError("TFTP filename contains NUL")
        limits = (("blksize", blksize, MIN_BLKSIZE, MAX_BLKSIZE), ("windowsize", windowsize, 1, MAX_WINDOWSIZE))
        for option, value, low, high in (*limits, ("timeout", timeout, 1, 255)):
            if value is not None and not low <= value <= high:
                raise ValueError(f"{option} {value} outside {low}..{high}")
        requested = {"blksize": blksize, "tsize": 0 if tsize else None, "timeout": timeout, "windowsize": windowsize}
        self._requested = {key: value for key, value in requested.items() if value is not None}
        self._rrq = encode_rrq(name, self._requested)
        self.server = server
        self.backoff = backoff or Backoff()
        self.state = State.IDLE
        self.stats = Stats()
        self.peer: Address | None = None  # the server's transfer ID, once locked
        self.blksize = RFC1350_BLKSIZE  # negotiated values: RFC 1350's unless acknowledged
        self.windowsize = 1
        self.tsize: int | None = None
        self.oack: tuple[tuple[str, str], ...] | None = None  # the options the server acknowledged
        self._next = 1  # absolute number of the block we need next
        self._offset = 0  # bytes delivered
        self._unacked = 0  # in-order blocks since our last ACK
        self._reacked_at = 0  # position (self._next) of our last unsolicited re-ACK
        self._strays = 0  # unexpected packets at that position since that re-ACK
        self._initial = self.backoff.initial
        self._interval = self._initial
        self._armed = 0.0  # duration of the timer now running
        self._armed_at = 0  # self._next when it was armed: progress since then re-arms
        self._silent = 0.0  # seconds waited since the last progress
        self._token = 0
        # Hot path (receive): the exact header and size of the next full block; b"-" never matches.
        self._want = b"-"
        self._full = 0

    # -- public surface

    def start(self) -> list[Output]:
        """Send the RRQ and arm the timer."""
        if self.state is not State.IDLE:
            raise RuntimeError("TFTP client already started")
        self.state = State.REQUESTING
        return [Send(self._rrq, self.server), self._progress_timer()]

    def handle(self, event: Input) -> list[Output]:
        """Feed one datagram or timer expiry; returns what to do, in order."""
        if isinstance(event, TimerExpired):
            return self._on_timer(event.token)
        return self.receive(event.data, event.source)

    def receive(self, data: bytes, source: Address) -> list[Output]:
        """``handle(Datagram(data, source))`` without building the event: the driver's hot path."""
        if data[:4] == self._want and len(data) == self._full and source == self.peer:
            # The next block, full-sized, from the peer: _deliver() minus everything a full
            # in-order block cannot need (parsing, dispatch, the final-block check).
            offset = self._offset
            self._offset = offset + self.blksize
            self._next += 1
            self._want = _DATA_HEADER.pack(Opcode.DATA, self._next & 0xFFFF)
            stats = self.stats
            stats.blocks += 1
            stats.payload_bytes += self.blksize
            self._unacked += 1
            if self._unacked < self.windowsize:
                return [Data(offset, data[4:])]
            self._unacked = 0
            stats.acks += 1
            return [Data(offset, data[4:]), Send(_DATA_HEADER.pack(Opcode.ACK, (self._next - 1) & 0xFFFF), source)]
        packet = _parse(data)
        if not self._from_peer(source):
            return self._on_foreign(packet, source)
        handler = _TRANSITIONS.get(self.state, {}).get(packet.opcode) if packet is not None else None
        if handler is None or packet is None:
            self.stats.dropped += 1
            return []
        out = handler(self, packet, source)
        self._want = _DATA_HEADER.pack(Opcode.DATA, self._next & 0xFFFF) if self.state is State.TRANSFERRING else b"-"
        self._full = self.blksize + 4
        return out

    @property
    def asked(self) -> dict[str, int]:
        """The options our RRQ carries, by name."""
        return dict(self._requested)

    @property
    def acked(self) -> int:
        """Absolute number of the last block we acknowledge (0 before any data)."""
        return self._next - 1

    def abort(self) -> list[Output]:
        """Give up locally (Ctrl-C): tell the server as iPXE does, with ERROR 0 "TFTP Aborted"."""
        if self.state not in _ACTIVE:
            return []
        self.state = State.CANCELLED
        return [Send(_error(_UNDEFINED, "TFTP Aborted"), self.peer)] if self.peer is not None else []

    # -- filtering

    def _from_peer(self, source: Address) -> bool:
        """Before the TID is locked any port of the server's host may answer; after, only the TID."""
        if self.peer is not None:
            return source == self.peer
        return source[0] == self.server[0]

    def _on_foreign(self, packet: _Packet | None, source: Address) -> list[Output]:
        """RFC 1350 §4: answer a stray TFTP packet with ERROR 5, but never an ERROR (no ping-pong)."""
        self.stats.foreign += 1
        if packet is None or packet.opcode is Opcode.ERROR or self.state not in _ACTIVE:
            return []
        return [Send(_error(_UNKNOWN_TID, "Unknown transfer ID"), source)]

    # -- transitions (dispatched through _TRANSITIONS)

    def _on_oack(self, packet: _Packet, source: Address) -> list[Output]:
        self.peer = source
        self.oack = packet.options
        problem = self._negotiate(packet.options)
        if problem is not None:
            site, reason = problem
            return [Send(_error(_BAD_OPTIONS, reason), source), self._fail(site, reason)]
        self.state = State.TRANSFERRING
        out: list[Output] = [SizeKnown(self.tsize)] if self.tsize is not None else []
        return [*out, self._send_ack(), self._progress_timer()]

    def _negotiate(self, options: tuple[tuple[str, str], ...]) -> tuple[ErrorSite, str] | None:
        """Apply an OACK, or say why it is unacceptable (RFC 2347: only options we asked for)."""
        if not self._requested:
            return ERR_INVALID_OPTION, "Unexpected OACK"
        agreed: dict[str, int] = {}
        for raw, text in options:
            name = raw.lower()
            if name not in self._requested or name in agreed:
                return ERR_INVALID_OPTION, f"Unexpected option {raw}"
            site, acceptable = _OPTION_RULES[name]
            value = _number(text)
            if value is None or not acceptable(value, self._requested[name]):
                return site, f"Invalid {name} {text}"
            agreed[name] = value
        self.blksize = agreed.get("blksize", RFC1350_BLKSIZE)
        self.windowsize = agreed.get("windowsize", 1)
        self.tsize = agreed.get("tsize")
        if "timeout" in agreed:
            self._initial = float(agreed["timeout"])
        return None

    def _on_late_oack(self, packet: _Packet, source: Address) -> list[Output]:
        """A repeated OACK means our ACK 0 was lost, as long as no data has come since."""
        if self._next != 1:
            self.stats.dropped += 1
            return []
        self.stats.duplicates += 1
        return self._reack()

    def _on_data(self, packet: _Packet, source: Address) -> list[Output]:
        if len(packet.payload) > self.blksize or (self.state is State.REQUESTING and packet.block != 1):
            self.stats.dropped += 1
            return []
        if self.state is State.REQUESTING:
            # The server ignored our options (RFC 2347 §"Option Acknowledgment"): RFC 1350 rules.
            self.peer = source
            self.state = State.TRANSFERRING
        distance = (packet.block - self._next) & 0xFFFF
        if distance == 0:
            return self._deliver(packet.payload)
        if distance >= 0x8000:
            self.stats.duplicates += 1
        else:
            self.stats.out_of_order += 1
        return self._reack()

    def _on_error(self, packet: _Packet, source: Address) -> list[Output]:
        site = _SERVER_ERRORS.get(packet.code, ERR_SERVER)
        self.state = State.FAILED
        return [Failed(IpxeError(site), f"TFTP error {packet.code}: {packet.message}", packet.code)]

    def _on_final_repeat(self, packet: _Packet, source: Address) -> list[Output]:
        """After DONE the server may resend the last block because our final ACK was lost."""
        self.stats.duplicates += 1
        return [self._send_ack()] if packet.block == (self._next - 1) & 0xFFFF else []

    # -- helpers

    def _deliver(self, payload: bytes) -> list[Output]:
        out: list[Output] = [Data(self._offset, payload)] if payload else []
        self._offset += len(payload)
        self._next += 1
        self._unacked += 1
        self.stats.blocks += 1
        self.stats.payload_bytes += len(payload)
        final = len(payload) < self.blksize
        if final or self._unacked >= self.windowsize:
            out.append(self._send_ack())
        if final:
            self.state = State.DONE
            out.append(Done(self._offset))
        return out

    def _reack(self) -> list[Output]:
        """Re-ACK the last in-order block: once, then once per window of strays (module docstring)."""
        if self._reacked_at == self._next:
            self._strays += 1
            if self._strays < self.windowsize:
                return []
        self._reacked_at = self._next
        self._strays = 0
        return [self._send_ack()]

    def _send_ack(self) -> Send:
        assert self.peer is not None
        self._unacked = 0
        self.stats.acks += 1
        return Send(_ack(self._next - 1), self.peer)

    def _fail(self, site: ErrorSite, reason: str) -> Failed:
        self.state = State.FAILED
        return Failed(IpxeError(site), reason)

    def _progress_timer(self) -> SetTimer:
        """Progress was made: restart the backoff from its initial interval."""
        self._silent = 0.0
        self._interval = self._initial
        return self._arm(self._interval)

    def _arm(self, seconds: float) -> SetTimer:
        self._token += 1
        self._armed = seconds
        self._armed_at = self._next
        return SetTimer(seconds, self._token)

    def _on_timer(self, token: int) -> list[Output]:
        if token != self._token or self.state not in _ACTIVE:
            return []
        if self._next != self._armed_at:  # blocks arrived meanwhile: not silence, just re-arm
            return [self._progress_timer()]
        self._silent += self._armed
        remaining = self.backoff.give_up - self._silent
        if remaining <= 1e-9:
            return [self._fail(ERR_TIMED_OUT, f"No reply for {self._silent:g} s")]
        self._interval = min(self._interval * 2, max(self.backoff.cap, self._initial))
        self.stats.retransmissions += 1
        resend = Send(self._rrq, self.server) if self.state is State.REQUESTING else self._send_ack()
        return [resend, self._arm(min(self._interval, remaining))]


_Handler = Callable[[TftpClient, _Packet, Address], list[Output]]

# The regular transitions: state -> opcode -> handler. Anything else is dropped and counted.
_TRANSITIONS: dict[State, dict[Opcode, _Handler]] = {
    State.REQUESTING: {
        Opcode.OACK: TftpClient._on_oack,
        Opcode.DATA: TftpClient._on_data,
        Opcode.ERROR: TftpClient._on_error,
    },
    State.TRANSFERRING: {
        Opcode.OACK: TftpClient._on_late_oack,
        Opcode.DATA: TftpClient._on_data,
        Opcode.ERROR: TftpClient._on_error,
    },
    State.DONE: {Opcode.DATA: TftpClient._on_final_repeat},
}
