"""iPXE's URIs: split, print, resolve, and the DHCP filename → TFTP URI rule (reference §4).

Why this exists: every download goes through iPXE's URI parser (``chain``, ``imgfetch``, HTTP
redirects, the current working URI), and iPXE's rules are not RFC 3986's. A scheme is only
letters, ``-`` and ``_`` (so ``C:\\boot`` has scheme ``C`` and ``52:54:00`` in a path is no
scheme); a ``#`` anywhere ends the URI; the port is split at the *last* colon unless the host
ends in ``]``; ``..`` never climbs above ``/``. Scripts that boot on iPXE must split, print and
resolve the same way here, and iPXE's own ``uri_test.c`` vectors hold us to it.

Rules of this module:
- Pure: no I/O and no state. The current working URI belongs to the caller; iPXE's ``churi``
  is ``cwuri = resolve_uri(cwuri, parse_uri(text))``.
- No function raises on any text except :func:`parse_data_uri` (with iPXE's error numbers).
  Work is linear in the input, so even a hostile 1 MB filename takes well under a second.
- iPXE works on C strings of bytes. Text here is those bytes as UTF-8, with undecodable bytes
  kept as surrogate escapes (as everywhere in pyipxe). A text ends at its first NUL, and so
  does a decoded field whose escapes produced one (``%00`` cuts it short, as in iPXE).
- Only scheme, opaque, user, password, host, port and ``path`` are %-decoded; ``epath``,
  ``query`` and ``fragment`` stay as written (iPXE's ``epath``/``equery``/``efragment``), so
  an HTTP request line can reuse them verbatim.
- ``params`` records which request-parameter list ``##params[=name]`` chose: None when there is
  no suffix, ``""`` for the default list, else the name (``##params=`` alone also gives ``""``;
  iPXE would look for a list literally named "" there). Whether that list exists is for the
  caller to decide (iPXE forgets a missing one at parse time). :func:`format_uri` never
  prints it, exactly like iPXE.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Final

from pyipxe.encoding import base64_decode
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# core/datauri.c postdates every errfile.h we could read; 0x34 is the next free core file
# number after spcr (0x33), so this code is an assumption until checked against a build.
ERR_DATA_URI_INVALID: Final = ErrorSite(ErrorClass.EINVAL, 0x3420)  # core/datauri.c: no ',' / not opaque


@dataclass(frozen=True)
class Uri:
    """One parsed URI, field for field as iPXE's ``struct uri`` (None = absent, "" = empty).

    Absent and empty differ on purpose, because printing depends on it: ``http://h?`` has an
    empty query and keeps its ``?``; ``http://`` has an empty host and keeps its ``//``.
    """

    scheme: str | None = None
    opaque: str | None = None
    user: str | None = None
    password: str | None = None
    host: str | None = None
    port: str | None = None
    path: str | None = None
    epath: str | None = None
    query: str | None = None
    fragment: str | None = None
    params: str | None = None

    @property
    def is_absolute(self) -> bool:
        """iPXE's ``uri_is_absolute``: it has a scheme (even an opaque one like ``C:\\x``)."""
        return self.scheme is not None


# -- %-encoding -------------------------------------------------------------------------

# Characters each field escapes besides non-printables, space and '%'. "scheme" is iPXE's
# field 0, its "escape everything" default, which the ``uristring`` setting type also uses.
# The already-encoded fields (epath, query, fragment) escape only non-printables and space:
# a '%' there is an escape the author wrote.
_FIELD_SPECIALS: Final[dict[str, str | None]] = {
    "scheme": "/#:@?=&+", "opaque": "#", "user": "/#:@?", "password": "/#:@?",
    "host": "/#@?",  # ':' stays: IPv6 literals
    "port": "/#:@?", "path": "#:@?",  # '/' stays: it separates path segments
    "epath": None, "query": None, "fragment": None,
}


def _escape_table(specials: str | None) -> tuple[str, ...]:
    escaped = set() if specials is None else set(b"%" + specials.encode("ascii"))
    return tuple(f"%{b:02X}" if b <= 0x20 or b >= 0x7F or b in escaped else chr(b) for b in range(256))


_TABLES: Final = {field: _escape_table(specials) for field, specials in _FIELD_SPECIALS.items()}

# iPXE decodes '%' by running strtoul(…, 16) on a copy of the next two characters: leading
# whitespace and one sign are consumed even without a digit (giving byte 0), "%-1" is 0xff,
# "%4G" is byte 4 then "G", and a '%' that nothing numeric follows stays literal.
_WS = b" \t\n\v\f\r"  # iPXE's isspace()
_ESCAPE: Final = re.compile(
    rb"%(?:[" + _WS + rb"][" + _WS + rb"+\-0-9A-Fa-f]?|[+\-][0-9A-Fa-f]?|[0-9A-Fa-f]{1,2})"
)


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that never came from bytes
        return text.encode("utf-8", "surrogatepass")


@functools.cache  # a few hundred distinct windows at most
def _unescape(escape: bytes) -> bytes:
    window = escape[1:].lstrip(_WS)
    digits = window.lstrip(b"+-")
    value = int(digits, 16) if digits else 0
    return bytes((((-value) if window.startswith(b"-") else value) & 0xFF,))


def _unescape_match(match: re.Match[bytes]) -> bytes:
    return _unescape(match.group())


def uri_encode(text: str | bytes, field: str = "scheme") -> str:
    """iPXE's ``uri_encode`` for one field (a key of the table above); the result is ASCII."""
    raw = text if isinstance(text, bytes) else _to_bytes(text)
    return "".join(map(_TABLES[field].__getitem__, raw))


def uri_decode(text: str | bytes) -> bytes:
    """iPXE's ``uri_decode``: every byte, NULs included (fields cut at a NUL; this doesn't)."""
    return _ESCAPE.sub(_unescape_match, text if isinstance(text, bytes) else _to_bytes(text))


def _decode_field(text: str | None) -> str | None:
    if text is None:
        return None
    return uri_decode(text).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# -- parsing and formatting -------------------------------------------------------------

_SCHEME: Final = re.compile(r"[A-Za-z_-]*:")


def parse_uri(text: str) -> Uri:
    """Split ``text`` the way iPXE's ``parse_uri`` does (reference §4.1); never raises."""
    raw = text.split("\0", 1)[0]
    found: dict[str, str] = {}  # fields as written, before %-decoding
    marker = raw.find("##params")
    if marker >= 0:  # iPXE skips one character after "##params", normally '='
        raw, found["params"] = raw[:marker], raw[marker + 9:]
    raw, hash_mark, tail = raw.partition("#")
    if hash_mark:
        found["fragment"] = tail
    rest = raw
    if (match := _SCHEME.match(raw)) is not None:
        found["scheme"], rest = raw[:match.end() - 1], raw[match.end():]
        if not rest.startswith("/"):
            found["opaque"] = rest
            return _decoded(found)
    rest, question, tail = rest.partition("?")
    if question:
        found["query"] = tail
    if "scheme" not in found or not rest.startswith("//"):
        if rest:
            found["epath"] = rest
        return _decoded(found)
    authority, slash, tail = rest[2:].partition("/")
    if slash:
        found["epath"] = slash + tail
    userinfo, at, host = authority.partition("@")
    if at:  # the first '@' ends the userinfo, its first ':' the user
        found["user"], colon, tail = userinfo.partition(":")
        if colon:
            found["password"] = tail
    else:
        host = authority
    colon_at = host.rfind(":")
    if colon_at >= 0 and not host.endswith("]"):  # the last ':', unless "[v6]" ends here
        host, found["port"] = host[:colon_at], host[colon_at + 1:]
    found["host"] = host
    return _decoded(found)


_DECODED_FIELDS: Final = ("scheme", "opaque", "user", "password", "host", "port")


def _decoded(found: dict[str, str]) -> Uri:
    fields: dict[str, str | None] = dict(found)
    for name in _DECODED_FIELDS:
        fields[name] = _decode_field(found.get(name))
    fields["path"] = _decode_field(found.get("epath"))
    return Uri(**fields)


def format_uri(uri: Uri, *, for_display: bool = False) -> str:
    """iPXE's ``format_uri``; ``for_display`` drops user, password, query and fragment.

    The display form is the one the download line prints (reference §3), so credentials and
    tokens in a query never reach the console. ``params`` is never printed. When ``epath``
    is known it is reused, so the author's own escaping survives a round trip.
    """
    if for_display:
        uri = replace(uri, user=None, password=None, query=None, fragment=None)
    out: list[str] = []
    if uri.scheme is not None:
        out += (uri_encode(uri.scheme, "scheme"), ":", "//" if uri.host is not None else "")
    if uri.opaque is not None:
        out.append(uri_encode(uri.opaque, "opaque"))
    if uri.user is not None:
        out.append(uri_encode(uri.user, "user"))
    if uri.password is not None:
        out += (":", uri_encode(uri.password, "password"))
    if uri.host is not None:
        out += ("@" if uri.user is not None else "", uri_encode(uri.host, "host"))
    if uri.port is not None:
        out += (":", uri_encode(uri.port, "port"))
    if uri.epath is not None:
        out.append(uri_encode(uri.epath, "epath"))
    elif uri.path is not None:
        out.append(uri_encode(uri.path, "path"))
    if uri.query is not None:
        out += ("?", uri_encode(uri.query, "query"))
    if uri.fragment is not None:
        out += ("#", uri_encode(uri.fragment, "fragment"))
    return "".join(out)


# -- ports --------------------------------------------------------------------------------

_DEFAULT_PORTS: Final = {
    "http": 80, "https": 443, "tftp": 69, "tftm": 69, "mtftp": 1759, "ftp": 21, "iscsi": 3260,
    "x-slam": 10000,
}
_PORT_TEXT: Final = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9A-Fa-f]*)|(0[0-7]*)|([0-9]*))")


def default_port(scheme: str) -> int | None:
    """The port a scheme's opener uses when the URI names none.

    Case matters: iPXE finds openers with ``strcmp`` (the oracle rejects ``HTTP://`` with
    ENOTSUP), so ``HTTPS`` has no default port.
    """
    return _DEFAULT_PORTS.get(scheme)


def uri_port(uri: Uri, default: int) -> int:
    """iPXE's ``uri_port``: ``strtoul(port, NULL, 0)``, so ``0x1f90`` is 8080 and ``010`` is 8.

    Junk reads as 0, as in iPXE. The result is reduced to 16 bits, as ``htons`` does when the
    number reaches a socket address; only the last few digits can matter for that, which
    keeps a million-digit port cheap.
    """
    if uri.port is None:
        return default
    match = _PORT_TEXT.match(uri.port)
    assert match is not None  # every alternative can match the empty string
    sign, hex_digits, octal, decimal = match.groups()
    if hex_digits is not None:
        value = int(hex_digits[-4:] or "0", 16)
    elif octal is not None:
        value = int(octal[-6:], 8)
    else:
        value = int(decimal[-16:] or "0")  # 10**16 is a multiple of 2**16
    return (-value if sign == "-" else value) & 0xFFFF


# -- resolution ---------------------------------------------------------------------------

def resolve_path(base_path: str, relative_path: str) -> str:
    """iPXE's ``resolve_path``: the relative path in the base's directory (reference §4.3).

    Only *leading* ``./`` and ``../`` are consumed, each ``..`` dropping one directory and never
    climbing above ``/``; inner dot segments stay. A base without ``/`` is the directory ``.``.
    """
    if relative_path.startswith("/"):
        return relative_path
    head, end = base_path, len(base_path)

    def up() -> None:  # dirname() on head[:end], without copying the string each time
        nonlocal head, end
        separator = head.rfind("/", 0, end)
        if separator > 0:
            end = separator
        else:
            head, end = ("/" if separator == 0 else "."), 1

    up()
    pos = 0
    while relative_path.startswith(".", pos):
        following = relative_path[pos + 1:pos + 2]
        if following in ("", "/"):  # "." or "./"
            pos += 1 + len(following)
        elif following == "." and relative_path[pos + 2:pos + 3] in ("", "/"):  # ".." or "../"
            up()
            pos += 2 + len(relative_path[pos + 2:pos + 3])
        else:  # "...", ".x": an ordinary name
            break
    directory = head[:end]
    return directory + ("" if directory.endswith("/") else "/") + relative_path[pos:]


def _encoded_path(uri: Uri) -> str | None:
    if uri.epath is not None or uri.path is None:
        return uri.epath
    return uri_encode(uri.path, "path")  # a URI built by hand with only a decoded path


def resolve_uri(base: Uri | None, relative: Uri) -> Uri:
    """iPXE's ``resolve_uri`` (reference §4.3): ``relative`` as seen from ``base``.

    An absolute reference, or no base, is used as-is. Otherwise scheme and authority come
    from the base, and the first of path, query, fragment, params that the reference has
    decides how much of the base's tail it replaces.
    """
    if base is None or relative.is_absolute:
        return relative
    relative_epath = _encoded_path(relative)
    if relative_epath is not None:
        epath = resolve_path(_encoded_path(base) or "/", relative_epath)
        return replace(base, path=_decode_field(epath), epath=epath, query=relative.query,
                       fragment=relative.fragment, params=relative.params)
    if relative.query is not None:
        return replace(base, query=relative.query, fragment=relative.fragment, params=relative.params)
    if relative.fragment is not None:
        return replace(base, fragment=relative.fragment, params=relative.params)
    if relative.params is not None:
        return replace(base, params=relative.params)
    return base


def pxe_filename_uri(next_server: str | None, filename: str, *, port: int | None = None) -> Uri | None:
    """The URI autoboot fetches for a DHCP filename (reference §4.6, §12 item 9).

    A filename that is an absolute URI with a hierarchical part is used as-is. Anything else
    (``pxelinux.0``, ``/boot/x``, ``C:\\tftp\\x#y``) is the TFTP path ``/`` + filename taken
    verbatim, never %-decoded, because PXE servers hand out names full of ``:`` and ``#``;
    ``/boot/x`` thus becomes ``tftp://server//boot/x`` and the server is asked for ``/boot/x``.
    Returns None for an empty filename or when a TFTP URI is needed but there is no
    next-server (None, "" or 0.0.0.0). An IPv6 next-server is bracketed so that the result
    can be printed and parsed again. ``port`` 0 or None leaves the port out.
    """
    filename = filename.split("\0", 1)[0]
    if not filename:
        return None
    uri = parse_uri(filename)
    if uri.is_absolute and uri.opaque is None:
        return uri
    if not next_server or next_server == "0.0.0.0":
        return None
    host = f"[{next_server}]" if ":" in next_server and not next_server.startswith("[") else next_server
    path = "/" + filename
    return Uri(scheme="tftp", host=host, port=str(port) if port else None, path=path, epath=path)


# -- data: --------------------------------------------------------------------------------



def parse_data_uri(uri: Uri) -> bytes:
    """The bytes of a ``data:[type][;base64],<data>`` URI (reference §4.2).

    The data is what follows the first ``,`` in the (already %-decoded, so NUL-cut) opaque
    part; it is Base64 when the text before the comma ends in ``;base64`` in any case, and
    then iPXE's lenient decoder applies: whitespace skipped, at most two ``=``, whole bytes.
    Raises IpxeError EINVAL with no comma or no opaque part (datauri.c), or bad Base64
    (base64.c).
    """
    if uri.opaque is None:
        raise IpxeError(ERR_DATA_URI_INVALID)
    prefix, comma, encoded = uri.opaque.partition(",")
    if not comma:
        raise IpxeError(ERR_DATA_URI_INVALID)
    if _to_bytes(prefix)[-7:].lower() != b";base64":
        return _to_bytes(encoded)
    return base64_decode(encoded)
