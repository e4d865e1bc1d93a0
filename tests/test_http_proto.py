"""pyipxe.proto.http without sockets: iPXE's request, its reading of responses, Digest, resume.

Vectors come from iPXE's httpcore.c/httpdigest.c behaviour (reference §4.4, §4.5) and
RFC 2617 §3.5 / RFC 7616 §3.9.1; hypothesis checks that any bytes, split anywhere, give
the same events or the same iPXE error, and agrees with h11 on well-formed responses.
"""

from __future__ import annotations

import hashlib
import itertools
import ssl

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.errors import IpxeError
from pyipxe.net import http as driver
from pyipxe.proto import http as proto
from pyipxe.uri import parse_uri


def events_of(data: bytes, *, pieces: list[int] | None = None, eof: bool = False,
              head_only: bool = False) -> tuple[proto.ResponseHead | None, bytes, bool | None]:
    """Feed ``data`` (split at ``pieces``) to a reader: (head, body, keep-alive or None if unfinished)."""
    reader = proto.ResponseReader(head_only=head_only)
    cuts = sorted({0, len(data), *(p % (len(data) + 1) for p in pieces or [])})
    head, body, finished = None, bytearray(), None
    chunks = [memoryview(data[a:b]) for a, b in itertools.pairwise(cuts)]
    for events in [reader.feed(chunk) for chunk in chunks] + ([reader.eof()] if eof else []):
        for event in events:
            if isinstance(event, proto.Head):
                head = event.head
            elif isinstance(event, proto.Body):
                body += event.data
            else:
                finished = event.keep_alive
    return head, bytes(body), finished


def error_of(data: bytes, **kwargs: object) -> proto.ErrorSite | None:
    try:
        events_of(data, **kwargs)  # type: ignore[arg-type]
    except IpxeError as error:
        return error.site
    return None


# -- request -----------------------------------------------------------------------------------

def test_request_bytes_as_ipxe_writes_them() -> None:
    uri = parse_uri("http://boot.example:8080/a%20b/c.ipxe?mac=52-54&x=%41")
    request = proto.Request("GET", proto.request_target(uri), proto.host_header(uri), "iPXE/2.0.0+")
    assert request.encode() == (b"GET /a%20b/c.ipxe?mac=52-54&x=%41 HTTP/1.1\r\nHost: boot.example:8080\r\n"
                                b"User-Agent: iPXE/2.0.0+\r\nConnection: keep-alive\r\n\r\n")
    bare = parse_uri("http://10.0.0.1")
    assert proto.request_target(bare) == "/" and proto.host_header(bare) == "10.0.0.1"
    assert proto.host_header(parse_uri("http://[fe80::1]:81/")) == "[fe80::1]:81"


def test_request_header_order_and_post_body() -> None:
    body = proto.form_body([("name", "a b&c"), ("k=", "é/?")])
    assert body == b"name=a%20b%26c&k%3D=%C3%A9%2F%3F"
    request = proto.Request("POST", "/boot", "h", "iPXE/x", range_start=10, if_range='"etag"',
                            content_type=proto.FORM_TYPE, body=body, authorization="Basic eA==",
                            extra_headers=[("X-Tag", "1")])
    names = [name for name, _ in request.headers()]
    assert names == ["Host", "User-Agent", "Connection", "Range", "If-Range", "Content-Type", "Content-Length",
                     "Authorization", "X-Tag"]
    assert dict(request.headers())["Range"] == "bytes=10-"
    assert request.encode().endswith(b"\r\n\r\n" + body)


# -- status line and headers ------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("HTTP/1.1 200 OK", (200, True, None)),
    ("HTTP/1.0 200 OK", (200, False, None)),
    ("HTTP/0.9 200 OK", (200, False, None)),
    ("HTTP/2 204 ", (204, True, None)),
    ("HTTP/1.1,200 x", (200, True, None)),  # a comma ends the version token too
    ("HTTP/1.1 206 Partial", (206, True, None)),
    ("HTTP/1.1 301 Moved", (301, True, proto.ERR_REDIRECT)),
    ("HTTP/1.1 401 No", (401, True, proto.ERR_UNAUTHORIZED)),
    ("HTTP/1.1 403 No", (403, True, proto.ERR_FORBIDDEN)),
    ("HTTP/1.1 404 No", (404, True, proto.ERR_NOT_FOUND)),
    ("HTTP/1.1 410 Gone", (410, True, proto.ERR_CLIENT_ERROR)),
    ("HTTP/1.1 503 Busy", (503, True, proto.ERR_SERVER_ERROR)),
    ("HTTP/1.1 101 Up", (101, True, proto.ERR_UNRECOGNISED_STATUS)),
    ("HTTP/1.1  200 OK", (200, True, proto.ERR_UNRECOGNISED_STATUS)),  # text starts with a space
    ("HTTP/1.1 -1 x", ((1 << 64) - 1, True, proto.ERR_UNRECOGNISED_STATUS)),
])
def test_status_line(line: str, expected: tuple[int, bool, object]) -> None:
    assert proto.parse_status_line(line) == expected


@pytest.mark.parametrize("line", ["HTTP/1.1 200", "HTTP/1.1 200\tOK", "HTTP/1.1 OK", "HTTP/1.1", "", "ICY 200 OK",
                                  "http/1.1 200 OK", " 200 OK"])
def test_invalid_status_line(line: str) -> None:
    with pytest.raises(IpxeError) as caught:
        proto.parse_status_line(line)
    assert caught.value.site == proto.ERR_INVALID_STATUS


def test_headers_as_ipxe_reads_them() -> None:
    head = proto.parse_head(["HTTP/1.0 302 Found", "LOCATION:   /next ", "Connection: Keep-Alive, foo",
                             "content-length: 12", "Retry-After: Fri, 07 Nov 2014 23:59:59 GMT",
                             "Accept-Ranges: bytes", 'ETag: "x1"', "X-Unknown: whatever"])
    assert head.location == "/next " and head.keep_alive and head.content_length == 12
    assert head.retry_after == proto.RETRY_SECONDS and head.accept_ranges == "bytes" and head.etag == '"x1"'
    assert proto.parse_head(["HTTP/1.1 200 OK", "Connection: close"]).keep_alive is False
    assert proto.parse_head(["HTTP/1.1 503 x", "Retry-After: 7"]).retry_after == 7
    assert proto.parse_head(["HTTP/1.1 200 OK", "Content-Length:"]).content_length == 0  # strtoul of ""
    assert proto.parse_head(["HTTP/1.1 200 OK", "Transfer-Encoding: CHUNKED"]).chunked


@pytest.mark.parametrize(("line", "site"), [
    ("no colon here", proto.ERR_INVALID_HEADER),
    ("Content-Length: 12 ", proto.ERR_INVALID_CONTENT_LENGTH),  # trailing space is kept, as in iPXE
    ("Content-Length: 0x10", proto.ERR_INVALID_CONTENT_LENGTH),
    ("Transfer-Encoding: gzip, chunked", proto.ERR_TRANSFER_ENCODING),
    ("Transfer-Encoding: identity", proto.ERR_TRANSFER_ENCODING),
    ("WWW-Authenticate:   ", proto.ERR_AUTH_MALFORMED),
])
def test_bad_headers(line: str, site: proto.ErrorSite) -> None:
    with pytest.raises(IpxeError) as caught:
        proto.parse_head(["HTTP/1.1 200 OK", line])
    assert caught.value.site == site


def test_strtoul_is_ipxes() -> None:
    assert proto.strtoul("  42x", 10) == (42, 4)
    assert proto.strtoul("-", 10) == (0, 1)  # the sign is consumed even without digits
    assert proto.strtoul("+5", 10) == (0, 0)  # no '+' in iPXE's strtoul
    assert proto.strtoul("0x1f", 16) == (0, 1)  # no 0x prefix in base 16
    assert proto.strtoul("1F", 16) == (31, 2)
    assert proto.strtoul("-1", 10) == ((1 << 64) - 1, 2)
    assert proto.strtoul("1" * 100_000, 10)[1] == 100_000  # linear, no int() digit limit


def test_tokens() -> None:
    assert proto.http_tokens('Digest realm="a b, c", nonce=xyz,qop=\'auth\' stale', with_values=True) == [
        ("Digest", None), ("realm", "a b, c"), ("nonce", "xyz"), ("qop", "auth"), ("stale", None)]
    assert proto.http_tokens(" keep-alive ,, Upgrade", with_values=False) == [("keep-alive", None), ("Upgrade", None)]


# -- framing ------------------------------------------------------------------------------------------

def test_content_length_body_and_keep_alive() -> None:
    head, body, keep = events_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert head is not None and head.status == 200 and body == b"hello" and keep is True
    head, body, keep = events_of(b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok")  # bare LF lines
    assert body == b"ok" and keep is False


def test_chunked_body_with_trailers() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"
    assert events_of(data)[1:] == (b"hello0123456789", True)
    assert error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n") \
        == proto.ERR_INVALID_CHUNK_LENGTH  # iPXE has no chunk extensions


def test_until_close_and_eof_errors() -> None:
    assert events_of(b"HTTP/1.1 200 OK\r\n\r\nstream", eof=True)[1:] == (b"stream", False)
    assert error_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", eof=True) == proto.ERR_LENGTH_MISMATCH
    assert error_of(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nlonger") == proto.ERR_LENGTH_MISMATCH
    assert error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab", eof=True) == proto.ERR_CLOSED
    assert error_of(b"HTTP/1.1 200 O", eof=True) == proto.ERR_CLOSED
    assert error_of(b"", eof=True) == proto.ERR_CLOSED
    assert error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nextra") == proto.ERR_UNSOLICITED
    assert error_of(b"\r\n") == proto.ERR_INVALID_STATUS  # an empty first line ends an empty head


def test_no_body_responses() -> None:
    assert events_of(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head_only=True)[1:] == (b"", True)
    assert events_of(b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")[1:] == (b"", True)


def test_head_size_is_bounded() -> None:
    huge = b"HTTP/1.1 200 OK\r\nX: " + b"a" * (proto.MAX_HEAD + 10)
    assert error_of(huge) == proto.ERR_INVALID_HEADER


# -- authentication ------------------------------------------------------------------------------

def test_basic() -> None:
    assert proto.basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert proto.basic_authorization("user", None) == "Basic dXNlcjo="
    with pytest.raises(IpxeError) as caught:
        proto.basic_authorization(None, None)
    assert caught.value.site == proto.ERR_BASIC_NO_USER and f"{caught.value.code('pcbios'):08x}" == "0243613c"


def test_digest_rfc2617_example() -> None:
    # RFC 2617 §3.5: the Mufasa example (qop=auth, MD5).
    challenge = proto.parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                      'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                                      'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert challenge is not None
    header = proto.digest_authorization(challenge, "Mufasa", "Circle Of Life", method="GET", target="/dir/index.html",
                                        cnonce="0a4f113b")
    assert header == ('Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                      'uri="/dir/index.html", username="Mufasa", opaque="5ccc069c403ebaf9f0171e9517f40e41", '
                      'qop=auth, algorithm=MD5, cnonce="0a4f113b", nc=00000001, '
                      'response="6629fae49393a05397450978507c4ef1"')


def test_digest_rfc7616_md5_example() -> None:
    # RFC 7616 §3.9.1 with MD5 (iPXE has no SHA-256 Digest); cnonce as iPXE makes them: 8 hex digits.
    challenge = proto.Challenge("Digest", {"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "MD5",
                                           "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                                           "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"})
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"  # the RFC's, to reproduce its response
    header = proto.digest_authorization(challenge, "Mufasa", "Circle of Life", method="GET", target="/dir/index.html",
                                        cnonce=cnonce)
    assert header.endswith('response="8ca523f5e9506fed4657c9700eebdbec"')


def test_digest_variants() -> None:
    plain = proto.Challenge("Digest", {"realm": "r", "nonce": "n", "algorithm": "MD5-sess"})
    header = proto.digest_authorization(plain, "u", "p", method="GET", target="/", cnonce="01234567")
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    # Without qop iPXE uses plain MD5 even when MD5-sess is offered, and no cnonce/nc.
    expected = md5(md5("u:r:p") + ":n:" + md5("GET:/"))
    assert header == f'Digest realm="r", nonce="n", uri="/", username="u", response="{expected}"'
    sess = proto.Challenge("Digest", {"realm": "r", "nonce": "n", "qop": "auth", "algorithm": "md5-sess"})
    header = proto.digest_authorization(sess, "u", "p", method="POST", target="/x?y", cnonce="89abcdef")
    ha1 = md5(md5("u:r:p") + ":n:89abcdef")
    assert "algorithm=MD5-sess" in header
    assert header.endswith(f'response="{md5(f"{ha1}:n:00000001:89abcdef:auth:" + md5("POST:/x?y"))}"')
    # iPXE's quirk: an empty user name adds no leading colon.
    empty = proto.digest_authorization(plain, "", "p", method="GET", target="/", cnonce="0")
    assert empty.endswith(f'response="{md5(md5("r:p") + ":n:" + md5("GET:/"))}"')
    cases = (({"nonce": "n"}, proto.ERR_DIGEST_INCOMPLETE), ({"realm": "r", "nonce": "n"}, proto.ERR_DIGEST_NO_USER))
    for params, site in cases:
        with pytest.raises(IpxeError) as caught:
            proto.digest_authorization(proto.Challenge("Digest", params), None, None, method="GET", target="/", cnonce="0")
        assert caught.value.site == site


def test_challenges_and_retry_rules() -> None:
    assert proto.parse_challenge("NTLM") is None and proto.parse_challenge("Bearer realm=x") is None
    head = proto.parse_head(["HTTP/1.1 401 No", "WWW-Authenticate: NTLM", "WWW-Authenticate: basic realm=x",
                             "WWW-Authenticate: Digest realm=y, nonce=z"])
    assert head.challenge == proto.Challenge("Basic", {})  # the first scheme iPXE knows
    assert proto.should_retry(head, authenticated=False) and not proto.should_retry(head, authenticated=True)
    busy = proto.parse_head(["HTTP/1.1 503 Busy", "Retry-After: 0"])
    assert proto.should_retry(busy, authenticated=True)
    assert not proto.should_retry(proto.parse_head(["HTTP/1.1 404 No"]), authenticated=False)


# -- resume ---------------------------------------------------------------------------------------

def test_resume_bookkeeping() -> None:
    first = proto.parse_head(["HTTP/1.1 200 OK", "Content-Length: 100", 'ETag: "v1"'])
    assert proto.can_resume(first) and proto.resume_validator(first) == '"v1"'
    weak = proto.parse_head(["HTTP/1.1 200 OK", "Content-Length: 100", 'ETag: W/"v1"', "Last-Modified: Mon"])
    assert proto.resume_validator(weak) == "Mon"
    assert not proto.can_resume(proto.parse_head(["HTTP/1.1 200 OK", "Content-Length: 9", "Accept-Ranges: none"]))
    assert not proto.can_resume(proto.parse_head(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"]))
    partial = proto.parse_head(["HTTP/1.1 206 Partial", "Content-Range: bytes 40-99/100", "Content-Length: 60"])
    assert proto.check_resume(partial, offset=40, total=100) == proto.ResumeAnswer(40)
    assert proto.check_resume(partial, offset=41, total=100) is None
    whole = proto.parse_head(["HTTP/1.1 200 OK", "Content-Length: 100"])
    assert proto.check_resume(whole, offset=40, total=100) == proto.ResumeAnswer(0)
    assert proto.check_resume(proto.parse_head(["HTTP/1.1 416 No"]), offset=40, total=100) is None
    assert proto.parse_content_range("bytes 5-4/10") is None and proto.parse_content_range("bytes 0-9/*") == (0, 9, None)


# -- the driver's pure mappings ---------------------------------------------------------------------

def test_tls_and_socket_error_mapping() -> None:
    def verify(code: int) -> ssl.SSLCertVerificationError:
        error = ssl.SSLCertVerificationError(1, "verify failed")
        error.verify_code = code
        return error
    assert driver.tls_error(verify(10)) == driver.ERR_CERT_EXPIRED
    assert driver.tls_error(verify(62)) == driver.ERR_CERT_WRONG_NAME
    assert driver.tls_error(verify(20)) == driver.ERR_CERT_UNTRUSTED
    assert driver.tls_error(verify(7)) == driver.ERR_CERT_USELESS
    alert = ssl.SSLError(1, "alert")
    alert.reason = "TLSV1_ALERT_HANDSHAKE_FAILURE"
    assert driver.tls_error(alert) == driver.ERR_TLS_ALERT
    assert driver.os_error(ConnectionRefusedError(111, "refused")) == driver.ERR_TCP_RESET
    assert driver.os_error(OSError(101, "unreachable")) == driver.ERR_NO_ROUTE
    assert driver.os_error(TimeoutError()) == driver.ERR_TCP_TIMEOUT
    assert f"{IpxeError(driver.ERR_CERT_WRONG_NAME).code('efi'):08x}" == "0216ea8f"


# -- properties ------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=6), st.booleans())
def test_any_bytes_give_events_or_an_ipxe_error(data: bytes, pieces: list[int], eof: bool) -> None:
    """Untrusted input: never anything but IpxeError, and the split never changes the outcome."""
    def outcome(cuts: list[int]) -> object:
        try:
            return events_of(data, pieces=cuts, eof=eof)
        except IpxeError as error:
            return error.site
    whole = outcome([])
    assert outcome(pieces) == whole


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 /.;=", max_size=20).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(min_value=200, max_value=599).filter(lambda code: code not in (204, 304)),
       headers=st.lists(st.tuples(_TOKEN.map(lambda t: "x-" + t), _VALUE), max_size=5),
       body=st.binary(max_size=300), chunked=st.booleans(), pieces=st.lists(st.integers(0, 800), max_size=5))
def test_agrees_with_h11(status: int, headers: list[tuple[str, str]], body: bytes, chunked: bool,
                         pieces: list[int]) -> None:
    """On well-formed responses our reader and h11 see the same status, headers and body."""
    framing = [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(len(body)))]
    lines = [f"HTTP/1.1 {status} Reason", *(f"{k}: {v}" for k, v in [*headers, *framing])]
    payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:100], body[100:]) if part) + b"0\r\n\r\n" \
        if chunked else body
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    head, ours, keep = events_of(data, pieces=pieces)
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.receive_data(data)
    theirs, response = bytearray(), None
    while not isinstance(event := conn.next_event(), h11.EndOfMessage):
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            theirs += event.data
    assert head is not None and response is not None and keep is True
    assert head.status == response.status_code and ours == bytes(theirs) == body
    assert [(k.lower().encode(), v.encode()) for k, v in head.headers] == list(response.headers)
