"""iPXE's setting types: how ``set x:TYPE text`` becomes bytes and ``${x:TYPE}`` becomes text.

Why this exists: in iPXE a setting's value is raw bytes (a DHCP option, an SMBIOS field,
what ``set`` stored); the type is only a lens chosen at each use. ``${ip:hex}``,
``${ip:uint32}`` and ``${ip}`` read the same four bytes three ways, and ``set x:ipv4``
followed by ``${x:hexraw}`` must show exactly what the firmware would. So, like iPXE's
``struct setting_type``, a type here holds no value: it parses, formats, numerates
(``inc``) and denumerates, and the store keeps bytes.

Rules of this module:
- Behaviour is the firmware's, quirks included (reference §2.2; every corner below was
  checked against the 2019 Debian build, and follows current iPXE where they differ).
- Numbers are C ``unsigned long`` of iPXE's i386 build: 32 bits, wrapping.
- ``parse`` fails with :class:`IpxeError` carrying the error site of the C function that
  rejects the text; ``format`` fails with :class:`FormatError`, a ValueError (expansion
  shows "") whose ``site`` is what ``show`` reports.
- Text is ``str``; bytes that are not UTF-8 travel as surrogate escapes (as everywhere
  in pyipxe), so values round-trip byte for byte. Parse input is a C string: anything
  after a NUL is ignored; string-like output stops at the first NUL, as ``%s`` would.
"""

from __future__ import annotations

import base64
import re

from pyipxe.encoding import base64_decode
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.uri import uri_decode, uri_encode

# Error sites (bits 23..8 = source file id; no per-site disambiguators in these files).
ERR_SETTINGS_INVALID = ErrorSite(ErrorClass.EINVAL, 0x0C20)  # core/settings.c: integer text
ERR_NOT_SUPPORTED = ErrorSite(ErrorClass.ENOTSUP, 0x0C20)  # core/settings.c: type lacks the operation
ERR_NUMERIC_RANGE = ErrorSite(ErrorClass.ERANGE, 0x0C20)  # core/settings.c: numeric_setting_value
ERR_IPV4_INVALID = ErrorSite(ErrorClass.EINVAL, 0x0560)  # net/ipv4.c: inet_aton failed
ERR_IPV6_INVALID = ErrorSite(ErrorClass.EINVAL, 0x0660)  # net/ipv6.c: inet6_aton
ERR_BASE16_INVALID = ErrorSite(ErrorClass.EINVAL, 0x1120)  # core/base16.c: hex_decode
ERR_DNS_INVALID = ErrorSite(ErrorClass.EINVAL, 0x1160)  # net/udp/dns.c: malformed name
ERR_NO_MEMORY = ErrorSite(ErrorClass.ENOMEM, 0x0C20)  # core/settings.c: formatted copy too big

ULONG_MASK = 0xFFFFFFFF  # i386 unsigned long
_LEADING = re.compile(r"[ \t\n\v\f\r]*([+-]?)")
_DIGIT_RUNS = {8: re.compile(r"[0-7]*"), 10: re.compile(r"[0-9]*"), 16: re.compile(r"[0-9A-Fa-f]*")}
# iPXE formats values into a heap buffer; anything this large could never be allocated
# there (ENOMEM, so expansion gives ""). Bounds the work on hostile DNS lists.
MAX_FORMATTED = 4 << 20


class FormatError(ValueError):
    """iPXE cannot format this value; ``site`` is the error ``show`` prints for it."""

    def __init__(self, site: ErrorSite) -> None:
        super().__init__(f"cannot format ({site.cls.name} {site.where:#06x})")
        self.site = site


def text_to_bytes(text: str) -> bytes:
    """Script text → the bytes iPXE would hold (UTF-8; surrogate escapes back to raw bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from bytes
        return text.encode("utf-8", "surrogatepass")


def bytes_to_text(raw: bytes) -> str:
    """Bytes iPXE would print → text; non-UTF-8 bytes survive as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


def _accumulate(digits: str, base: int) -> int:
    """``value = value * base + digit`` modulo 2**32, in chunks so huge inputs stay linear."""
    value = 0
    for start in range(0, len(digits), 8):
        chunk = digits[start:start + 8]
        value = (value * base ** len(chunk) + int(chunk, base)) & ULONG_MASK
    return value


def strtoul(text: str, pos: int = 0, base: int = 0) -> tuple[int, int]:
    """iPXE's ``strtoul(text + pos, &end, base)`` → (value, end index).

    Deliberately not C99: the sign and the ``0x`` prefix are consumed even when no digit
    follows, so ``-``, ``+`` and ``0x`` alone are "fully consumed" zeros (the oracle agrees).
    """
    lead = _LEADING.match(text, pos)
    assert lead is not None  # the pattern matches the empty string
    pos = lead.end()
    if base == 0 and text[pos:pos + 2] in ("0x", "0X"):
        base, pos = 16, pos + 2
    elif base == 0:  # a leading '0' is octal's first digit as well as its marker
        base = 8 if text.startswith("0", pos) else 10
    run = _DIGIT_RUNS[base].match(text, pos)
    assert run is not None
    value = _accumulate(run.group(), base)
    if lead.group(1) == "-":
        value = -value & ULONG_MASK
    return value, run.end()


def parse_c_integer(text: str) -> int | None:
    """iPXE's ``parse_integer``: non-empty text fully consumed by :func:`strtoul` (base 0).

    Returns 0 … 2**32-1: values wrap like i386's ``unsigned long`` and ``-1`` is
    0xffffffff. ``-``, ``+``, ``0x`` and lone whitespace count as 0 (iPXE accepts them too);
    only the empty string and unconsumed characters give None.
    """
    if not text:
        return None
    value, end = strtoul(text)
    return value if end == len(text) else None


def _to_signed(value: int) -> int:
    return value - (1 << 32) if value >> 31 else value


def _numeric_value(raw: bytes, signed: bool) -> int | None:
    """iPXE's ``numeric_setting_value``: big-endian bytes → unsigned long, or None.

    Longer values are accepted only if every byte beyond the last four is padding: 0xff
    for a negative value of a signed type, else 0x00.
    """
    negative = signed and bool(raw) and raw[0] >= 0x80
    pad = 0xFF if negative else 0x00
    excess = raw[:-4]
    if excess and excess.count(pad) != len(excess):
        return None
    tail = raw[-4:]
    initial = ULONG_MASK if negative else 0
    return ((initial << (8 * len(tail))) | int.from_bytes(tail, "big")) & ULONG_MASK


# iPXE's vsprintf negates LONG_MIN and prints each (negative) remainder as '0' - digit.
_LONG_MIN = -(1 << 31)
_LONG_MIN_TEXT = "-" + "".join(chr(ord("0") - int(d)) for d in str(-_LONG_MIN))


class SettingType:
    """One iPXE setting type; the base class is a type that supports nothing.

    Subclasses override ``_parse`` (text already cut at its first NUL) and ``format``;
    numeric types also ``numerate``/``denumerate``. A missing operation fails the way
    iPXE's ``setting_parse``/``setting_numerate`` do: ENOTSUP from settings.c.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<SettingType {self.name}>"

    @property
    def numeric(self) -> bool:
        return False

    def parse(self, text: str) -> bytes:
        """Text → raw bytes, as ``set x:TYPE text``; IpxeError with iPXE's site on bad text."""
        return self._parse(text.partition("\0")[0])

    def _parse(self, text: str) -> bytes:
        raise IpxeError(ERR_NOT_SUPPORTED)

    def format(self, raw: bytes) -> str:
        """Raw bytes → text, as ``${x:TYPE}``; FormatError when iPXE cannot format them."""
        raise FormatError(ERR_NOT_SUPPORTED)

    def numerate(self, raw: bytes) -> int:
        """Raw bytes → integer, as iPXE's numeric fetch (``inc``)."""
        raise IpxeError(ERR_NOT_SUPPORTED)

    def denumerate(self, value: int) -> bytes:
        """Integer → raw bytes of this type's width, as iPXE's numeric store (``inc``)."""
        raise IpxeError(ERR_NOT_SUPPORTED)


class StringType(SettingType):
    """``string``: the bytes themselves."""

    def _parse(self, text: str) -> bytes:
        return text_to_bytes(text)

    def format(self, raw: bytes) -> str:
        return bytes_to_text(raw.partition(b"\0")[0])


class UriStringType(SettingType):
    """``uristring``: the same escaping as URIs (:mod:`pyipxe.uri`). The 2019 build leaves
    '+' alone and prints bytes >= 0x80 as %FFFFFF80; we follow the reference (current iPXE)."""

    def _parse(self, text: str) -> bytes:
        return uri_decode(text_to_bytes(text))

    def format(self, raw: bytes) -> str:
        return uri_encode(raw)


class Ipv4Type(SettingType):
    """``ipv4``: inet_aton's four :func:`strtoul` parts ≤ 255 (``010`` is 8, ``0x`` and ``-0``
    are 0, 2**32+1 is 1); formatting shows the first four bytes (one of a list of servers)."""

    def _parse(self, text: str) -> bytes:
        out = bytearray()
        pos = 0
        for separator in (".", ".", ".", ""):
            value, end = strtoul(text, pos)
            if end == pos or value > 0xFF or text[end:end + 1] != separator:
                raise IpxeError(ERR_IPV4_INVALID)
            out.append(value)
            pos = end + 1
        return bytes(out)

    def format(self, raw: bytes) -> str:
        if len(raw) < 4:
            raise FormatError(ERR_IPV4_INVALID)
        return ".".join(str(b) for b in raw[:4])


class Ipv6Type(SettingType):
    """``ipv6``: iPXE's inet6_aton/inet6_ntoa rather than the RFC grammar: hex :func:`strtoul`
    words, no dotted tail or zone, ``1:2:3:4:5:6:7::`` rejected and ``:1:2:3:4:5:6:7``
    accepted; output compresses the first longest run of two or more zero words."""

    def _parse(self, text: str) -> bytes:
        words: list[int] = []
        pad: int | None = None
        nptr = 0
        while True:
            value, end = strtoul(text, nptr, 16)
            if value > 0xFFFF:
                raise IpxeError(ERR_IPV6_INVALID)
            words.append(value)
            if end == len(text):
                break
            if text[end] != ":":
                raise IpxeError(ERR_IPV6_INVALID)
            if end == nptr and nptr != 0:
                if pad is not None:
                    raise IpxeError(ERR_IPV6_INVALID)
                pad = len(words)
            nptr = end + 1
            if len(words) == 8:
                raise IpxeError(ERR_IPV6_INVALID)
        if pad is not None:
            words[pad:pad] = [0] * (8 - len(words))
        elif len(words) != 8:
            raise IpxeError(ERR_IPV6_INVALID)
        return b"".join(word.to_bytes(2, "big") for word in words)

    def format(self, raw: bytes) -> str:
        if len(raw) < 16:
            raise FormatError(ERR_IPV6_INVALID)
        words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, 16, 2)]
        best_start, best_len, run = -1, 1, 0
        for index, word in enumerate(words):
            run = run + 1 if word == 0 else 0
            if run > best_len:
                best_start, best_len = index - run + 1, run
        parts = [f"{word:x}" for word in words]
        if best_start < 0:
            return ":".join(parts)
        return ":".join(parts[:best_start]) + "::" + ":".join(parts[best_start + best_len:])


class IntType(SettingType):
    """``intN``/``uintN``: big-endian, parsed by :func:`strtoul` and truncated to N bits.

    Formatting ignores N and reads the whole stored value (``${x:uint8}`` of ff ff ff d6 is
    ``0xffffffd6``); signed output is ``%ld``, garbled LONG_MIN (``-./,),(-*,(``) included.
    """

    def __init__(self, name: str, width: int, signed: bool) -> None:
        super().__init__(name)
        self.width = width
        self.signed = signed

    @property
    def numeric(self) -> bool:
        return True

    def _parse(self, text: str) -> bytes:
        value, end = strtoul(text)
        if end != len(text):
            raise IpxeError(ERR_SETTINGS_INVALID)
        return self.denumerate(value)

    def format(self, raw: bytes) -> str:
        value = _numeric_value(raw, self.signed)
        if value is None:
            raise FormatError(ERR_NUMERIC_RANGE)
        if not self.signed:
            return f"0x{value:x}"
        signed = _to_signed(value)
        return _LONG_MIN_TEXT if signed == _LONG_MIN else str(signed)

    def numerate(self, raw: bytes) -> int:
        """Sign-extended (intN, −2**31 … 2**31−1) or zero-extended (uintN, 0 … 2**32−1)."""
        value = _numeric_value(raw, self.signed)
        if value is None:
            raise IpxeError(ERR_NUMERIC_RANGE)
        return _to_signed(value) if self.signed else value

    def denumerate(self, value: int) -> bytes:
        return (value & ((1 << (8 * self.width)) - 1)).to_bytes(self.width, "big")


_HEX_PAIR = "[0-9A-Fa-f]{2}"


class HexType(SettingType):
    """``hex``/``hexhyp``/``hexraw``: byte pairs, lower case out, either case in.

    iPXE's hex_decode wants exactly two digits per byte and, when the type has a
    separator, exactly one separator between pairs (``1:2``, ``0102`` and ``01:`` fail).
    """

    def __init__(self, name: str, separator: str) -> None:
        super().__init__(name)
        self.separator = separator
        sep = re.escape(separator)
        self._pattern = re.compile(f"(?:{_HEX_PAIR}(?:{sep}{_HEX_PAIR})*)?")

    def _parse(self, text: str) -> bytes:
        if not self._pattern.fullmatch(text):
            raise IpxeError(ERR_BASE16_INVALID)
        return bytes.fromhex(text.replace(self.separator, "") if self.separator else text)

    def format(self, raw: bytes) -> str:
        return raw.hex(self.separator) if self.separator else raw.hex()




class Base64Type(SettingType):
    """``base64``: iPXE's lenient decoder (whitespace ignored, at most two trailing '=', each
    taking two bits off, whole bytes required, unused bits unchecked: ``QR==`` is ``A``)."""

    def _parse(self, text: str) -> bytes:
        return base64_decode(text)

    def format(self, raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")


_UUID_TEXT = re.compile(f"{_HEX_PAIR}(?:-?{_HEX_PAIR})*")


def _swap_guid(raw: bytes) -> bytes:
    """GUIDs store the first three UUID fields little-endian; swapping is its own inverse."""
    return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]


class UuidType(SettingType):
    """``uuid``/``guid``: 16 bytes shown 8-4-4-4-12 lower case.

    Parsing is current iPXE's uuid_aton (32 hex digits, an optional '-' between byte pairs);
    the 2019 build has no ``guid`` and cannot parse ``uuid`` (ENOTSUP). The error site is
    hex_decode's; for a wrong length current iPXE may report uuid.c instead (unverified).
    """

    def __init__(self, name: str, guid: bool) -> None:
        super().__init__(name)
        self.guid = guid

    def _parse(self, text: str) -> bytes:
        if not _UUID_TEXT.fullmatch(text):
            raise IpxeError(ERR_BASE16_INVALID)
        raw = bytes.fromhex(text.replace("-", ""))
        if len(raw) != 16:
            raise IpxeError(ERR_BASE16_INVALID)
        return _swap_guid(raw) if self.guid else raw

    def format(self, raw: bytes) -> str:
        if len(raw) != 16:
            raise FormatError(ERR_NUMERIC_RANGE)  # settings.c's length check
        digits = (_swap_guid(raw) if self.guid else raw).hex()
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class BusDevFnType(SettingType):
    """``busdevfn``: a PCI address, format only (``set`` fails with ENOTSUP)."""

    def format(self, raw: bytes) -> str:
        value = _numeric_value(raw, signed=False)
        if value is None:
            raise FormatError(ERR_NUMERIC_RANGE)
        return f"{value >> 16:04x}:{(value >> 8) & 0xFF:02x}:{(value >> 3) & 0x1F:02x}.{value & 7:x}"


_NONZERO = re.compile(rb"[^\x00]")


class _DnsWire:
    """An RFC 1035 name list walked as iPXE's dns.c does: pointers must point backwards and a
    walk stops after len(raw) labels, so loops fail; chains are memoised to stay linear."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._resolved: dict[int, int] = {}

    def label(self, offset: int) -> int:
        """Offset of the label found at ``offset`` after following pointers, or -1."""
        raw, chain, result = self.raw, [], -1
        while offset not in self._resolved and offset < len(raw):
            length = raw[offset]
            if length & 0xC0 != 0xC0:
                result = offset if offset + 1 + length <= len(raw) else -1
                break
            target = ((length & 0x3F) << 8) | raw[offset + 1] if offset + 2 <= len(raw) else offset
            if target >= offset:
                break
            chain.append(offset)
            offset = target
        else:
            result = self._resolved.get(offset, -1)
        for pointer in chain:
            self._resolved[pointer] = result
        return result

    def decode(self, offset: int, budget: int) -> bytes | None:
        out = bytearray()
        for _ in range(len(self.raw)):
            found = self.label(offset)
            if found < 0:
                return None
            length = self.raw[found]
            if length == 0:
                return bytes(out)
            if out:
                out += b"."
            out += self.raw[found + 1:found + 1 + length]
            if len(out) > budget:
                raise FormatError(ERR_NO_MEMORY)
            offset = found + 1 + length
        return None

    def skip_search(self, offset: int) -> int:
        """Offset of the next name (padding zeros skipped), or -1."""
        for _ in range(len(self.raw)):
            found = self.label(offset)
            if found < 0:
                return -1
            if found != offset:
                offset += 2
                break
            offset = found + 1 + self.raw[found]
            if self.raw[found] == 0:
                break
        else:
            return -1
        nonzero = _NONZERO.search(self.raw, offset)
        return nonzero.start() if nonzero else max(offset, len(self.raw))


class DnsslType(SettingType):
    """``dnssl``: a DNS search list (DHCP option 119) as space-separated names; format only."""

    def format(self, raw: bytes) -> str:
        wire = _DnsWire(raw)
        out = bytearray()
        offset = 0
        while 0 <= offset < len(raw):
            name = wire.decode(offset, MAX_FORMATTED - len(out))
            if name is None:
                raise FormatError(ERR_DNS_INVALID)
            out += name
            offset = wire.skip_search(offset)
            if offset != len(raw):
                out += b" "
        return bytes_to_text(bytes(out).partition(b"\0")[0])


STRING = StringType("string")
URISTRING = UriStringType("uristring")
IPV4 = Ipv4Type("ipv4")
IPV6 = Ipv6Type("ipv6")
INT8 = IntType("int8", 1, signed=True)
INT16 = IntType("int16", 2, signed=True)
INT32 = IntType("int32", 4, signed=True)
UINT8 = IntType("uint8", 1, signed=False)
UINT16 = IntType("uint16", 2, signed=False)
UINT32 = IntType("uint32", 4, signed=False)
HEX = HexType("hex", ":")
HEXHYP = HexType("hexhyp", "-")
HEXRAW = HexType("hexraw", "")
BASE64 = Base64Type("base64")
UUID = UuidType("uuid", guid=False)
GUID = UuidType("guid", guid=True)
BUSDEVFN = BusDevFnType("busdevfn")
DNSSL = DnsslType("dnssl")

ALL_TYPES: tuple[SettingType, ...] = (
    STRING, URISTRING, IPV4, IPV6, INT8, INT16, INT32, UINT8, UINT16, UINT32,
    HEX, HEXHYP, HEXRAW, BASE64, UUID, GUID, BUSDEVFN, DNSSL,
)
_BY_NAME = {setting_type.name: setting_type for setting_type in ALL_TYPES}


def lookup_type(name: str) -> SettingType | None:
    """The type called ``name`` (exact, case-sensitive, like iPXE's strcmp), else None."""
    return _BY_NAME.get(name)
