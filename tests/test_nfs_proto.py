"""The sans-IO NFSv3 client against a model server: iPXE's walk, errors, pipelining; fuzzed replies.

The model server decodes calls and encodes replies with ``struct`` (not with the module's own
XDR helpers) over a small in-memory tree of files, directories and symbolic links, with the
exports it is told to have. It can answer READs out of order, cut them short and split the
byte stream anywhere, so the client's reassembly and pipelining are exercised without sockets.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.proto import nfs
from pyipxe.proto.nfs import (
    MOUNT,
    NFS,
    PORTMAP,
    Close,
    Connect,
    Data,
    Done,
    Failed,
    NfsDownload,
    Output,
    Send,
    SizeKnown,
)
from pyipxe.proto.oncrpc import AuthSys


def u32(*values: int) -> bytes:
    return struct.pack(f"!{len(values)}I", *values)


def opaque(data: bytes) -> bytes:
    return u32(len(data)) + data + b"\0" * (-len(data) % 4)


def fattr(kind: int, size: int) -> bytes:
    return u32(kind, 0o644, 1, 0, 0) + struct.pack("!QQ", size, size) + u32(0, 0) + struct.pack("!QQ", 1, 2) + u32(0) * 6


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def u32(self) -> int:
        value: int = struct.unpack_from("!I", self.data, self.offset)[0]
        self.offset += 4
        return value

    def hyper(self) -> int:
        value: int = struct.unpack_from("!Q", self.data, self.offset)[0]
        self.offset += 8
        return value

    def opaque(self) -> bytes:
        length = self.u32()
        value = self.data[self.offset:self.offset + length]
        self.offset += length + (-length % 4)
        return value


@dataclass
class Call:
    channel: str
    xid: int
    program: int
    procedure: int
    machine: bytes
    uid: int
    gid: int
    args: Reader
    raw_args: bytes


@dataclass
class Server:
    """An NFSv3 + MOUNT v3 + portmapper model over ``tree``: path → bytes (file), None (dir), str (link)."""

    tree: dict[str, bytes | str | None]
    exports: set[str] = field(default_factory=lambda: {"/export"})
    mount_status: int = 13  # what MNT of a non-export answers (ganesha: ACCES)
    ports: dict[int, int] = field(default_factory=lambda: {100005: 20048, 100003: 2049})
    rtmax: int = 1 << 20
    attributes: bool = True
    short_reads: bool = False
    shuffle: random.Random | None = None
    calls: list[Call] = field(default_factory=list)
    held: list[tuple[str, bytes]] = field(default_factory=list)
    overrides: dict[tuple[int, str], bytes] = field(default_factory=dict)  # (procedure, name) → result

    def decode(self, channel: str, record: bytes) -> Call:
        body = Reader(record[4:])  # drop the record mark
        xid, _, _, program, _, procedure = (body.u32() for _ in range(6))
        body.u32()
        cred = Reader(body.opaque())
        body.u32()
        body.opaque()
        cred.u32()
        machine = cred.opaque()
        uid, gid = cred.u32(), cred.u32()
        raw = body.data[body.offset:]
        return Call(channel, xid, program, procedure, machine, uid, gid, Reader(raw), raw)

    def handle(self, channel: str, record: bytes) -> list[bytes]:
        call = self.decode(channel, record)
        self.calls.append(call)
        result = self.result(call)
        out = u32(call.xid, 1, 0, 0, 0, 0) + result
        framed = u32(0x80000000 | len(out)) + out
        if call.procedure == nfs.NFSPROC_READ and call.program == nfs.NFS_PROGRAM and self.shuffle is not None:
            self.held.append((channel, framed))
            return []
        return [framed]

    def release(self) -> list[tuple[str, bytes]]:
        assert self.shuffle is not None
        self.shuffle.shuffle(self.held)
        held, self.held = self.held, []
        return held

    def path_of(self, handle: bytes) -> str:
        return handle.decode()

    def node(self, path: str) -> tuple[int, int]:
        value = self.tree[path]
        if value is None:
            return nfs.NF3DIR, 4096
        if isinstance(value, str):
            return nfs.NF3LNK, len(value)
        return nfs.NF3REG, len(value)

    def post_op(self, path: str) -> bytes:
        return u32(1) + fattr(*self.node(path)) if self.attributes else u32(0)

    def result(self, call: Call) -> bytes:
        args = call.args
        if call.program == 100000:
            program, _, protocol, _ = (args.u32() for _ in range(4))
            assert protocol == 6
            return u32(self.ports.get(program, 0))
        if call.program == nfs.MOUNT_PROGRAM:
            path = args.opaque().decode()
            if call.procedure == nfs.MOUNTPROC_UMNT:
                return b""
            if path in self.exports:
                return u32(0) + opaque(path.encode()) + u32(1, 1)
            return u32(self.mount_status)
        handle = args.opaque()
        base = self.path_of(handle)
        if call.procedure == nfs.NFSPROC_FSINFO:
            return u32(0, 0, self.rtmax, self.rtmax, 4096, 0, 0, 0, 0) + b"\0" * 8 + u32(0, 1, 0)
        if call.procedure == nfs.NFSPROC_LOOKUP:
            name = args.opaque().decode()
            if (nfs.NFSPROC_LOOKUP, name) in self.overrides:
                return self.overrides[nfs.NFSPROC_LOOKUP, name]
            if self.tree.get(base, b"") is not None:
                return u32(20, 0)  # NOTDIR
            path = base.rstrip("/") + "/" + name if name not in ("..", ".") else self.resolve_dots(base, name)
            if path not in self.tree:
                return u32(2, 0)  # NOENT
            return u32(0) + opaque(path.encode()) + self.post_op(path) + u32(0)
        if call.procedure == nfs.NFSPROC_READLINK:
            if (nfs.NFSPROC_READLINK, base) in self.overrides:
                return self.overrides[nfs.NFSPROC_READLINK, base]
            target = self.tree[base]
            assert isinstance(target, str)
            return u32(0, 0) + opaque(target.encode())
        if call.procedure == nfs.NFSPROC_GETATTR:
            return u32(0) + fattr(*self.node(base))
        if call.procedure == nfs.NFSPROC_READ:
            offset, count = args.hyper(), args.u32()
            content = self.tree[base]
            if not isinstance(content, bytes):
                return u32(21, 0)  # ISDIR
            if self.short_reads and count > 1:
                count = random.Random(offset).randint(1, count)
            count = min(count, self.rtmax)
            piece = content[offset:offset + count]
            eof = offset + len(piece) >= len(content)
            return u32(0) + self.post_op(base) + u32(len(piece), int(eof)) + opaque(piece)
        raise AssertionError(f"unexpected procedure {call.procedure}")

    @staticmethod
    def resolve_dots(base: str, name: str) -> str:
        return base if name == "." else (base.rsplit("/", 1)[0] or "/")


@dataclass
class Outcome:
    data: bytearray = field(default_factory=bytearray)
    written: set[int] = field(default_factory=set)
    size: int | None = None
    done: int | None = None
    failed: Failed | None = None
    connects: list[tuple[str, int]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    max_in_flight: int = 0

    @property
    def code(self) -> int:
        assert self.failed is not None, "download did not fail"
        return self.failed.error.code("pcbios")


def run(download: NfsDownload, server: Server, *, split: random.Random | None = None) -> Outcome:
    """Drive ``download`` against ``server`` until it finishes."""
    outcome = Outcome()
    queue: list[Output] = list(download.start())
    in_flight = 0
    steps = 0
    while queue or server.held:
        steps += 1
        assert steps < 100_000
        if not queue:
            for channel, framed in server.release():
                queue += deliver(download, channel, framed, split)
            continue
        output = queue.pop(0)
        if isinstance(output, Connect):
            outcome.connects.append((output.channel, output.port))
            queue += download.connected(output.channel)
        elif isinstance(output, Send):
            call = server.decode(output.channel, output.data)
            if call.program == nfs.NFS_PROGRAM and call.procedure == nfs.NFSPROC_READ:
                in_flight += 1
                outcome.max_in_flight = max(outcome.max_in_flight, in_flight)
            for framed in server.handle(output.channel, output.data):
                queue += deliver(download, output.channel, framed, split)
        elif isinstance(output, Data):
            in_flight -= 1
            assert output.offset not in outcome.written
            outcome.written.add(output.offset)
            end = output.offset + len(output.payload)
            outcome.data.extend(b"\0" * max(0, end - len(outcome.data)))
            outcome.data[output.offset:end] = output.payload
        elif isinstance(output, SizeKnown):
            outcome.size = output.size
        elif isinstance(output, Close):
            outcome.closed.append(output.channel)
        elif isinstance(output, Done):
            outcome.done = output.size
        elif isinstance(output, Failed):
            outcome.failed = output
    assert download.finished
    return outcome


def deliver(download: NfsDownload, channel: str, framed: bytes, split: random.Random | None) -> list[Output]:
    if split is None:
        return download.received(channel, framed)
    out: list[Output] = []
    position = 0
    while position < len(framed):
        step = split.randint(1, 40)
        out += download.received(channel, framed[position:position + step])
        position += step
    return out


BIG = random.Random(7).randbytes(3 * (1 << 20) + 777)
TREE: dict[str, bytes | str | None] = {
    "/export": None,
    "/export/hello.txt": b"hello\n",
    "/export/empty": b"",
    "/export/big.bin": BIG,
    "/export/a": None,
    "/export/a/b": None,
    "/export/a/b/deep.txt": b"deep\n",
    "/export/rel": "a/b/deep.txt",
    "/export/a/up": "../hello.txt",
    "/export/abs": "/export/a/b/deep.txt",
    "/export/dirlink": "a/b",
    "/export/outside": "/etc/passwd",
    "/export/loop": "loop",
    "/export/empty-link": "",
}


def server(**kwargs: object) -> Server:
    return Server(dict(TREE), **kwargs)  # type: ignore[arg-type]


def procedures(srv: Server) -> list[tuple[str, int]]:
    return [(call.channel, call.procedure) for call in srv.calls]


# ---- the walk ------------------------------------------------------------------------------------


def test_simple_file_follows_ipxes_sequence() -> None:
    srv = server()
    outcome = run(NfsDownload("/export/hello.txt", xid=1000), srv)
    assert bytes(outcome.data) == b"hello\n" and outcome.done == 6 and outcome.size == 6
    assert outcome.connects == [(PORTMAP, 111), (MOUNT, 20048), (NFS, 2049)]
    assert procedures(srv) == [(PORTMAP, 3), (PORTMAP, 3), (MOUNT, 1), (NFS, 19), (NFS, 3), (NFS, 6), (MOUNT, 3)]
    mnt = srv.calls[2]
    assert mnt.raw_args == opaque(b"/export")
    assert [call.xid for call in srv.calls] == list(range(1001, 1008))
    assert set(outcome.closed) == {PORTMAP, NFS, MOUNT}


def test_credentials_are_auth_sys() -> None:
    srv = server()
    run(NfsDownload("/export/hello.txt", cred=AuthSys("boothost", 1000, 100)), srv)
    assert {(call.machine, call.uid, call.gid) for call in srv.calls} == {(b"boothost", 1000, 100)}


def test_mount_point_moves_up_until_an_export() -> None:
    srv = server()
    outcome = run(NfsDownload("/export/a/b/deep.txt"), srv)
    assert bytes(outcome.data) == b"deep\n"
    mounts = [call for call in srv.calls if call.program == nfs.MOUNT_PROGRAM and call.procedure == 1]
    assert [call.raw_args for call in mounts] == [opaque(b"/export/a/b"), opaque(b"/export/a"), opaque(b"/export")]
    lookups = [call.raw_args for call in srv.calls if call.channel == NFS and call.procedure == nfs.NFSPROC_LOOKUP]
    assert lookups == [opaque(b"/export") + opaque(name) for name in (b"a",)] + [
        opaque(b"/export/a") + opaque(b"b"), opaque(b"/export/a/b") + opaque(b"deep.txt")]


@pytest.mark.parametrize(("status", "code"), [(2, 0x2D35603B), (13, 0x0235603C), (20, 0x3935603B)])
def test_mount_failing_up_to_root(status: int, code: int) -> None:
    outcome = run(NfsDownload("/not/exported/file"), server(mount_status=status))
    assert outcome.code & 0xFFFFFF00 == code & 0xFFFFFF00


def test_mount_errors_that_do_not_retry() -> None:
    srv = server(mount_status=1)  # MNT3ERR_PERM: mount.c knows no class for it
    outcome = run(NfsDownload("/a/b/c/file"), srv)
    assert outcome.code == 0x43356001
    assert sum(1 for call in srv.calls if call.program == nfs.MOUNT_PROGRAM) == 1


@pytest.mark.parametrize(("path", "content"), [
    ("/export/rel", b"deep\n"), ("/export/a/up", b"hello\n"), ("/export/abs", b"deep\n"),
    ("/export/dirlink/deep.txt", b"deep\n"),
])
def test_symlinks(path: str, content: bytes) -> None:
    outcome = run(NfsDownload(path), server())
    assert bytes(outcome.data) == content


@pytest.mark.parametrize(("path", "code"), [
    ("/export/outside", 0x1C3C6002),  # nfs_uri.c: absolute target outside the mount
    ("/export/loop", 0x20346001),  # ELOOP (ours)
    ("/export/empty-link", 0x1C346002),  # nfs_open.c: empty READLINK
    ("/export/missing", 0x2D33603B),
    ("/export/hello.txt/x", 0x3933603B),  # ENOTDIR
    ("/export/a", 0x43336001),  # READ of a directory: ISDIR → EPROTO
    ("/export/a/", 0x1C3C6002),  # no file name
])
def test_walk_errors(path: str, code: int) -> None:
    assert run(NfsDownload(path), server()).code & 0xFFFFFF00 == code & 0xFFFFFF00


@pytest.mark.parametrize(("status", "cls"), [(1, 0x41), (2, 0x2D), (5, 0x1D), (13, 0x02), (20, 0x39), (63, 0x25),
                                             (70, 0x4A), (10001, 0x43), (10006, 0x43), (99, 0x43)])
def test_lookup_status_mapping(status: int, cls: int) -> None:
    srv = server()
    srv.overrides[nfs.NFSPROC_LOOKUP, "hello.txt"] = u32(status, 0)
    code = run(NfsDownload("/export/hello.txt"), srv).code
    assert code >> 24 == cls and (code >> 8) & 0xFFFF == 0x3360


@pytest.mark.parametrize(("status", "cls"), [(5, 0x1D), (13, 0x02), (22, 0x1C), (10004, 0x3C), (70, 0x4A), (2, 0x43)])
def test_readlink_status_mapping(status: int, cls: int) -> None:
    srv = server()
    srv.overrides[nfs.NFSPROC_READLINK, "/export/rel"] = u32(status, 0)
    assert run(NfsDownload("/export/rel"), srv).code >> 24 == cls


def test_no_attributes_means_getattr() -> None:
    srv = server(attributes=False)
    outcome = run(NfsDownload("/export/hello.txt"), srv)
    assert bytes(outcome.data) == b"hello\n"
    assert (NFS, nfs.NFSPROC_GETATTR) in procedures(srv)


def test_symlink_without_attributes_is_found_by_getattr() -> None:
    srv = server(attributes=False)
    outcome = run(NfsDownload("/export/rel"), srv)
    assert bytes(outcome.data) == b"deep\n"


# ---- ports ----------------------------------------------------------------------------------------


def test_uri_port_skips_the_nfs_getport() -> None:
    srv = server()
    outcome = run(NfsDownload("/export/hello.txt", nfs_port=3049), srv)
    assert (NFS, 3049) in outcome.connects
    assert sum(1 for call in srv.calls if call.program == 100000) == 1


def test_unregistered_program_is_einval() -> None:
    outcome = run(NfsDownload("/export/hello.txt"), server(ports={100005: 20048}))
    assert outcome.code == 0x1C346002


def test_server_closing_a_connection_is_connection_reset() -> None:
    download = NfsDownload("/export/hello.txt")
    download.start()
    download.connected(PORTMAP)
    out = download.closed(PORTMAP)
    assert isinstance(out[-1], Failed) and out[-1].error.code("pcbios") == 0x0F346039
    assert download.received(PORTMAP, b"\0" * 100) == []


def test_rejected_call_is_eproto() -> None:
    download = NfsDownload("/export/hello.txt", xid=10)
    download.start()
    download.connected(PORTMAP)
    out = download.received(PORTMAP, u32(0x80000018, 11, 1, 0, 0, 0, 1))  # PROG_UNAVAIL
    assert isinstance(out[-1], Failed) and out[-1].error.code("pcbios") == 0x43346001


def test_replies_to_unknown_calls_are_ignored() -> None:
    download = NfsDownload("/export/hello.txt", xid=10)
    download.start()
    download.connected(PORTMAP)
    assert download.received(PORTMAP, u32(0x80000018, 99, 1, 0, 0, 0, 0)) == []


# ---- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_big_file_pipelined_out_of_order_and_split(seed: int) -> None:
    srv = server(shuffle=random.Random(seed), rtmax=256 << 10)
    outcome = run(NfsDownload("/export/big.bin", depth=4), srv, split=random.Random(seed))
    assert outcome.done == len(BIG) and bytes(outcome.data) == BIG
    assert outcome.max_in_flight == 4


def test_short_reads_are_continued() -> None:
    srv = server(short_reads=True, rtmax=64 << 10)
    download = NfsDownload("/export/big.bin", depth=3)
    outcome = run(download, srv)
    assert bytes(outcome.data) == BIG
    assert download.stats.short_reads > 0


def test_fsinfo_sets_the_read_size() -> None:
    srv = server(rtmax=100_000)
    download = NfsDownload("/export/big.bin")
    run(download, srv)
    assert download.chunk == 100_000
    reads = [call for call in srv.calls if call.procedure == nfs.NFSPROC_READ]
    assert len(reads) == -(-len(BIG) // 100_000)


def test_empty_file_is_one_read() -> None:
    srv = server()
    outcome = run(NfsDownload("/export/empty"), srv)
    assert outcome.done == 0 and outcome.size == 0 and not outcome.data
    assert sum(1 for call in srv.calls if call.procedure == nfs.NFSPROC_READ) == 1


def test_file_shrinking_under_us_ends_at_eof() -> None:
    srv = server()
    srv.tree["/export/big.bin"] = BIG
    download = NfsDownload("/export/big.bin")
    queue = download.start()
    # Shrink the file after LOOKUP reported its size: READs then meet EOF early.
    original = srv.result

    def shrinking(call: object) -> bytes:
        result = original(call)  # type: ignore[arg-type]
        if getattr(call, "procedure", None) == nfs.NFSPROC_LOOKUP:
            srv.tree["/export/big.bin"] = BIG[:1000]
        return result
    srv.result = shrinking  # type: ignore[method-assign]
    outcome = Outcome()
    while queue:
        output = queue.pop(0)
        if isinstance(output, Connect):
            queue += download.connected(output.channel)
        elif isinstance(output, Send):
            for framed in srv.handle(output.channel, output.data):
                queue += download.received(output.channel, framed)
        elif isinstance(output, Data):
            outcome.data[output.offset:output.offset + len(output.payload)] = output.payload
        elif isinstance(output, Done):
            outcome.done = output.size
    assert outcome.done == 1000 and bytes(outcome.data) == BIG[:1000]


def test_read_count_disagreeing_with_data_is_eproto() -> None:
    srv = server()
    original = srv.result

    def lying(call: Call) -> bytes:
        result = original(call)
        if call.procedure == nfs.NFSPROC_READ:
            return u32(0, 0, 5, 1) + opaque(b"abc")
        return result
    srv.result = lying  # type: ignore[method-assign]
    assert run(NfsDownload("/export/hello.txt"), srv).code == 0x43336001


@pytest.mark.parametrize(("status", "cls"), [(1, 0x41), (6, 0x3E), (22, 0x1C), (10008, 0x43)])
def test_read_status_mapping(status: int, cls: int) -> None:
    srv = server()
    original = srv.result

    def failing(call: Call) -> bytes:
        return u32(status, 0) if call.procedure == nfs.NFSPROC_READ else original(call)
    srv.result = failing  # type: ignore[method-assign]
    assert run(NfsDownload("/export/hello.txt"), srv).code >> 24 == cls


def test_misuse() -> None:
    download = NfsDownload("/export/x")
    download.start()
    with pytest.raises(RuntimeError):
        download.start()


# ---- fuzz ------------------------------------------------------------------------------------------


def _transcript(path: str) -> list[tuple[str, bytes]]:
    """Every reply record the model server gives for a good download, in order."""
    srv = server()
    download = NfsDownload(path, xid=500)
    replies: list[tuple[str, bytes]] = []
    queue = download.start()
    while queue:
        output = queue.pop(0)
        if isinstance(output, Connect):
            queue += download.connected(output.channel)
        elif isinstance(output, Send):
            for framed in srv.handle(output.channel, output.data):
                replies.append((output.channel, framed))
                queue += download.received(output.channel, framed)
    return replies


TRANSCRIPT = _transcript("/export/rel")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(TRANSCRIPT) - 1), st.integers(0, 10_000), st.binary(min_size=1, max_size=8),
       st.booleans())
def test_mutated_replies_end_cleanly(index: int, position: int, garbage: bytes, truncate: bool) -> None:
    download = NfsDownload("/export/rel", xid=500)
    opened: set[str] = set()

    def connect_new(outputs: list[Output]) -> list[Output]:
        more: list[Output] = []
        for output in outputs:
            if isinstance(output, Connect) and output.channel not in opened:
                opened.add(output.channel)
                more += download.connected(output.channel)
        return outputs + connect_new(more) if more else outputs

    outputs = connect_new(download.start())
    for number, (channel, framed) in enumerate(TRANSCRIPT):
        if download.finished:
            break
        if number == index:
            data = bytearray(framed)
            at = 4 + position % max(1, len(data) - 4)
            if truncate:
                data = data[:at]
                data[:4] = u32(0x80000000 | (len(data) - 4))
            else:
                data[at:at + len(garbage)] = garbage
            framed = bytes(data)
        outputs += connect_new(download.received(channel, framed))
    for output in outputs:
        assert isinstance(output, Connect | Send | Close | SizeKnown | Data | Done | Failed)
        if isinstance(output, Failed):
            assert output.error.site is not None


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([PORTMAP, MOUNT, NFS]), st.binary(max_size=300))
def test_random_bytes_end_cleanly(channel: str, data: bytes) -> None:
    download = NfsDownload("/export/a/b/c", xid=1)
    download.start()
    download.connected(PORTMAP)
    outputs = download.received(channel, u32(0x80000000 | len(data)) + data)
    outputs += download.received(channel, data)
    assert all(not isinstance(output, Failed) or output.error.site is not None for output in outputs)
