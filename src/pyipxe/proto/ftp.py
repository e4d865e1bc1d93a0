"""A sans-IO FTP download client (RFC 959 control channel, passive mode), as iPXE's ``ftp://`` talks.

Why hand-written: no maintained sans-IO FTP client exists for Python. ``ftplib`` is blocking
and owns its sockets; the asyncio FTP packages (aioftp) own theirs too and speak a different
sequence. iPXE's exchange is a fixed script (reference §4.2), so it is stated here as a table.

Rules of this module (everything that affects transitions lives here):
- No sockets, no clocks. The driver feeds control-channel bytes to :meth:`FtpClient.receive`,
  reports the data connection's clean end with :meth:`~FtpClient.data_finished` and the
  server closing the control connection with :meth:`~FtpClient.control_closed`, and acts on
  :class:`Send`, :class:`SizeKnown`, :class:`OpenData`, :class:`Done` and :class:`Failed`.
  The file's bytes never pass through here: the driver streams the data connection to the sink.
- Nothing from the network raises. Lines are bounded (:data:`MAX_LINE`); malformed lines are
  ignored, as iPXE ignores them; unusable replies fail with iPXE's error numbers.

Theory of operation (iPXE's net/tcp/ftp.c). Replies are RFC 959 lines ``ddd text``; a
multi-line reply (``ddd-`` … ``ddd text``) counts once, at its last line. 1xx replies are
progress and ignored. Each other reply moves the script on or ends it:

    state    command sent              2xx                     3xx        other
    CONNECT  (greeting)                -> USER                 EPROTO     EPROTO
    USER     USER <user|anonymous>     -> TYPE (no password)   -> PASS    EPROTO
    PASS     PASS <pw|ipxe@ipxe.org>   -> TYPE                 EPROTO     EPROTO
    TYPE     TYPE I                    -> SIZE                 EPROTO     EPROTO
    SIZE     SIZE <path>               size known -> PASV      EPROTO     5xx: -> PASV; else EPROTO
    PASV     PASV                      open data, -> RETR      EPROTO     EPROTO
    RETR     RETR <path>               transfer reply          EPROTO     EPROTO
    QUIT     QUIT                      -> DONE                 EPROTO     EPROTO

RETR ends when both the transfer reply (226) and the data connection's end have come, in
either order; then QUIT. iPXE sends PASS even after a 2xx to USER; RFC 959 says the user is
then logged in, so we go straight to TYPE. iPXE reports success when the server closes the
control connection at any point; we do so only once the file is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

FTP_PORT = 21
DEFAULT_USER = "anonymous"
DEFAULT_PASSWORD = "ipxe@ipxe.org"
#: longest reply line kept; the rest of a longer line is dropped (iPXE keeps 4 characters)
MAX_LINE = 1024

# net/tcp/ftp.c (ERRFILE_ftp = net file 0x0b): its errors are plain EPROTO/EINVAL.
ERR_PROTOCOL = ErrorSite(ErrorClass.EPROTO, 0x0B60)
ERR_INVALID = ErrorSite(ErrorClass.EINVAL, 0x0B60)
# Ours: the server hung up before the file was complete (iPXE calls that success).
ERR_CLOSED = ErrorSite(ErrorClass.ECONNRESET, 0x0B60)


class State(Enum):
    CONNECT = "connect"
    USER = "user"
    PASS = "pass"
    TYPE = "type"
    SIZE = "size"
    PASV = "pasv"
    RETR = "retr"
    QUIT = "quit"
    DONE = "done"
    FAILED = "failed"


# ---- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` (one command line) to the control connection."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SizeKnown:
    size: int


@dataclass(frozen=True, slots=True)
class OpenData:
    """Connect the data connection to ``host``:``port`` and stream it into the file from offset 0."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Done:
    """The file is complete and the session ended; close the control connection."""


@dataclass(frozen=True, slots=True)
class Failed:
    error: IpxeError
    reason: str


Output = Send | SizeKnown | OpenData | Done | Failed


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str


def check_text(text: str) -> None:
    """iPXE's ``ftp_check_string``: URI fields go on a line-based channel, so printable ASCII only."""
    if any(not " " <= char <= "~" for char in text):
        raise IpxeError(ERR_INVALID)


# ---- reply parsing ---------------------------------------------------------------------------


class ReplyReader:
    """Cuts the control stream into replies (RFC 959 §4.2), bounded and lenient."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._multiline: bytes | None = None  # the code of a multi-line reply in progress

    def feed(self, data: bytes) -> list[Reply]:
        replies: list[Reply] = []
        for piece in re.split(rb"([\r\n])", data):
            if piece in (b"\r", b"\n"):
                reply = self._end_line(bytes(self._line))
                self._line.clear()
                if reply is not None:
                    replies.append(reply)
            elif piece:
                room = MAX_LINE - len(self._line)
                self._line += piece[:max(room, 0)]
        return replies

    def _end_line(self, line: bytes) -> Reply | None:
        if not line:
            return None  # the \n of \r\n, or a blank line
        code = line[:3]
        if self._multiline is not None:
            if code == self._multiline and line[3:4] in (b" ", b""):
                self._multiline = None
                return Reply(int(code), line[4:].decode("latin-1"))
            return None
        if not (code.isdigit() and len(code) == 3):
            return None
        separator = line[3:4]
        if separator == b"-":
            self._multiline = code
            return None
        if separator in (b" ", b""):
            return Reply(int(code), line[4:].decode("latin-1"))
        return None


_PASV_NUMBERS = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


def parse_pasv(text: str) -> tuple[str, int] | None:
    """The address of a 227 reply, ``h1,h2,h3,h4,p1,p2``, wherever it stands (RFC 1123 §4.1.2.6)."""
    match = _PASV_NUMBERS.search(text)
    if match is None:
        return None
    numbers = [int(group) for group in match.groups()]
    if any(number > 255 for number in numbers):
        return None
    return ".".join(map(str, numbers[:4])), numbers[4] << 8 | numbers[5]


def parse_size(text: str) -> int | None:
    """The size of a 213 reply: its last word, all decimal digits (iPXE: ``strtoul`` to the end)."""
    words = text.split()
    if not words or not words[-1].isascii() or not words[-1].isdigit() or len(words[-1]) > 20:
        return None
    return int(words[-1])


# ---- the client ------------------------------------------------------------------------------


class FtpClient:
    """One ``ftp://`` download's control channel; see the module docstring."""

    def __init__(self, path: str, user: str | None = None, password: str | None = None) -> None:
        for text in (path, user or "", password or ""):
            check_text(text)
        self.path = path
        self.user = DEFAULT_USER if user is None else user
        self.password = DEFAULT_PASSWORD if password is None else password
        self.state = State.CONNECT
        self.size: int | None = None
        self.replies: list[Reply] = []  # every reply seen, for -v diagnostics
        self._reader = ReplyReader()
        self._transfer_replied = False
        self._data_finished = False

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.FAILED)

    def receive(self, data: bytes) -> list[Output]:
        out: list[Output] = []
        for reply in self._reader.feed(data):
            if self.finished:
                break
            self.replies.append(reply)
            out += self._on_reply(reply)
        return out

    def data_finished(self) -> list[Output]:
        """The data connection ended cleanly (EOF)."""
        if self.state is not State.RETR or self._data_finished:
            return []
        self._data_finished = True
        return self._maybe_quit()

    def control_closed(self) -> list[Output]:
        if self.finished:
            return []
        if self.state is State.QUIT:  # the file is complete; the 221 went missing
            self.state = State.DONE
            return [Done()]
        return [self._fail(ERR_CLOSED, f"control connection closed by the server in state {self.state.value}")]

    # -- transitions

    def _on_reply(self, reply: Reply) -> list[Output]:
        major = reply.code // 100
        if major == 1:
            return []
        if self.state is State.SIZE and major == 5:  # no SIZE command, or no size for this file
            return self._command(State.PASV, "PASV")
        if not (major == 2 or (major == 3 and self.state is State.USER)):
            return [self._fail(ERR_PROTOCOL, f"{self.state.value.upper()}: {reply.code} {reply.text}".rstrip())]
        handler = _TRANSITIONS.get(self.state)
        return handler(self, reply) if handler is not None else []

    def _on_greeting(self, reply: Reply) -> list[Output]:
        return self._command(State.USER, f"USER {self.user}")

    def _on_user(self, reply: Reply) -> list[Output]:
        if reply.code // 100 == 3:
            return self._command(State.PASS, f"PASS {self.password}")
        return self._command(State.TYPE, "TYPE I")

    def _on_pass(self, reply: Reply) -> list[Output]:
        return self._command(State.TYPE, "TYPE I")

    def _on_type(self, reply: Reply) -> list[Output]:
        return self._command(State.SIZE, f"SIZE {self.path}")

    def _on_size(self, reply: Reply) -> list[Output]:
        size = parse_size(reply.text)
        if size is None:
            return [self._fail(ERR_PROTOCOL, f"invalid SIZE reply {reply.text!r}")]
        self.size = size
        return [SizeKnown(size), *self._command(State.PASV, "PASV")]

    def _on_pasv(self, reply: Reply) -> list[Output]:
        address = parse_pasv(reply.text)
        if address is None:
            return [self._fail(ERR_PROTOCOL, f"invalid PASV reply {reply.text!r}")]
        return [OpenData(*address), *self._command(State.RETR, f"RETR {self.path}")]

    def _on_transfer(self, reply: Reply) -> list[Output]:
        if self._transfer_replied:
            return []
        self._transfer_replied = True
        return self._maybe_quit()

    def _on_quit(self, reply: Reply) -> list[Output]:
        self.state = State.DONE
        return [Done()]

    # -- helpers

    def _maybe_quit(self) -> list[Output]:
        if self._transfer_replied and self._data_finished:
            return self._command(State.QUIT, "QUIT")
        return []

    def _command(self, state: State, line: str) -> list[Output]:
        self.state = state
        return [Send(line.encode("ascii") + b"\r\n")]

    def _fail(self, site: ErrorSite, reason: str) -> Failed:
        self.state = State.FAILED
        return Failed(IpxeError(site), reason)


_TRANSITIONS = {
    State.CONNECT: FtpClient._on_greeting,
    State.USER: FtpClient._on_user,
    State.PASS: FtpClient._on_pass,
    State.TYPE: FtpClient._on_type,
    State.SIZE: FtpClient._on_size,
    State.PASV: FtpClient._on_pasv,
    State.RETR: FtpClient._on_transfer,
    State.QUIT: FtpClient._on_quit,
}
