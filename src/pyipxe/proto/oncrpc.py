"""ONC RPC over TCP, sans-IO: XDR (RFC 4506), RPC messages (RFC 5531), record marking, portmapper (RFC 1833).

Why hand-written: Python has no maintained ONC RPC/XDR library (``xdrlib`` left the standard
library in 3.13; ``pynfs`` and ``rpcgen`` outputs own their sockets and are not packaged), and
the subset a boot loader needs is small: build CALL messages with AUTH_SYS credentials, cut a
TCP byte stream into records, and check a REPLY's header before the procedure's own decoder
reads its body.

Rules of this module:
- No sockets, no clocks. :class:`RecordReader` takes bytes as they arrive and returns whole
  records; :func:`encode_call` returns one record ready to send.
- Nothing from the network raises anything but :class:`RpcError`: a truncated or malformed
  reply, an oversized record or a rejected call. Decoders read through :class:`Unpacker`,
  whose every read checks the remaining length, so no input can index past its end.
- Errors carry iPXE's numbers (reference §1.8). iPXE treats any non-SUCCESS reply as EPROTO
  raised in ``nfs_open.c``; framing and XDR errors have no iPXE equivalent (iPXE reads past
  short buffers), so we raise EPROTO from ``oncrpc.c``'s file id, our choice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# File ids (bits 23..8) of iPXE's net/oncrpc/*.c (errfile.h: ERRFILE_NET | 0x31..0x3c << 16).
SITE_ONCRPC = 0x3160
SITE_PORTMAP = 0x3260
SITE_NFS = 0x3360
SITE_NFS_OPEN = 0x3460
SITE_MOUNT = 0x3560
SITE_NFS_URI = 0x3C60

# A reply that is not SUCCESS (or is MSG_DENIED): nfs_open.c's "accept_state != 0" → -EPROTO.
ERR_REJECTED = ErrorSite(ErrorClass.EPROTO, SITE_NFS_OPEN)
# Malformed, truncated or oversized data (our site: iPXE does not check; see module docstring).
ERR_MALFORMED = ErrorSite(ErrorClass.EPROTO, SITE_ONCRPC)
# portmap.c: a GETPORT answer that is no port.
ERR_BAD_PORT = ErrorSite(ErrorClass.EINVAL, SITE_PORTMAP)

RPC_VERSION = 2
CALL, REPLY = 0, 1
MSG_ACCEPTED, MSG_DENIED = 0, 1
AUTH_NONE, AUTH_SYS = 0, 1
ACCEPT_STATUS = {0: "SUCCESS", 1: "PROG_UNAVAIL", 2: "PROG_MISMATCH", 3: "PROC_UNAVAIL", 4: "GARBAGE_ARGS",
                 5: "SYSTEM_ERR"}
REJECT_STATUS = {0: "RPC_MISMATCH", 1: "AUTH_ERROR"}

PORTMAP_PROGRAM, PORTMAP_VERSION, PORTMAP_PORT = 100000, 2, 111
PMAPPROC_GETPORT = 3
IPPROTO_TCP = 6

LAST_FRAGMENT = 0x80000000
#: Largest record we accept: a 1 MiB READ plus headers, with room to spare.
MAX_RECORD = 4 << 20
MAX_OPAQUE = MAX_RECORD


class RpcError(Exception):
    """A reply that cannot be used; ``error`` is what the download fails with."""

    def __init__(self, site: ErrorSite, reason: str) -> None:
        super().__init__(reason)
        self.error = IpxeError(site)
        self.reason = reason


# ---- XDR ---------------------------------------------------------------------------------


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


class Packer:
    """XDR encoder (RFC 4506): big-endian 4-byte units, opaque data padded to 4 bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uint(self, value: int) -> Packer:
        self._parts.append(struct.pack("!I", value & 0xFFFFFFFF))
        return self

    def hyper(self, value: int) -> Packer:
        self._parts.append(struct.pack("!Q", value & 0xFFFFFFFFFFFFFFFF))
        return self

    def opaque(self, data: bytes) -> Packer:
        """Variable-length opaque (length, bytes, padding); strings are opaque too."""
        self._parts.extend((struct.pack("!I", len(data)), data, _pad(len(data))))
        return self

    def uint_array(self, values: list[int]) -> Packer:
        self.uint(len(values))
        for value in values:
            self.uint(value)
        return self

    def raw(self, data: bytes) -> Packer:
        self._parts.append(data)
        return self

    def bytes(self) -> bytes:
        return b"".join(self._parts)


class Unpacker:
    """XDR decoder over one record; every read checks what is left (see module rules)."""

    def __init__(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        self.data = memoryview(data)
        self.offset = offset

    def _take(self, length: int) -> memoryview:
        end = self.offset + length
        if length < 0 or end > len(self.data):
            raise RpcError(ERR_MALFORMED, f"XDR data truncated at byte {self.offset} (wanted {length})")
        view = self.data[self.offset:end]
        self.offset = end
        return view

    def uint(self) -> int:
        value: int = struct.unpack_from("!I", self._take(4))[0]
        return value

    def hyper(self) -> int:
        value: int = struct.unpack_from("!Q", self._take(8))[0]
        return value

    def boolean(self) -> bool:
        value = self.uint()
        if value > 1:
            raise RpcError(ERR_MALFORMED, f"XDR boolean {value}")
        return value == 1

    def opaque(self, limit: int = MAX_OPAQUE) -> bytes:
        return bytes(self.opaque_view(limit))

    def opaque_view(self, limit: int = MAX_OPAQUE) -> memoryview:
        """Variable-length opaque without copying (READ data goes straight to the sink)."""
        length = self.uint()
        if length > limit:
            raise RpcError(ERR_MALFORMED, f"XDR opaque of {length} bytes (limit {limit})")
        view = self._take(length)
        self._take(-length % 4)
        return view

    def skip(self, length: int) -> None:
        self._take(length)

    def remaining(self) -> int:
        return len(self.data) - self.offset


# ---- record marking (RFC 5531 §11) ----------------------------------------------------------


def frame(record: bytes) -> bytes:
    """One record as a single last fragment."""
    return struct.pack("!I", LAST_FRAGMENT | len(record)) + record


Record = bytes | bytearray


class RecordReader:
    """Reassembles records from a TCP byte stream; fragments are joined, sizes are bounded.

    Each fragment is received straight into a buffer of its announced size, so a 1 MiB READ
    reply costs one copy out of the socket buffer and none after: the record handed out is
    that buffer, and the next fragment gets a new one.
    """

    def __init__(self, max_record: int = MAX_RECORD) -> None:
        self.max_record = max_record
        self._marker = bytearray()  # a record mark received in pieces
        self._fragment: bytearray | None = None  # the fragment being filled
        self._filled = 0
        self._last = False
        self._fragments: list[bytearray] = []  # earlier fragments of the current record
        self._size = 0  # their total length

    def feed(self, data: bytes | memoryview) -> list[Record]:
        """Add received bytes; return the records they complete, in order."""
        view = memoryview(data).cast("B")
        records: list[Record] = []
        position = 0
        while position < len(view):
            if self._fragment is None:
                need = 4 - len(self._marker)
                self._marker += view[position:position + need]
                position += min(need, len(view) - position)
                if len(self._marker) < 4:
                    break
                (marker,) = struct.unpack("!I", self._marker)
                self._marker.clear()
                length = marker & ~LAST_FRAGMENT & 0xFFFFFFFF
                if self._size + length > self.max_record:
                    raise RpcError(ERR_MALFORMED, f"RPC record over {self.max_record} bytes")
                self._fragment, self._filled, self._last = bytearray(length), 0, bool(marker & LAST_FRAGMENT)
            fragment = self._fragment
            take = min(len(fragment) - self._filled, len(view) - position)
            fragment[self._filled:self._filled + take] = view[position:position + take]
            self._filled += take
            position += take
            if self._filled < len(fragment):
                break
            self._fragment = None
            if not self._last:
                self._fragments.append(fragment)
                self._size += len(fragment)
                continue
            if self._fragments:
                fragment = bytearray().join([*self._fragments, fragment])
                self._fragments.clear()
                self._size = 0
            records.append(fragment)
        return records

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a record."""
        return len(self._marker) + self._filled + self._size


# ---- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthSys:
    """AUTH_SYS credentials (RFC 5531 appendix A) as iPXE sends them: stamp 0, no extra groups."""

    machine: str = "iPXE"
    uid: int = 0
    gid: int = 0
    stamp: int = 0

    def body(self) -> bytes:
        # machinename is string<255>; a longer hostname setting is cut rather than refused
        name = self.machine.encode("utf-8", "replace")[:255]
        return Packer().uint(self.stamp).opaque(name).uint(self.uid).uint(self.gid).uint_array([]).bytes()


def encode_call(xid: int, program: int, version: int, procedure: int, args: bytes,
                cred: AuthSys | None = None) -> bytes:
    """A CALL record with its record mark: AUTH_SYS (or AUTH_NONE) credential, AUTH_NONE verifier."""
    packer = Packer().uint(xid).uint(CALL).uint(RPC_VERSION).uint(program).uint(version).uint(procedure)
    if cred is None:
        packer.uint(AUTH_NONE).opaque(b"")
    else:
        packer.uint(AUTH_SYS).opaque(cred.body())
    packer.uint(AUTH_NONE).opaque(b"")
    return frame(packer.raw(args).bytes())


def reply_xid(record: Record) -> int:
    """The transaction id of a reply, to find its call before decoding anything else."""
    if len(record) < 8:
        raise RpcError(ERR_MALFORMED, f"RPC record of {len(record)} bytes")
    xid, direction = struct.unpack_from("!II", record)
    if direction != REPLY:
        raise RpcError(ERR_MALFORMED, f"RPC message type {direction} is not a reply")
    return int(xid)


def open_reply(record: Record) -> Unpacker:
    """Check a reply's header; return an :class:`Unpacker` at the start of the procedure's result.

    A denied call or an accepted one whose status is not SUCCESS raises EPROTO, as iPXE does.
    """
    reply_xid(record)
    body = Unpacker(record, 8)
    status = body.uint()
    if status == MSG_DENIED:
        reason = body.uint()
        raise RpcError(ERR_REJECTED, f"RPC call denied: {REJECT_STATUS.get(reason, reason)}")
    if status != MSG_ACCEPTED:
        raise RpcError(ERR_MALFORMED, f"RPC reply status {status}")
    body.uint()  # verifier flavour: unused, as in iPXE
    body.opaque(400)  # RFC 5531: opaque_auth bodies are at most 400 bytes
    accept = body.uint()
    if accept != 0:
        raise RpcError(ERR_REJECTED, f"RPC call not accepted: {ACCEPT_STATUS.get(accept, accept)}")
    return body


# ---- portmapper (RFC 1833, version 2) -------------------------------------------------------


def getport_args(program: int, version: int, protocol: int = IPPROTO_TCP) -> bytes:
    return Packer().uint(program).uint(version).uint(protocol).uint(0).bytes()


def parse_getport(body: Unpacker) -> int:
    """The port of a GETPORT reply; 0 (not registered) is returned for the caller to judge."""
    port = body.uint()
    if port >= 65536:
        raise RpcError(ERR_BAD_PORT, f"portmapper answered port {port}")
    return port
