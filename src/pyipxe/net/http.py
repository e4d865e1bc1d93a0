"""HTTP and HTTPS downloads: the asyncio driver around :mod:`pyipxe.proto.http`.

Why this shape: the protocol rules (iPXE's request, its reading of responses, its errors,
Digest, resume bookkeeping) live in the sans-IO module and are tested without sockets;
this file only moves bytes, keeps connections, speaks TLS and maps socket and TLS
failures to iPXE's numbers.

Rules of this module:
- One event loop, timeouts everywhere: connecting (:data:`CONNECT_TIMEOUT`, like iPXE's TCP
  retransmissions) and :data:`IDLE_TIMEOUT` (iPXE's 120 s watchdog) for every wait on data.
- Body bytes are never accumulated: a :class:`asyncio.BufferedProtocol` receives into one
  fixed :data:`READ_SIZE` buffer per connection, and the parser's body slices of it go
  straight to ``sink.write`` before the next read (no copy in Python).
- Connections are pooled per (scheme, host, port) in ``env.state`` and reused most recent
  first, for :data:`POOL_EXPIRY` seconds (iPXE's ``HTTP_CONN_EXPIRY``). A reused connection
  that the server closed before answering is reopened once and the request sent again
  (iPXE's ``pool_reopen``).
- HTTPS verifies, always: the system roots (``env.tls.system_roots``) plus
  ``env.tls.trust_files``, the host name, TLS 1.2 or newer. A failure is iPXE's x509/tls
  error; nothing is ever retried without verification.

Beyond iPXE: a Content-Length body of a GET that breaks off (reset, or closed early) is
resumed with ``Range: bytes=N-`` guarded by ``If-Range``, at most
:data:`RESUME_ATTEMPTS` tries per break; if the server answers the whole file instead it
is written again from offset 0. When resuming fails, the error is the one iPXE would
have reported for the break.
"""

from __future__ import annotations

import asyncio
import errno
import secrets
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Final

from pyipxe import __version__
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net.transfer import Address, FetchEnv, FetchRequest, FetchResult, RequestParams, Sink, TlsConfig
from pyipxe.proto import http as proto
from pyipxe.trust import errors as x509_errors
from pyipxe.uri import Uri, default_port, format_uri, parse_uri, resolve_uri, uri_port

C = ErrorClass

READ_SIZE: Final = 256 << 10
IDLE_TIMEOUT: Final = 120.0
CONNECT_TIMEOUT: Final = 15.0
POOL_EXPIRY: Final = 10.0
RESUME_ATTEMPTS: Final = 3
RESUME_DELAYS: Final = (0.0, 1.0, 2.0)  # before each attempt after a break
STATE_KEY: Final = "pyipxe.net.http"
DEFAULT_VERSION: Final = f"2.0.0+ (pyipxe {__version__})"  # used when no ${version} setting answers

# Transport failures, numbered as iPXE's lower layers raise them (reference §1.8 table).
ERR_TCP_RESET: Final = ErrorSite(C.ECONNRESET, 0x0A60)  # net/tcp.c: RST, also for a refused connect
ERR_TCP_TIMEOUT: Final = ErrorSite(C.ETIMEDOUT, 0x0A60)  # net/tcp.c: SYN retransmissions ran out
ERR_NO_ROUTE: Final = ErrorSite(C.ENETUNREACH, 0x0560)  # net/ipv4.c
ERR_NEIGHBOUR: Final = ErrorSite(C.ETIMEDOUT, 0x3760)  # net/neighbour.c: ARP got no answer
ERR_NO_HOST: Final = ErrorSite(C.EINVAL, 0x4160)  # net/tcp/httpconn.c: URI without a host
# TLS: crypto/x509.c (other-category file 0x16) and net/tls.c (0x0d).
ERR_CERT_EXPIRED: Final = x509_errors.ERR_EXPIRED
ERR_CERT_UNTRUSTED: Final = x509_errors.ERR_UNTRUSTED
ERR_CERT_WRONG_NAME: Final = x509_errors.ERR_WRONG_NAME
ERR_CERT_USELESS: Final = x509_errors.ERR_USELESS
ERR_TLS_ALERT: Final = ErrorSite(C.EPERM, 0x0DE1)  # "Received fatal alert"
ERR_TLS_HANDSHAKE: Final = ErrorSite(C.EPERM, 0x0DE2)  # "Handshake verification failed"
ERR_TLS_VERSION: Final = ErrorSite(C.ENOTSUP, 0x0DE4)  # "Unsupported protocol version"

# OpenSSL X509_V_ERR_* codes → iPXE's x509.c reasons. OpenSSL's other verification failures
# (bad signature, not a CA, wrong purpose…) have no single iPXE twin; iPXE reports them from
# x509.c as certificates it cannot use, so they map to "No usable certificates" (a choice).
_VERIFY_ERRORS: Final = {
    9: ERR_CERT_EXPIRED, 10: ERR_CERT_EXPIRED,  # not yet valid, expired
    2: ERR_CERT_UNTRUSTED, 18: ERR_CERT_UNTRUSTED, 19: ERR_CERT_UNTRUSTED,  # issuer unknown, self-signed
    20: ERR_CERT_UNTRUSTED, 21: ERR_CERT_UNTRUSTED,  # no local issuer, cannot verify leaf
    62: ERR_CERT_WRONG_NAME, 64: ERR_CERT_WRONG_NAME,  # host name / IP address mismatch
}


def tls_error(error: ssl.SSLError) -> ErrorSite:
    """The iPXE error for a TLS failure (OpenSSL's verify code or reason → x509.c / tls.c)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return _VERIFY_ERRORS.get(error.verify_code, ERR_CERT_USELESS)
    reason = (error.reason or "").upper()
    if "VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        return ERR_TLS_VERSION
    if "ALERT" in reason:
        return ERR_TLS_ALERT
    return ERR_TLS_HANDSHAKE


def os_error(error: OSError) -> ErrorSite:
    """The iPXE error for a socket failure."""
    if isinstance(error, ssl.SSLError):
        return tls_error(error)
    if isinstance(error, TimeoutError):
        return ERR_TCP_TIMEOUT
    if error.errno in (errno.ENETUNREACH, errno.ENETDOWN):
        return ERR_NO_ROUTE
    if error.errno == errno.EHOSTUNREACH:
        return ERR_NEIGHBOUR
    return ERR_TCP_RESET  # refused, reset, aborted, broken pipe: iPXE sees a RST or a dead peer


# -- connections ------------------------------------------------------------------------------

Key = tuple[str, str, int]


class _Connection(asyncio.BufferedProtocol):
    """One TCP (or TLS) connection reading into a fixed buffer.

    The consumer calls :meth:`receive`, uses the returned view completely (parser, sink)
    and only then awaits again; the protocol never writes into bytes not yet handed out.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Key) -> None:
        self.loop = loop
        self.key = key
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)
        self.start = self.end = 0
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: BaseException | None = None
        self.answered = False  # received anything since (re)use
        self.expiry: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._deadline = 0.0  # of the current wait for data
        self._watchdog: asyncio.TimerHandle | None = None  # one timer, re-armed lazily

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view[self.end:]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self.answered = True
        if self.end == len(self.buffer) and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        self.closed = True
        self._wake()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- consumer side ------------------------------------------------------------------------
    async def receive(self) -> memoryview | None:
        """The next bytes (all of them are the caller's until it awaits again); None at EOF.

        Raises IpxeError for a reset, a TLS failure, or :data:`IDLE_TIMEOUT` without data.
        """
        if self.start == self.end:
            self.start = self.end = 0
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
        while self.start == self.end:
            if self.closed:
                if isinstance(self.error, OSError):
                    raise IpxeError(os_error(self.error))
                return None
            waiter = self._waiter = self.loop.create_future()
            self._deadline = self.loop.time() + IDLE_TIMEOUT
            if self._watchdog is None:
                self._watchdog = self.loop.call_at(self._deadline, self._watch)
            try:
                await waiter
            finally:
                self._waiter = None
        data = self.view[self.start:self.end]
        self.start = self.end
        return data

    def _watch(self) -> None:
        """The idle timer: one handle for the whole transfer instead of one per read."""
        self._watchdog = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self.loop.time() >= self._deadline:
            waiter.set_exception(IpxeError(proto.ERR_TIMED_OUT))
        else:
            self._watchdog = self.loop.call_at(self._deadline, self._watch)

    def send(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise IpxeError(ERR_TCP_RESET)
        self.answered = False
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return not self.closed and self.start == self.end and self.transport is not None \
            and not self.transport.is_closing() and not self.loop.is_closed()

    def close(self) -> None:
        for timer in (self.expiry, self._watchdog):
            if timer is not None:
                timer.cancel()
        self.expiry = self._watchdog = None
        self.closed = True
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()


@dataclass
class _Client:
    """Per-session state kept in ``env.state``: idle connections and TLS contexts."""

    idle: dict[Key, list[_Connection]] = field(default_factory=dict)
    contexts: dict[tuple[object, ...], ssl.SSLContext] = field(default_factory=dict)

    def take(self, key: Key, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        pool = self.idle.get(key, [])
        while pool:
            conn = pool.pop()  # most recent first, as iPXE (authentication schemes rely on it)
            if conn.expiry is not None:
                conn.expiry.cancel()
                conn.expiry = None
            if conn.loop is loop and conn.reusable:
                return conn
            conn.close()
        return None

    def put(self, conn: _Connection) -> None:
        if not conn.reusable:
            conn.close()
            return
        pool = self.idle.setdefault(conn.key, [])
        pool.append(conn)
        conn.expiry = conn.loop.call_later(POOL_EXPIRY, self._expire, conn)

    def _expire(self, conn: _Connection) -> None:
        conn.expiry = None
        pool = self.idle.get(conn.key, [])
        if conn in pool:
            pool.remove(conn)
        conn.close()

    def context(self, tls: TlsConfig) -> ssl.SSLContext:
        key = (tuple(tls.trust_files), tls.system_roots, tls.client_cert, tls.client_key)
        context = self.contexts.get(key)
        if context is None:
            context = self.contexts[key] = _make_context(tls)
        return context


def _make_context(tls: TlsConfig) -> ssl.SSLContext:
    """Verification always on; trust = system roots (if asked) + the given PEM files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if tls.system_roots:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        for path in tls.trust_files:
            context.load_verify_locations(cafile=path)
        if tls.client_cert is not None:
            context.load_cert_chain(tls.client_cert, tls.client_key)
    except (OSError, ValueError) as error:  # unreadable or not PEM: no certificate we can use
        raise IpxeError(ERR_CERT_USELESS) from error
    return context


def _client(env: FetchEnv) -> _Client:
    client = env.state.get(STATE_KEY)
    if not isinstance(client, _Client):
        client = env.state[STATE_KEY] = _Client()
    return client


async def _addresses(host: str, env: FetchEnv) -> list[Address]:
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return [ip_address(literal.split("%", 1)[0])]
    except ValueError:
        return await env.resolve(host)


async def _open(uri: Uri, key: Key, client: _Client, env: FetchEnv) -> _Connection:
    scheme, host, port = key
    loop = asyncio.get_running_loop()
    context = client.context(env.tls) if scheme == "https" else None
    server_name = host[1:-1] if host.startswith("[") else host
    failure: IpxeError | None = None
    for address in await _addresses(host, env):
        conn = _Connection(loop, key)
        sock = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.sock_connect(sock, (str(address), port))
            env.log(f"{scheme}: connected to {address} port {port}")
            await loop.create_connection(lambda conn=conn: conn, sock=sock, ssl=context,
                                         server_hostname=server_name if context else None,
                                         ssl_handshake_timeout=IDLE_TIMEOUT if context else None)
        except OSError as error:  # TimeoutError and ssl.SSLError included
            sock.close()
            failure = IpxeError(os_error(error))
            env.log(f"{scheme}: {address} port {port}: {error}")
            continue
        if context is not None and conn.transport is not None:
            tls = conn.transport.get_extra_info("ssl_object")
            if isinstance(tls, ssl.SSLObject):
                cipher = tls.cipher()
                env.log(f"{scheme}: {tls.version()} {cipher[0] if cipher else '?'} with {server_name}")
        return conn
    raise failure or IpxeError(ERR_TCP_RESET)


# -- one request ---------------------------------------------------------------------------

class _Response:
    """A request in flight on one connection: its head, then its body."""

    def __init__(self, conn: _Connection, reader: proto.ResponseReader) -> None:
        self.conn = conn
        self.reader = reader
        self.pending: list[proto.Event] = []

    async def _more(self) -> list[proto.Event]:
        data = await self.conn.receive()
        return self.reader.eof() if data is None else self.reader.feed(data)

    async def head(self) -> proto.ResponseHead:
        while True:
            events = await self._more()
            for index, event in enumerate(events):
                if isinstance(event, proto.Head):
                    self.pending = events[index + 1:]
                    return event.head

    async def body(self, deliver: Callable[[memoryview], None]) -> bool:
        """Hand every body slice to ``deliver``; True if the connection can be reused."""
        events, self.pending = self.pending, []
        while True:
            for event in events:
                if isinstance(event, proto.Body):
                    deliver(event.data)
                elif isinstance(event, proto.Finished):
                    return event.keep_alive
            events = await self._more()


def _key(uri: Uri) -> Key:
    scheme = (uri.scheme or "").lower()
    if not uri.host:
        raise IpxeError(ERR_NO_HOST)
    return scheme, uri.host, uri_port(uri, default_port(scheme) or 80)


async def _exchange(client: _Client, env: FetchEnv, uri: Uri, request: proto.Request, *,
                    fresh: bool = False) -> tuple[_Response, proto.ResponseHead]:
    """Send ``request`` and read the response head (reopening a stale pooled connection once)."""
    key = _key(uri)
    loop = asyncio.get_running_loop()
    conn = None if fresh else client.take(key, loop)
    reused = conn is not None
    if reused:
        env.log(f"{key[0]}: reusing connection to {key[1]} port {key[2]}")
    while True:
        if conn is None:
            conn = await _open(uri, key, client, env)
        response = _Response(conn, proto.ResponseReader(head_only=request.method == "HEAD"))
        try:
            env.log(f"{key[0]}: {request.request_line}")
            conn.send(request.encode())
            head = await response.head()
        except IpxeError:
            stale = reused and not conn.answered
            conn.close()
            if not stale:
                raise
            env.log(f"{key[0]}: pooled connection was closed; reopening")
            conn, reused = None, False
            continue
        except BaseException:
            conn.close()
            raise
        env.log(f"{key[0]}: {head.status_line}")
        return response, head


def _method_and_body(params: RequestParams | None) -> tuple[str, bytes, str | None]:
    """GET, or POST of the form fields (reference §4.4); ``params --method`` overrides."""
    if params is None:
        return "GET", b"", None
    if params.fields:
        return params.method or "POST", proto.form_body(params.fields), proto.FORM_TYPE
    return params.method or "GET", b"", None


def _user_agent(env: FetchEnv) -> str:
    return f"iPXE/{env.setting('version') or DEFAULT_VERSION}"


async def _transaction(client: _Client, env: FetchEnv, uri: Uri, params: RequestParams | None,
                       sink: Sink) -> tuple[Uri | None, int]:
    """One URI: (redirect target, 0) or (None, body length). Retries as iPXE does."""
    method, body, content_type = _method_and_body(params)
    target = proto.request_target(uri)
    authorization: str | None = None
    while True:
        request = proto.Request(method, target, proto.host_header(uri), _user_agent(env),
                                content_type=content_type, body=body, authorization=authorization,
                                extra_headers=list(params.headers) if params else [])
        response, head = await _exchange(client, env, uri, request)
        if head.error is None:
            return None, await _download(client, env, uri, request, response, head, sink)
        try:
            keep_alive = await response.body(_discard)
        except BaseException:
            response.conn.close()
            raise
        (client.put if keep_alive else _close)(response.conn)
        if head.location is not None:
            return resolve_uri(uri, parse_uri(head.location)), 0
        if not proto.should_retry(head, authenticated=authorization is not None):
            raise IpxeError(head.error)
        if head.challenge is not None:
            authorization = proto.authorization(head.challenge, uri, method=method, target=target,
                                                cnonce=f"{secrets.randbits(32):08x}")
            env.log(f"{uri.scheme}: answering {head.challenge.scheme} challenge")
        if head.retry_after:
            env.log(f"{uri.scheme}: retrying after {head.retry_after} s")
            await asyncio.sleep(head.retry_after)


def _discard(data: memoryview) -> None:
    pass


def _close(conn: _Connection) -> None:
    conn.close()


class _Progress:
    """Where the next body byte goes; counts what arrived since the last break."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.offset = 0
        self.since_break = 0

    def deliver(self, data: memoryview) -> None:
        self.sink.write(self.offset, data)
        self.offset += len(data)
        self.since_break += len(data)


_RESUMABLE: Final = (proto.ERR_LENGTH_MISMATCH, ERR_TCP_RESET)


async def _download(client: _Client, env: FetchEnv, uri: Uri, request: proto.Request,
                    response: _Response, head: proto.ResponseHead, sink: Sink) -> int:
    """Write a successful response's body into ``sink``, resuming a broken one if possible."""
    total = None if head.chunked else head.content_length
    if total is not None and total < 1 << 62:  # a hostile "Content-Length: -1" is 2**64 - 1
        sink.set_length(total)
    progress = _Progress(sink)
    resumable = request.method == "GET" and proto.can_resume(head) and total is not None
    validator = proto.resume_validator(head)
    while True:
        try:
            keep_alive = await response.body(progress.deliver)
        except IpxeError as failure:
            response.conn.close()
            if not resumable or failure.site not in _RESUMABLE or progress.since_break == 0 \
                    or progress.offset >= (total or 0):
                raise
            assert total is not None
            response = await _resume(client, env, uri, request, progress, total, validator, failure)
            continue
        except BaseException:
            response.conn.close()
            raise
        (client.put if keep_alive else _close)(response.conn)
        return progress.offset


async def _resume(client: _Client, env: FetchEnv, uri: Uri, request: proto.Request, progress: _Progress,
                  total: int, validator: str | None, failure: IpxeError) -> _Response:
    """Ask for the rest of the file after a break; the original failure if that cannot be had."""
    progress.since_break = 0
    ranged = proto.Request(request.method, request.target, request.host, request.user_agent,
                           range_start=progress.offset, if_range=validator, authorization=request.authorization,
                           extra_headers=request.extra_headers)
    for delay in RESUME_DELAYS[:RESUME_ATTEMPTS]:
        await asyncio.sleep(delay)
        env.log(f"{uri.scheme}: connection broke at {progress.offset} of {total} bytes; resuming")
        try:
            response, head = await _exchange(client, env, uri, ranged, fresh=True)
        except IpxeError:
            continue
        answer = proto.check_resume(head, offset=progress.offset, total=total)
        if answer is not None:
            progress.offset = answer.offset
            return response
        response.conn.close()
        break  # the server will not continue this file
    raise failure


# -- the driver --------------------------------------------------------------------------------

async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
    """Download an ``http:`` or ``https:`` URI into ``sink``, following redirects."""
    client = _client(env)
    uri, params = request.uri, request.params
    for _hop in range(proto.MAX_REDIRECTS + 1):
        redirect, length = await _transaction(client, env, uri, params, sink)
        if redirect is None:
            return FetchResult(uri, length)
        env.log(f"{uri.scheme}: redirected to {format_uri(redirect, for_display=True)}")
        uri, params = redirect, None  # iPXE opens the new URI afresh: a GET without the form
    raise IpxeError(proto.ERR_REDIRECT_LOOP)
