"""ONC RPC: XDR, CALL encoding, record marking, reply checks, portmapper; fuzzed parsers.

Expected wire bytes are built with ``struct`` here, not with the module's encoders, so the
tests check RFC 4506/5531 rather than agreeing with themselves.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipxe.proto import oncrpc
from pyipxe.proto.oncrpc import AuthSys, Packer, RecordReader, RpcError, Unpacker


def u32(*values: int) -> bytes:
    return struct.pack(f"!{len(values)}I", *values)


def xdr_opaque(data: bytes) -> bytes:
    return u32(len(data)) + data + b"\0" * (-len(data) % 4)


def mark(record: bytes, last: bool = True) -> bytes:
    return u32((0x80000000 if last else 0) | len(record)) + record


def reply(xid: int, body: bytes = b"", *, accept: int = 0) -> bytes:
    """An accepted reply with an AUTH_NONE verifier."""
    return u32(xid, 1, 0, 0, 0, accept) + body


# ---- XDR --------------------------------------------------------------------------------------


def test_packer_wire_format() -> None:
    packed = Packer().uint(7).hyper(2**40 + 5).opaque(b"abcde").uint_array([1, 2]).bytes()
    assert packed == u32(7) + struct.pack("!Q", 2**40 + 5) + u32(5) + b"abcde\0\0\0" + u32(2, 1, 2)


def test_unpacker_reads_and_bounds() -> None:
    data = u32(1) + struct.pack("!Q", 99) + xdr_opaque(b"xyz") + u32(0)
    body = Unpacker(data)
    assert body.boolean() is True
    assert body.hyper() == 99
    assert body.opaque() == b"xyz"
    assert body.boolean() is False
    assert body.remaining() == 0
    with pytest.raises(RpcError) as caught:
        body.uint()
    assert caught.value.error.code("pcbios") == 0x43316001  # EPROTO, oncrpc.c's site


@pytest.mark.parametrize("data", [u32(2), u32(100) + b"short", u32(8) + b"12345678"[:5]])
def test_unpacker_rejects_bad_values(data: bytes) -> None:
    body = Unpacker(data)
    with pytest.raises(RpcError):
        if len(data) == 4:
            body.boolean()
        else:
            body.opaque()


def test_opaque_limit() -> None:
    with pytest.raises(RpcError):
        Unpacker(xdr_opaque(b"x" * 65)).opaque(64)


# ---- CALL ------------------------------------------------------------------------------------


def test_call_with_auth_sys_is_ipxes() -> None:
    record = oncrpc.encode_call(0x1234, 100005, 3, 1, xdr_opaque(b"/export"), AuthSys("iPXE", 0, 0))
    cred = u32(0) + xdr_opaque(b"iPXE") + u32(0, 0) + u32(0)  # stamp, machine, uid, gid, no groups
    body = u32(0x1234, 0, 2, 100005, 3, 1) + u32(1) + xdr_opaque(cred) + u32(0, 0) + xdr_opaque(b"/export")
    assert record == mark(body)


def test_call_auth_none_and_long_machine_name() -> None:
    record = oncrpc.encode_call(1, 100000, 2, 3, b"", None)
    assert record == mark(u32(1, 0, 2, 100000, 2, 3, 0, 0, 0, 0))
    long = AuthSys("h" * 300, 1000, 100)
    assert Unpacker(long.body(), 4).opaque() == b"h" * 255


# ---- record marking --------------------------------------------------------------------------


def test_records_split_anywhere_and_fragmented() -> None:
    stream = mark(b"A" * 8) + mark(b"BB", last=False) + mark(b"CCCC", last=False) + mark(b"D") + mark(b"")
    for cut in range(len(stream) + 1):
        reader = RecordReader()
        records = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert records == [b"A" * 8, b"BBCCCCD", b""]
        assert reader.pending == 0


def test_oversized_record_is_refused_before_buffering() -> None:
    reader = RecordReader(max_record=1000)
    with pytest.raises(RpcError):
        reader.feed(u32(0x80000000 | 1001))
    reader = RecordReader(max_record=1000)
    with pytest.raises(RpcError):  # fragments count towards the limit together
        reader.feed(mark(b"x" * 600, last=False) + u32(0x80000000 | 600))


# ---- REPLY -------------------------------------------------------------------------------------


def test_accepted_reply_opens_at_result() -> None:
    body = oncrpc.open_reply(reply(5, u32(2049)))
    assert oncrpc.parse_getport(body) == 2049
    assert oncrpc.reply_xid(reply(5)) == 5


@pytest.mark.parametrize("record", [
    reply(5, accept=1),  # PROG_UNAVAIL
    reply(5, u32(3, 3), accept=2),  # PROG_MISMATCH
    u32(5, 1, 1, 0, 2, 2),  # MSG_DENIED, RPC_MISMATCH
    u32(5, 1, 1, 1, 1),  # MSG_DENIED, AUTH_ERROR
])
def test_unsuccessful_replies_are_eproto_as_in_ipxe(record: bytes) -> None:
    with pytest.raises(RpcError) as caught:
        oncrpc.open_reply(record)
    assert caught.value.error.code("pcbios") == 0x43346001  # nfs_open.c: accept_state != 0


@pytest.mark.parametrize("record", [b"", u32(5), u32(5, 0, 0), u32(5, 1, 7), u32(5, 1, 0, 0, 500)])
def test_malformed_replies(record: bytes) -> None:
    with pytest.raises(RpcError) as caught:
        oncrpc.open_reply(record)
    assert caught.value.error.code("pcbios") == 0x43316001


def test_getport_out_of_range() -> None:
    with pytest.raises(RpcError) as caught:
        oncrpc.parse_getport(Unpacker(u32(70000)))
    assert caught.value.error.code("pcbios") == 0x1c326002  # portmap.c: EINVAL


def test_getport_args() -> None:
    assert oncrpc.getport_args(100003, 3) == u32(100003, 3, 6, 0)


# ---- fuzz --------------------------------------------------------------------------------------


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_record_reader_never_crashes_and_ignores_chunking(stream: bytes, cuts: list[int]) -> None:
    reader = RecordReader(max_record=64)
    try:
        whole = RecordReader(max_record=64).feed(stream)
    except RpcError:
        whole = None
    pieces: list[bytes] = []
    previous = 0
    try:
        for cut in [*sorted(cuts), len(stream)]:
            pieces += reader.feed(stream[previous:max(cut, previous)])
            previous = max(cut, previous)
    except RpcError:
        assert whole is None or len(pieces) <= len(whole)
        return
    if whole is not None:
        assert pieces == whole


@given(st.binary(max_size=120))
def test_reply_parser_only_raises_rpc_errors(record: bytes) -> None:
    try:
        body = oncrpc.open_reply(record)
        body.opaque()
        body.hyper()
    except RpcError as problem:
        assert problem.error.site is not None


@given(st.integers(0, 2**32 - 1), st.binary(max_size=40), st.integers(0, 60))
def test_mutated_valid_reply_only_raises_rpc_errors(xid: int, result: bytes, flip: int) -> None:
    record = bytearray(reply(xid, xdr_opaque(result)))
    record[flip % len(record)] ^= 0xFF
    with contextlib.suppress(RpcError):
        oncrpc.open_reply(bytes(record)).opaque()
