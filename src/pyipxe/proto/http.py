"""HTTP/1.1 client, sans-IO: iPXE's request, iPXE's reading of responses, Digest, resume bookkeeping.

Why hand-written rather than h11: three reasons, each measured or checked against iPXE's
``httpcore.c``/``httpauth.c``/``httpbasic.c``/``httpdigest.c``.

- iPXE's error numbers need to know *which* rule a server broke (a status line without a
  space after the code is ``EINVAL_STATUS``, an unknown transfer coding ``ENOTSUP_TRANSFER``,
  a bad chunk size ``EINVAL_CHUNK_LENGTH``…); h11 raises one exception type with prose.
- iPXE's rules are not RFC 7230's, and scripts that boot on iPXE must behave the same here:
  ``HTTP/1.1 200`` (no space) is rejected but ``HTTP/1.1,200 x`` accepted; HTTP/1.0 stays
  alive with ``Connection: keep-alive``; a chunk extension is an error; ``Content-Length:``
  with nothing after it means 0; any response with a ``Location`` (not only 3xx) redirects.
- Speed: h11 copies every body byte into its receive buffer and again into each ``Data``
  event. :class:`ResponseReader` hands body bytes out as ``memoryview`` slices of the buffer
  the socket filled, which the driver writes straight to the sink (``bench/http.py``
  measures both parsers on the same bytes).

Rules of this module:
- No sockets, clocks or randomness; the driver passes in the cnonce and the data.
- Text is bytes as UTF-8 with surrogate escapes (as everywhere in pyipxe); header and
  request bytes are produced from it with the same codec, so nothing is lost either way.
- Everything a server can send is parsed without raising anything but
  :class:`pyipxe.errors.IpxeError` with iPXE's number for that failure; work is linear
  and memory bounded (a response head over :data:`MAX_HEAD` bytes is refused).

Theory of operation. :func:`build_request` writes iPXE's request (header order and all).
:class:`ResponseReader` is fed whatever the socket delivered and returns events:
:class:`Head` once, :class:`Body` slices, then :class:`Finished` saying whether the
connection may be reused. Framing, chosen from the head, is iPXE's::

    state        data                                   connection closed
    HEAD         lines until an empty one -> framing    EPIPE
    LENGTH       body until Content-Length -> DONE      EIO "Content length mismatch"
    UNTIL_CLOSE  body                                   -> DONE (not reusable)
    CHUNK_SIZE   skip empty lines; hex size, 0->TRAILERS EPIPE
    CHUNK_DATA   body until the chunk ends -> CHUNK_SIZE EPIPE
    TRAILERS     lines until an empty one -> DONE       EPIPE
    DONE         any further byte is an error: EIO "Content length mismatch" after a
                 Content-Length body, else EPROTO "Unsolicited data"

The caller decides what a response *means* with :func:`should_retry` and the fields of
:class:`ResponseHead` (``error``, ``location``, ``challenge``, ``retry_after``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, NoReturn

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError, register_special
from pyipxe.uri import Uri, format_uri, uri_encode

C = ErrorClass

# -- errors -------------------------------------------------------------------------------
# net/tcp/httpcore.c is ERRFILE_httpcore (net file 0x0c): sites 0x0c60 | disambiguator.
ERR_INVALID_STATUS: Final = ErrorSite(C.EINVAL, 0x0C61)  # "Invalid status line"
ERR_INVALID_HEADER: Final = ErrorSite(C.EINVAL, 0x0C62)  # "Invalid header"
ERR_INVALID_CONTENT_LENGTH: Final = ErrorSite(C.EINVAL, 0x0C63)  # "Invalid content length"
ERR_INVALID_CHUNK_LENGTH: Final = ErrorSite(C.EINVAL, 0x0C64)  # "Invalid chunk length"
ERR_UNRECOGNISED_STATUS: Final = ErrorSite(C.EIO, 0x0C61)  # "Unrecognised HTTP response code"
ERR_LENGTH_MISMATCH: Final = ErrorSite(C.EIO, 0x0C62)  # "Content length mismatch"
ERR_CLIENT_ERROR: Final = register_special(ErrorSite(C.EIO, 0x0C64, "HTTP 4xx Client Error"))
ERR_SERVER_ERROR: Final = register_special(ErrorSite(C.EIO, 0x0C65, "HTTP 5xx Server Error"))
ERR_NOT_FOUND: Final = register_special(ErrorSite(C.ENOENT, 0x0C61, "Not found"))  # 404
ERR_UNAUTHORIZED: Final = ErrorSite(C.EACCES, 0x0C61)  # 401
ERR_FORBIDDEN: Final = ErrorSite(C.EPERM, 0x0C61)  # 403
ERR_REDIRECT: Final = ErrorSite(C.EXDEV, 0x0C60)  # 3xx (an error only without Location)
ERR_TRANSFER_ENCODING: Final = ErrorSite(C.ENOTSUP, 0x0C62)  # "Unsupported transfer encoding"
ERR_UNSOLICITED: Final = ErrorSite(C.EPROTO, 0x0C61)  # "Unsolicited data"
ERR_CLOSED: Final = ErrorSite(C.EPIPE, 0x0C60)  # closed before the response ended
ERR_TIMED_OUT: Final = ErrorSite(C.ETIMEDOUT, 0x0C60)  # 120 s without data
# iPXE follows redirects forever; pyipxe stops after MAX_REDIRECTS with this (our own site).
ERR_REDIRECT_LOOP: Final = ErrorSite(C.ELOOP, 0x0C60)
# net/tcp/httpauth.c (0x42), httpbasic.c (0x43), httpdigest.c (0x44).
ERR_AUTH_MALFORMED: Final = ErrorSite(C.EPROTO, 0x4260)  # WWW-Authenticate without a scheme
ERR_BASIC_NO_USER: Final = ErrorSite(C.EACCES, 0x4361)  # "No username available for Basic …"
ERR_DIGEST_NO_USER: Final = ErrorSite(C.EACCES, 0x4461)  # "No username available for Digest …"
ERR_DIGEST_INCOMPLETE: Final = ErrorSite(C.EINVAL, 0x4460)  # challenge without realm or nonce

RETRY_SECONDS: Final = 5  # iPXE's delay for a Retry-After it cannot read (an HTTP date)
MAX_REDIRECTS: Final = 1000  # iPXE has no limit; a loop this long is a server bug
MAX_HEAD: Final = 1 << 20  # pyipxe's own bound on a response head (iPXE grows without one)
MAX_LINE: Final = 64 << 10  # … and on a chunk-size or trailer line
DIGEST_NC: Final = "00000001"  # iPXE answers each challenge once, so the count is always 1

_SPACE: Final = " \t\n\v\f\r"  # C isspace()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# -- C-style scanning -------------------------------------------------------------------------

_DIGITS: Final = {10: re.compile(r"[0-9]*"), 16: re.compile(r"[0-9A-Fa-f]*")}
_WRAP_DIGITS: Final = {10: 64, 16: 16}  # the last this-many digits decide a value modulo 2**64


def strtoul(text: str, base: int) -> tuple[int, int]:
    """iPXE's own ``strtoul`` (core/misc.c): (value, index where it stopped).

    It differs from C's: whitespace and one ``-`` are skipped even when no digit follows
    (so the stop index is past them, and ``"-"`` parses as 0 up to its end), there is no
    ``+`` and no ``0x`` prefix in base 16, and values wrap (64-bit here) instead of
    saturating. Linear in the text however many digits it has.
    """
    pos = 0
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    negative = text.startswith("-", pos)
    pos += negative
    digits = _DIGITS[base].match(text, pos)
    assert digits is not None  # the pattern matches the empty string
    value = int(digits.group()[-_WRAP_DIGITS[base]:] or "0", base)
    if negative:
        value = -value
    return value & 0xFFFF_FFFF_FFFF_FFFF, digits.end()


def http_tokens(line: str, *, with_values: bool) -> list[tuple[str, str | None]]:
    """iPXE's ``http_token`` run to the end of ``line``: ``[(token or key, value or None)]``.

    Tokens are separated by whitespace or commas. With ``with_values``, ``key=value`` splits
    at the first ``=``; a value that starts with ``"`` or ``'`` runs to the same quote
    (separators included), otherwise to the next separator. Each token consumes one
    character after it, as iPXE writes its NUL there.
    """
    out: list[tuple[str, str | None]] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and (line[pos] in _SPACE or line[pos] == ","):
            pos += 1
        if pos >= end:
            return out
        start, key_end, value_start, quote = pos, -1, -1, ""
        while pos < end:
            char = line[pos]
            if not quote and (char in _SPACE or char == ","):
                break
            if quote and char == quote:
                break
            if with_values and value_start < 0 and char == "=":
                key_end = pos
                pos += 1
                if pos < end and line[pos] in "\"'":
                    quote = line[pos]
                    pos += 1
                value_start = pos
            else:
                pos += 1
        if value_start < 0:
            out.append((line[start:pos], None))
        else:
            out.append((line[start:key_end], line[value_start:pos]))
        pos += 1  # the terminator (or one past the end, which ends the loop)


# -- requests -------------------------------------------------------------------------------

def request_target(uri: Uri) -> str:
    """The request line's URI: iPXE formats a URI holding only the path (or ``/``) and query."""
    path = uri.path if uri.path is not None else "/"
    epath = uri.epath if uri.path is not None else "/"
    return format_uri(Uri(path=path, epath=epath, query=uri.query))


def host_header(uri: Uri) -> str:
    """``Host``: the host as in the URI, with ``:port`` only when the URI names one."""
    host = uri_encode(uri.host or "", "host")
    return host if uri.port is None else f"{host}:{uri_encode(uri.port, 'port')}"


def form_body(fields: list[tuple[str, str]]) -> bytes:
    """A ``params`` form as iPXE posts it: ``k=v&k2=v2``, each side ``uri_encode``d (field 0)."""
    return "&".join(f"{uri_encode(key)}={uri_encode(value)}" for key, value in fields).encode("ascii")


FORM_TYPE: Final = "application/x-www-form-urlencoded"


@dataclass
class Request:
    """One request as iPXE writes it; :meth:`encode` gives the exact bytes."""

    method: str
    target: str
    host: str
    user_agent: str
    range_start: int | None = None  # pyipxe's resume: "Range: bytes=N-"
    if_range: str | None = None  # … guarded by the validator of the first response
    content_type: str | None = None
    body: bytes = b""
    authorization: str | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} HTTP/1.1"

    def headers(self) -> list[tuple[str, str]]:
        """Headers in iPXE's order (its table order), header params last."""
        headers = [("Host", self.host), ("User-Agent", self.user_agent), ("Connection", "keep-alive")]
        if self.range_start is not None:
            headers.append(("Range", f"bytes={self.range_start}-"))
            if self.if_range is not None:
                headers.append(("If-Range", self.if_range))
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        if self.body:
            headers.append(("Content-Length", str(len(self.body))))
        if self.authorization is not None:
            headers.append(("Authorization", self.authorization))
        headers.extend(self.extra_headers)
        return headers

    def encode(self) -> bytes:
        lines = [self.request_line, *(f"{name}: {value}" for name, value in self.headers())]
        return _raw("\r\n".join(lines) + "\r\n\r\n") + self.body


# -- authentication ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Challenge:
    """The first ``WWW-Authenticate`` whose scheme iPXE knows (Basic or Digest)."""

    scheme: str  # "Basic" or "Digest", spelled as iPXE names them
    params: dict[str, str | None] = field(default_factory=dict)


_SCHEMES: Final = {"basic": "Basic", "digest": "Digest"}
_DIGEST_FIELDS: Final = ("realm", "qop", "algorithm", "nonce", "opaque")


def parse_challenge(value: str) -> Challenge | None:
    """One ``WWW-Authenticate`` value; None for a scheme iPXE does not know (NTLM, Bearer…)."""
    tokens = http_tokens(value, with_values=False)
    if not tokens:
        raise_ipxe(ERR_AUTH_MALFORMED)
    name = tokens[0][0]
    scheme = _SCHEMES.get(name.lower())
    if scheme is None:
        return None
    params: dict[str, str | None] = {}
    if scheme == "Digest":
        rest = value[_after_first_token(value):]
        for key, field_value in http_tokens(rest, with_values=True):
            if key.lower() in _DIGEST_FIELDS:
                params[key.lower()] = field_value
    return Challenge(scheme, params)


def _after_first_token(value: str) -> int:
    pos = 0
    while pos < len(value) and (value[pos] in _SPACE or value[pos] == ","):
        pos += 1
    while pos < len(value) and not (value[pos] in _SPACE or value[pos] == ","):
        pos += 1
    return pos + 1


def basic_authorization(user: str | None, password: str | None) -> str:
    """``Basic base64(user:password)`` from the URI's userinfo (iPXE uses nothing else)."""
    if user is None:
        raise_ipxe(ERR_BASIC_NO_USER)
    return "Basic " + base64.b64encode(_raw(f"{user}:{password or ''}")).decode("ascii")


def _md5_joined(*parts: str) -> str:
    """iPXE's digest helper: fields joined by ':' — but only once something has been hashed.

    So an empty first field adds no colon (``MD5(":realm:pw")`` becomes ``MD5("realm:pw")``
    for an empty user name), a quirk kept so that servers see what iPXE sends.
    """
    joined = bytearray()
    for part in parts:
        if joined:
            joined += b":"
        joined += _raw(part)
    return hashlib.md5(joined, usedforsecurity=False).hexdigest()


def digest_authorization(challenge: Challenge, user: str | None, password: str | None, *,
                         method: str, target: str, cnonce: str) -> str:
    """The ``Digest …`` header iPXE sends (RFC 2617 MD5 / MD5-sess, ``qop=auth`` when offered).

    iPXE answers ``qop=auth`` whatever qop list the server offered, uses MD5-sess only
    together with a qop (the algorithm is chosen inside that branch), and always sends
    ``nc=00000001``. ``cnonce`` is 8 hex digits from the caller.
    """
    realm, nonce = challenge.params.get("realm"), challenge.params.get("nonce")
    if realm is None or nonce is None:
        raise_ipxe(ERR_DIGEST_INCOMPLETE)
    if user is None:
        raise_ipxe(ERR_DIGEST_NO_USER)
    qop = "auth" if challenge.params.get("qop") is not None else None
    algorithm = None
    if qop is not None:
        offered = challenge.params.get("algorithm")
        algorithm = "MD5-sess" if offered is not None and offered.lower() == "md5-sess" else "MD5"
    ha1 = _md5_joined(user, realm, password or "")
    if algorithm == "MD5-sess":
        ha1 = _md5_joined(ha1, nonce, cnonce)
    ha2 = _md5_joined(method, target)
    fields = (ha1, nonce, DIGEST_NC, cnonce, qop, ha2) if qop is not None else (ha1, nonce, ha2)
    response = _md5_joined(*fields)
    out = f'Digest realm="{realm}", nonce="{nonce}", uri="{target}", username="{user}"'
    opaque = challenge.params.get("opaque")
    if opaque is not None:
        out += f', opaque="{opaque}"'
    if qop is not None:
        out += f', qop={qop}, algorithm={algorithm}, cnonce="{cnonce}", nc={DIGEST_NC}'
    return out + f', response="{response}"'


def authorization(challenge: Challenge, uri: Uri, *, method: str, target: str, cnonce: str) -> str:
    """The Authorization value answering ``challenge`` with the credentials in ``uri``."""
    if challenge.scheme == "Basic":
        return basic_authorization(uri.user, uri.password)
    return digest_authorization(challenge, uri.user, uri.password, method=method, target=target, cnonce=cnonce)


# -- responses -------------------------------------------------------------------------------

def raise_ipxe(site: ErrorSite) -> NoReturn:
    raise IpxeError(site)


def status_error(status_text: str, code: int) -> ErrorSite | None:
    """iPXE's status → error: judged by the *first character* of the text after the version.

    So ``HTTP/1.1  200 OK`` (two spaces) parses as 200 but, its text starting with a space,
    is "Unrecognised HTTP response code" — exactly as on iPXE.
    """
    first = status_text[:1]
    if first == "2":
        return None
    if first == "3":
        return ERR_REDIRECT
    if code == 401:
        return ERR_UNAUTHORIZED
    if code == 403:
        return ERR_FORBIDDEN
    if code == 404:
        return ERR_NOT_FOUND
    if first == "4":
        return ERR_CLIENT_ERROR
    if first == "5":
        return ERR_SERVER_ERROR
    return ERR_UNRECOGNISED_STATUS


def parse_status_line(line: str) -> tuple[int, bool, ErrorSite | None]:
    """(code, keep-alive by default, error) from a status line, or EINVAL "Invalid status line".

    The version is the first token and must start with ``HTTP/``; the code must be followed
    by a space (``HTTP/1.1 200`` is invalid). HTTP/0.x and 1.0 are not kept alive unless
    the server says ``Connection: keep-alive``.
    """
    tokens_end = len(line)
    pos = 0
    while pos < tokens_end and (line[pos] in _SPACE or line[pos] == ","):
        pos += 1
    start = pos
    while pos < tokens_end and not (line[pos] in _SPACE or line[pos] == ","):
        pos += 1
    version = line[start:pos]
    if not version.startswith("HTTP/"):
        raise_ipxe(ERR_INVALID_STATUS)
    number = version[5:]
    keep_alive = not (number.startswith("0") or number.startswith("1.0"))
    status_text = line[pos + 1:]
    code, stop = strtoul(status_text, 10)
    if status_text[stop:stop + 1] != " ":
        raise_ipxe(ERR_INVALID_STATUS)
    return code, keep_alive, status_error(status_text, code)


@dataclass
class ResponseHead:
    """What iPXE (and pyipxe's resume) takes from a response's status line and headers."""

    status: int
    status_line: str
    error: ErrorSite | None
    keep_alive: bool
    content_length: int | None = None
    chunked: bool = False
    location: str | None = None
    retry_after: int | None = None
    challenge: Challenge | None = None
    accept_ranges: str | None = None
    content_range: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def parse_head(lines: list[str]) -> ResponseHead:
    """A status line and header lines (already split, CR/LF removed) → :class:`ResponseHead`.

    Header names match case-insensitively; a line without ``:`` is "Invalid header"; the
    value starts after the colon and any whitespace, and keeps trailing whitespace (so
    ``Content-Length: 5 `` is invalid, as on iPXE). Unknown headers are ignored.
    """
    if not lines:
        raise_ipxe(ERR_INVALID_STATUS)
    code, keep_alive, error = parse_status_line(lines[0])
    head = ResponseHead(code, lines[0], error, keep_alive)
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise_ipxe(ERR_INVALID_HEADER)
        value = value.lstrip(_SPACE)
        head.headers.append((name, value))
        _apply_header(head, name.lower(), value)
    return head


def _apply_header(head: ResponseHead, name: str, value: str) -> None:
    if name == "location":
        head.location = value
    elif name == "transfer-encoding":
        if value.lower() != "chunked":
            raise_ipxe(ERR_TRANSFER_ENCODING)
        head.chunked = True
    elif name == "connection":
        for token, _ in http_tokens(value, with_values=False):
            if token.lower() == "keep-alive":
                head.keep_alive = True
            elif token.lower() == "close":
                head.keep_alive = False
    elif name == "content-length":
        length, stop = strtoul(value, 10)
        if stop != len(value):
            raise_ipxe(ERR_INVALID_CONTENT_LENGTH)
        head.content_length = length
    elif name == "retry-after":
        seconds, stop = strtoul(value, 10)
        head.retry_after = seconds if stop == len(value) else RETRY_SECONDS
    elif name == "www-authenticate":
        if head.challenge is None:  # the first scheme iPXE knows wins
            head.challenge = parse_challenge(value)
    elif name == "accept-ranges":
        head.accept_ranges = value
    elif name == "content-range":
        head.content_range = value
    elif name == "etag":
        head.etag = value
    elif name == "last-modified":
        head.last_modified = value


def should_retry(head: ResponseHead, *, authenticated: bool) -> bool:
    """Whether iPXE repeats a failed request: Retry-After, or a challenge not yet answered."""
    return head.retry_after is not None or (head.challenge is not None and not authenticated)


# -- framing ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Head:
    head: ResponseHead


@dataclass(slots=True)
class Body:
    """Body bytes: a view into the caller's buffer, valid only until the next ``feed``."""

    data: memoryview


@dataclass(slots=True)
class Finished:
    keep_alive: bool


Event = Head | Body | Finished


class Framing(Enum):
    HEAD = "head"
    LENGTH = "length"
    UNTIL_CLOSE = "until-close"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    TRAILERS = "trailers"
    DONE = "done"


_LINE_STATES: Final = (Framing.HEAD, Framing.CHUNK_SIZE, Framing.TRAILERS)
_SCAN: Final = 4096  # line states search this much at a time, so a big buffer is not copied


class ResponseReader:
    """Frames one response read from a connection (see the module's table).

    ``head_only`` is for HEAD requests: the response ends with its head. Responses with
    status 204 or 304 have no body whatever their headers say (RFC 9112 §6.3; iPXE would
    wait for a body that never comes — the one place pyipxe reads the RFC rather than iPXE).
    """

    def __init__(self, *, head_only: bool = False) -> None:
        self.state = Framing.HEAD
        self.head: ResponseHead | None = None
        self.head_only = head_only
        self.body_length = 0  # body bytes delivered so far
        self._remaining = 0  # of the Content-Length body or of the current chunk
        self._partial = bytearray()  # an unfinished line
        self._lines: list[str] = []
        self._head_size = 0
        self._framed_by_length = False

    # -- feeding --------------------------------------------------------------------------
    def feed(self, data: memoryview) -> list[Event]:
        """Process everything in ``data``; body events are slices of it."""
        events: list[Event] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self.state
            if state is Framing.LENGTH or state is Framing.CHUNK_DATA:
                take = min(self._remaining, end - pos)
                events.append(Body(data[pos:pos + take]))
                pos += take
                self._remaining -= take
                self.body_length += take
                if not self._remaining:
                    if state is Framing.LENGTH:
                        self._finish(events)
                    else:
                        self.state = Framing.CHUNK_SIZE
            elif state is Framing.UNTIL_CLOSE:
                events.append(Body(data[pos:]))
                self.body_length += end - pos
                pos = end
            elif state is Framing.DONE:
                raise_ipxe(ERR_LENGTH_MISMATCH if self._framed_by_length else ERR_UNSOLICITED)
            else:
                pos, line = self._take_line(data, pos, end)
                if line is not None:
                    self._line(line, events)
        return events

    def eof(self) -> list[Event]:
        """The server closed the connection (cleanly); what that means in this state."""
        if self.state is Framing.UNTIL_CLOSE:
            self.state = Framing.DONE
            return [Finished(False)]
        if self.state is Framing.DONE:
            return []
        if self.state is Framing.LENGTH:
            raise_ipxe(ERR_LENGTH_MISMATCH)
        raise_ipxe(ERR_CLOSED)

    # -- lines ----------------------------------------------------------------------------
    def _take_line(self, data: memoryview, pos: int, end: int) -> tuple[int, str | None]:
        window = bytes(data[pos:min(end, pos + _SCAN)])
        newline = window.find(b"\n")
        limit = MAX_HEAD if self.state is Framing.HEAD else MAX_LINE
        if newline < 0:
            self._partial += window
            self._check_size(len(window), limit)
            return pos + len(window), None
        self._partial += window[:newline]
        self._check_size(newline + 1, limit)
        raw = bytes(self._partial)
        self._partial.clear()
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return pos + newline + 1, _text(raw)

    def _check_size(self, added: int, limit: int) -> None:
        self._head_size += added
        if self._head_size > limit:
            raise_ipxe(ERR_INVALID_HEADER if self.state is not Framing.CHUNK_SIZE else ERR_INVALID_CHUNK_LENGTH)

    def _line(self, line: str, events: list[Event]) -> None:
        if self.state is Framing.HEAD:
            if line:
                self._lines.append(line)
                return
            self._start_body(parse_head(self._lines), events)
        elif self.state is Framing.CHUNK_SIZE:
            if not line:
                return  # the CRLF that ends each chunk's data
            size, stop = strtoul(line, 16)
            if stop != len(line):
                raise_ipxe(ERR_INVALID_CHUNK_LENGTH)
            self._head_size = 0
            if size:
                self._remaining = size
                self.state = Framing.CHUNK_DATA
            else:
                self.state = Framing.TRAILERS
        elif not line:  # TRAILERS: an empty line ends the response
            self._finish(events)
        else:
            self._head_size = 0

    def _start_body(self, head: ResponseHead, events: list[Event]) -> None:
        self.head = head
        self._head_size = 0
        events.append(Head(head))
        if self.head_only or head.status in (204, 304):
            self._finish(events)
        elif head.chunked:
            self.state = Framing.CHUNK_SIZE
        elif head.content_length is not None:
            self._framed_by_length = True
            self._remaining = head.content_length
            self.state = Framing.LENGTH
            if not self._remaining:
                self._finish(events)
        else:
            head.keep_alive = False
            self.state = Framing.UNTIL_CLOSE

    def _finish(self, events: list[Event]) -> None:
        self.state = Framing.DONE
        assert self.head is not None
        events.append(Finished(self.head.keep_alive))


# -- resuming (beyond iPXE) ------------------------------------------------------------------

_CONTENT_RANGE: Final = re.compile(r"\s*bytes\s+(\d{1,19})-(\d{1,19})/(\d{1,19}|\*)\s*", re.IGNORECASE)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes first-last/total`` → (first, last, total or None); None if it is not that."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value)
    if match is None:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if last < first or (total is not None and last >= total):
        return None
    return first, last, total


def resume_validator(head: ResponseHead) -> str | None:
    """What to send as ``If-Range`` so a changed file comes back whole: a strong ETag, else the date."""
    if head.etag is not None and not head.etag.startswith("W/"):
        return head.etag
    return head.last_modified


def can_resume(head: ResponseHead) -> bool:
    """A body worth resuming: its length is known, and the server did not rule out ranges."""
    if head.chunked or head.content_length is None:
        return False
    return (head.accept_ranges or "bytes").strip().lower() != "none"


@dataclass(frozen=True)
class ResumeAnswer:
    """How the answer to a ``Range: bytes=N-`` request continues a download."""

    offset: int  # where its body goes in the file (N, or 0 when the server sent it whole)


def check_resume(head: ResponseHead, *, offset: int, total: int) -> ResumeAnswer | None:
    """Accept a 206 for exactly ``offset``-end of a ``total``-byte file, or a 200 of ``total``.

    Anything else (another length, another range, an error) cannot continue this download.
    """
    if head.status == 206 and head.error is None and not head.chunked:
        found = parse_content_range(head.content_range)
        if found is not None and found == (offset, total - 1, total) and head.content_length in (None, total - offset):
            return ResumeAnswer(offset)
        return None
    if head.status == 200 and head.error is None and head.content_length == total and not head.chunked:
        return ResumeAnswer(0)
    return None
