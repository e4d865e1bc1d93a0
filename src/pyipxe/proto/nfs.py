"""A sans-IO NFSv3 read client (RFC 1813) with MOUNT v3, as iPXE's ``nfs://`` opener behaves.

Why hand-written: no maintained Python NFS client exists that is sans-IO (libnfs bindings own
their sockets and are not packaged for Debian's Python), and pyipxe needs iPXE's exact walk
(which directory it mounts, how it follows symlinks) and its error numbers. The procedures a
boot loader needs (GETPORT, MNT, UMNT, LOOKUP, READLINK, GETATTR, FSINFO, READ) are few.

Rules of this module (everything that affects the download's course lives here):
- No sockets, no clocks. The driver reports :meth:`NfsDownload.connected`,
  :meth:`~NfsDownload.received` (raw TCP bytes) and :meth:`~NfsDownload.closed` per
  *channel* (``portmap``, ``mount``, ``nfs``: one TCP connection each, as iPXE opens them)
  and acts on the outputs: :class:`Connect`, :class:`Send`, :class:`Close`,
  :class:`SizeKnown`, :class:`Data`, :class:`Done`, :class:`Failed`.
- Nothing from the network raises: bad input ends the download with :class:`Failed` carrying
  iPXE's error number. After Done or Failed every input is ignored.
- ``Data`` may come out of order (READs are pipelined and servers answer in any order);
  each byte of the file is delivered exactly once.

Theory of operation, following iPXE's ``nfs_open.c``:
1. The URI path ``/a/b/file`` is split into a mount point (its directory, ``/a/b``) and the
   rest to LOOKUP (``file``). A path ending in ``/`` has no file name: EINVAL.
2. Ask the portmapper (TCP 111) for the MOUNT v3 and NFS v3 TCP ports (both calls at once;
   iPXE waits for the first answer before asking the second). A port in the URI is used
   for NFS instead of asking (iPXE ignores it; RFC 2224 gives it this meaning).
3. MNT the mount point. If the server answers NOENT, NOTDIR or ACCES, drop the last
   directory and try again (``/a/b`` → ``/a`` → ``/``), moving it to the LOOKUP path, as
   iPXE's ``nfs_uri_next_mountpoint`` does; ``/`` failing is final.
4. LOOKUP each component from the mounted handle. A symlink is read (READLINK): a relative
   target replaces the link's name in the remaining path, from the link's directory; an
   absolute one must lie under the mount point and is walked from the mount's root. iPXE
   concatenates the target and the rest without a ``/`` and walks absolute targets from the
   link's directory; we do neither. iPXE follows links forever; we stop after 40 (ELOOP).
5. The file's size comes from LOOKUP's attributes (GETATTR if the server sent none); FSINFO
   on the mount's root gives the server's preferred READ size. iPXE reads 100000 bytes at a
   time, one READ after another; we keep :attr:`NfsDownload.depth` READs of up to 1 MiB in
   flight. A short READ is continued where it stopped; EOF ends the file where it says.
6. UMNT, and the download is done when its reply arrives (as in iPXE).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.proto import oncrpc
from pyipxe.proto.oncrpc import (
    SITE_MOUNT,
    SITE_NFS,
    SITE_NFS_OPEN,
    SITE_NFS_URI,
    AuthSys,
    Packer,
    Record,
    RecordReader,
    RpcError,
    Unpacker,
)

C = ErrorClass

PORTMAP, MOUNT, NFS = "portmap", "mount", "nfs"

MOUNT_PROGRAM, MOUNT_VERSION = 100005, 3
NFS_PROGRAM, NFS_VERSION = 100003, 3
MOUNTPROC_MNT, MOUNTPROC_UMNT = 1, 3
NFSPROC_GETATTR, NFSPROC_LOOKUP, NFSPROC_READLINK, NFSPROC_READ, NFSPROC_FSINFO = 1, 3, 5, 6, 19

FHSIZE3 = 64
MAXPATHLEN = 4096
NF3REG, NF3DIR, NF3LNK = 1, 2, 5
MAX_SYMLINKS = 40  # Linux's MAXSYMLINKS
MAX_READ = 1 << 20
DEFAULT_READ = 64 << 10  # when FSINFO says nothing useful
DEFAULT_DEPTH = 4

# iPXE's errors (reference §1.8), each in the file that raises it.
ERR_NO_FILENAME = ErrorSite(C.EINVAL, SITE_NFS_URI)  # nfs_uri_init: path ends in "/"
ERR_SYMLINK_OUTSIDE = ErrorSite(C.EINVAL, SITE_NFS_URI)  # nfs_uri_symlink (iPXE ignores it; we stop)
ERR_BAD_URI = ErrorSite(C.EINVAL, SITE_NFS_OPEN)  # no host or no path
ERR_NOT_REGISTERED = ErrorSite(C.EINVAL, SITE_NFS_OPEN)  # nfs_connect to port 0
ERR_EMPTY_SYMLINK = ErrorSite(C.EINVAL, SITE_NFS_OPEN)
ERR_CLOSED = ErrorSite(C.ECONNRESET, SITE_NFS_OPEN)  # nfs_done: a connection ended early
ERR_UNEXPECTED = ErrorSite(C.EPROTO, SITE_NFS_OPEN)
ERR_SYMLINK_LOOP = ErrorSite(C.ELOOP, SITE_NFS_OPEN)  # ours: iPXE loops forever
ERR_READ_COUNT = ErrorSite(C.EPROTO, SITE_NFS)  # READ count disagrees with its data (nfs.c)

# NFS3 status → error class, per procedure, as nfs.c maps them; anything else is EPROTO.
NFS3_OK = 0
NFS3ERR = {1: "PERM", 2: "NOENT", 5: "IO", 6: "NXIO", 13: "ACCES", 17: "EXIST", 18: "XDEV", 19: "NODEV",
           20: "NOTDIR", 21: "ISDIR", 22: "INVAL", 27: "FBIG", 28: "NOSPC", 30: "ROFS", 31: "MLINK",
           63: "NAMETOOLONG", 66: "NOTEMPTY", 69: "DQUOT", 70: "STALE", 71: "REMOTE", 10001: "BADHANDLE",
           10002: "NOT_SYNC", 10003: "BAD_COOKIE", 10004: "NOTSUPP", 10005: "TOOSMALL", 10006: "SERVERFAULT",
           10007: "BADTYPE", 10008: "JUKEBOX"}
_LOOKUP_ERRORS = {1: C.EPERM, 2: C.ENOENT, 5: C.EIO, 13: C.EACCES, 20: C.ENOTDIR, 63: C.ENAMETOOLONG,
                  70: C.ESTALE}
_READLINK_ERRORS = {5: C.EIO, 13: C.EACCES, 22: C.EINVAL, 10004: C.ENOTSUP, 70: C.ESTALE}
_READ_ERRORS = {1: C.EPERM, 2: C.ENOENT, 5: C.EIO, 6: C.ENXIO, 13: C.EACCES, 22: C.EINVAL, 70: C.ESTALE}
# MNT3 status → class as mount.c maps them; NOENT, NOTDIR and ACCES move the mount point up.
_MOUNT_ERRORS = {2: C.ENOENT, 5: C.EIO, 13: C.EACCES, 20: C.ENOTDIR, 63: C.ENAMETOOLONG}
_MOUNT_RETRY = frozenset({2, 13, 20})


def nfs_error(status: int, table: dict[int, ErrorClass]) -> ErrorSite:
    return ErrorSite(table.get(status, C.EPROTO), SITE_NFS)


def mount_error(status: int) -> ErrorSite:
    return ErrorSite(_MOUNT_ERRORS.get(status, C.EPROTO), SITE_MOUNT)


# ---- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a TCP connection for ``channel`` to the server's ``port``; report :meth:`NfsDownload.connected`."""

    channel: str
    port: int


@dataclass(frozen=True, slots=True)
class Send:
    channel: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """We are finished with ``channel``; its closing is not an error."""

    channel: str


@dataclass(frozen=True, slots=True)
class SizeKnown:
    size: int


@dataclass(frozen=True, slots=True)
class Data:
    offset: int
    payload: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Done:
    size: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: IpxeError
    reason: str


Output = Connect | Send | Close | SizeKnown | Data | Done | Failed


class State(Enum):
    IDLE = "idle"
    PORTMAP = "portmap"
    MOUNTING = "mounting"
    WALKING = "walking"
    READING = "reading"
    UNMOUNTING = "unmounting"
    DONE = "done"
    FAILED = "failed"


class _Fail(Exception):
    def __init__(self, site: ErrorSite, reason: str) -> None:
        super().__init__(reason)
        self.site = site
        self.reason = reason


# ---- XDR decoders for the few results we read ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attributes:
    type: int
    size: int


def _fattr3(body: Unpacker) -> Attributes:
    kind = body.uint()
    body.skip(16)  # mode, nlink, uid, gid
    size = body.hyper()
    body.skip(56)  # used, rdev, fsid, fileid, atime, mtime, ctime
    return Attributes(kind, size)


def _post_op_attr(body: Unpacker) -> Attributes | None:
    return _fattr3(body) if body.boolean() else None


def split_path(path: str) -> tuple[list[str], str]:
    """The directories and the file name of a URI path, as ``dirname``/``basename`` cut it."""
    if not path or path.endswith("/"):
        raise _Fail(ERR_NO_FILENAME, f"no file name in {path!r}")
    parts = [part for part in path.split("/") if part]
    return parts[:-1], parts[-1]


def _mountpoint(parts: list[str]) -> str:
    return "/" + "/".join(parts)


@dataclass
class Stats:
    calls: int = 0
    reads: int = 0
    short_reads: int = 0
    mount_attempts: int = 0
    symlinks: int = 0
    bytes: int = 0


_Handler = Callable[[Unpacker], list[Output]]


@dataclass
class _Channel:
    reader: RecordReader = field(default_factory=RecordReader)
    connected: bool = False
    queued: list[bytes] = field(default_factory=list)  # calls made before the connection was up


class NfsDownload:
    """One ``nfs://`` download; see the module docstring for its course and rules."""

    def __init__(self, path: str, *, nfs_port: int | None = None, cred: AuthSys | None = None,
                 depth: int = DEFAULT_DEPTH, xid: int | None = None) -> None:
        self.path = path
        self.nfs_port = nfs_port or None
        self.cred = cred or AuthSys()
        self.depth = max(1, depth)
        self.state = State.IDLE
        self.stats = Stats()
        self.chunk = DEFAULT_READ
        self.size: int | None = None
        self._xid = random.getrandbits(32) if xid is None else xid
        self._pending: dict[int, tuple[str, _Handler]] = {}
        self._channels: dict[str, _Channel] = {}
        self._dirs: list[str] = []
        self._filename = ""
        self._mount_depth = 0  # how many of self._dirs the mount point has
        self._root_fh = b""
        self._dir_fh = b""
        self._file_fh = b""
        self._remaining: deque[str] = deque()
        self._mounted = False
        self._fsinfo_done = False
        self._file_known = False
        self._next_offset = 0
        self._end = 0
        self._retries: deque[tuple[int, int]] = deque()
        self._in_flight = 0  # READs sent and not yet answered

    # -- public surface

    def start(self) -> list[Output]:
        if self.state is not State.IDLE:
            raise RuntimeError("NFS download already started")
        return self._guard(self._start)

    def connected(self, channel: str) -> list[Output]:
        def run() -> list[Output]:
            state = self._channels.get(channel)
            if state is None:  # closed meanwhile
                return []
            state.connected = True
            out: list[Output] = [Send(channel, data) for data in state.queued]
            state.queued.clear()
            if channel == NFS and self._mounted:
                out += self._begin_walk()
            return out
        return self._guard(run)

    def received(self, channel: str, data: bytes | memoryview) -> list[Output]:
        def run() -> list[Output]:
            state = self._channels.get(channel)
            if state is None:  # bytes that were in flight when we closed the channel
                return []
            out: list[Output] = []
            for record in state.reader.feed(data):
                out += self._on_record(channel, record)
                if self.finished:
                    break
            return out
        return self._guard(run)

    def closed(self, channel: str) -> list[Output]:
        """The server ended ``channel`` (or the connection failed after opening)."""
        def run() -> list[Output]:
            if channel in self._channels:
                raise _Fail(ERR_CLOSED, f"{channel} connection closed by the server")
            return []
        return self._guard(run)

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.FAILED)

    # -- plumbing

    def _guard(self, step: Callable[[], list[Output]]) -> list[Output]:
        """Run one step; turn any failure into :class:`Failed` and close what is open."""
        if self.finished:
            return []
        try:
            return step()
        except (_Fail, RpcError) as problem:
            site = problem.site if isinstance(problem, _Fail) else problem.error.site
            assert site is not None
            self.state = State.FAILED
            closes: list[Output] = [Close(name) for name in self._channels]
            self._channels.clear()
            return [*closes, Failed(IpxeError(site), problem.reason)]

    def _open(self, channel: str, port: int) -> list[Output]:
        if port == 0:
            raise _Fail(ERR_NOT_REGISTERED, f"{channel} program is not registered with the portmapper")
        self._channels[channel] = _Channel()
        return [Connect(channel, port)]

    def _close(self, channel: str) -> list[Output]:
        return [Close(channel)] if self._channels.pop(channel, None) is not None else []

    def _call(self, channel: str, program: int, version: int, procedure: int, args: bytes,
              handler: _Handler) -> list[Output]:
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        self._pending[self._xid] = (channel, handler)
        self.stats.calls += 1
        record = oncrpc.encode_call(self._xid, program, version, procedure, args, self.cred)
        state = self._channels[channel]
        if not state.connected:
            state.queued.append(record)
            return []
        return [Send(channel, record)]

    def _on_record(self, channel: str, record: Record) -> list[Output]:
        xid = oncrpc.reply_xid(record)
        pending = self._pending.get(xid)
        if pending is None or pending[0] != channel:
            return []  # a reply to nothing we asked: ignore it, as a late duplicate
        del self._pending[xid]
        return pending[1](oncrpc.open_reply(record))

    # -- 1, 2: path and ports

    def _start(self) -> list[Output]:
        self._dirs, self._filename = split_path(self.path)
        self._mount_depth = len(self._dirs)
        self.state = State.PORTMAP
        out = self._open(PORTMAP, oncrpc.PORTMAP_PORT)
        mount_args = oncrpc.getport_args(MOUNT_PROGRAM, MOUNT_VERSION)
        out += self._call(PORTMAP, oncrpc.PORTMAP_PROGRAM, oncrpc.PORTMAP_VERSION, oncrpc.PMAPPROC_GETPORT,
                          mount_args, self._on_mount_port)
        if self.nfs_port is None:
            nfs_args = oncrpc.getport_args(NFS_PROGRAM, NFS_VERSION)
            out += self._call(PORTMAP, oncrpc.PORTMAP_PROGRAM, oncrpc.PORTMAP_VERSION, oncrpc.PMAPPROC_GETPORT,
                              nfs_args, self._on_nfs_port)
        else:
            out += self._open(NFS, self.nfs_port)
        return out

    def _portmap_finished(self) -> list[Output]:
        if any(channel == PORTMAP for channel, _ in self._pending.values()):
            return []
        return self._close(PORTMAP)

    def _on_mount_port(self, body: Unpacker) -> list[Output]:
        out = self._open(MOUNT, oncrpc.parse_getport(body))
        self.state = State.MOUNTING
        return out + self._mnt() + self._portmap_finished()

    def _on_nfs_port(self, body: Unpacker) -> list[Output]:
        return self._open(NFS, oncrpc.parse_getport(body)) + self._portmap_finished()

    # -- 3: mount

    def _mountpoint(self) -> str:
        return _mountpoint(self._dirs[:self._mount_depth])

    def _mnt(self) -> list[Output]:
        self.stats.mount_attempts += 1
        args = Packer().opaque(self._mountpoint().encode()).bytes()
        return self._call(MOUNT, MOUNT_PROGRAM, MOUNT_VERSION, MOUNTPROC_MNT, args, self._on_mnt)

    def _on_mnt(self, body: Unpacker) -> list[Output]:
        status = body.uint()
        if status != 0:
            if status in _MOUNT_RETRY and self._mount_depth > 0:
                self._mount_depth -= 1
                return self._mnt()
            raise _Fail(mount_error(status), f"MNT {self._mountpoint()}: status {status}")
        self._root_fh = self._dir_fh = body.opaque(FHSIZE3)
        self._mounted = True
        self._remaining = deque([*self._dirs[self._mount_depth:], self._filename])
        if NFS in self._channels and self._channels[NFS].connected:
            return self._begin_walk()
        return []

    # -- 4: walk

    def _begin_walk(self) -> list[Output]:
        self.state = State.WALKING
        fsinfo = self._call(NFS, NFS_PROGRAM, NFS_VERSION, NFSPROC_FSINFO, Packer().opaque(self._root_fh).bytes(),
                            self._on_fsinfo)
        return fsinfo + self._lookup_next()

    def _lookup_next(self) -> list[Output]:
        if not self._remaining:  # a symlink led to a directory we already hold
            self._file_fh = self._dir_fh
            return self._getattr(self._dir_fh, self._file_attributes)
        name = self._remaining.popleft()
        args = Packer().opaque(self._dir_fh).opaque(name.encode("utf-8", "surrogateescape")).bytes()
        return self._call(NFS, NFS_PROGRAM, NFS_VERSION, NFSPROC_LOOKUP, args,
                          lambda body: self._on_lookup(name, body))

    def _on_lookup(self, name: str, body: Unpacker) -> list[Output]:
        status = body.uint()
        if status != NFS3_OK:
            raise _Fail(nfs_error(status, _LOOKUP_ERRORS), f"LOOKUP {name}: {NFS3ERR.get(status, status)}")
        handle = body.opaque(FHSIZE3)
        attributes = _post_op_attr(body)
        if attributes is None:  # attributes are optional: ask, since the type decides what comes next
            return self._getattr(handle, lambda found: self._looked_up(name, handle, found))
        return self._looked_up(name, handle, attributes)

    def _looked_up(self, name: str, handle: bytes, attributes: Attributes) -> list[Output]:
        if attributes.type == NF3LNK:
            self.stats.symlinks += 1
            if self.stats.symlinks > MAX_SYMLINKS:
                raise _Fail(ERR_SYMLINK_LOOP, f"more than {MAX_SYMLINKS} symbolic links")
            return self._call(NFS, NFS_PROGRAM, NFS_VERSION, NFSPROC_READLINK, Packer().opaque(handle).bytes(),
                              lambda reply: self._on_readlink(name, reply))
        if self._remaining:
            self._dir_fh = handle
            return self._lookup_next()
        self._file_fh = handle
        return self._file_attributes(attributes)

    def _on_readlink(self, name: str, body: Unpacker) -> list[Output]:
        status = body.uint()
        if status != NFS3_OK:
            raise _Fail(nfs_error(status, _READLINK_ERRORS), f"READLINK {name}: {NFS3ERR.get(status, status)}")
        _post_op_attr(body)
        target = body.opaque(MAXPATHLEN).decode("utf-8", "surrogateescape")
        if not target:
            raise _Fail(ERR_EMPTY_SYMLINK, f"symbolic link {name} is empty")
        parts = [part for part in target.split("/") if part]
        if target.startswith("/"):
            mount = self._dirs[:self._mount_depth]
            if parts[:len(mount)] != mount:
                raise _Fail(ERR_SYMLINK_OUTSIDE, f"symbolic link {name} -> {target} leaves the mount {self._mountpoint()}")
            parts = parts[len(mount):]
            self._dir_fh = self._root_fh
        self._remaining.extendleft(reversed(parts))
        return self._lookup_next()

    def _getattr(self, handle: bytes, then: Callable[[Attributes], list[Output]]) -> list[Output]:
        def on_reply(body: Unpacker) -> list[Output]:
            status = body.uint()
            if status != NFS3_OK:
                raise _Fail(nfs_error(status, _LOOKUP_ERRORS), f"GETATTR: {NFS3ERR.get(status, status)}")
            return then(_fattr3(body))
        return self._call(NFS, NFS_PROGRAM, NFS_VERSION, NFSPROC_GETATTR, Packer().opaque(handle).bytes(), on_reply)

    def _on_fsinfo(self, body: Unpacker) -> list[Output]:
        if body.uint() == NFS3_OK:
            _post_op_attr(body)
            rtmax, rtpref = body.uint(), body.uint()
            if rtmax:
                self.chunk = min(max(rtpref, DEFAULT_READ), rtmax, MAX_READ)
        self._fsinfo_done = True
        return self._maybe_read()

    def _file_attributes(self, attributes: Attributes) -> list[Output]:
        self._file_known = True
        self.size = self._end = attributes.size
        return [SizeKnown(attributes.size), *self._maybe_read()]

    # -- 5: read

    def _maybe_read(self) -> list[Output]:
        if not (self._file_known and self._fsinfo_done) or self.state is not State.WALKING:
            return []
        self.state = State.READING
        # Always one READ, even of an empty file: a directory or a special file fails here as in iPXE.
        out = self._read(0, max(1, min(self.chunk, self._end)))
        self._next_offset = min(self.chunk, self._end)
        return out + self._fill()

    def _read(self, offset: int, count: int) -> list[Output]:
        args = Packer().opaque(self._file_fh).hyper(offset).uint(count).bytes()
        self._in_flight += 1
        self.stats.reads += 1
        return self._call(NFS, NFS_PROGRAM, NFS_VERSION, NFSPROC_READ, args,
                          lambda body: self._on_read(offset, count, body))

    def _fill(self) -> list[Output]:
        out: list[Output] = []
        while self._in_flight < self.depth:
            if self._retries:
                offset, count = self._retries.popleft()
            elif self._next_offset < self._end:
                offset, count = self._next_offset, min(self.chunk, self._end - self._next_offset)
                self._next_offset += count
            else:
                break
            out += self._read(offset, count)
        return out

    def _on_read(self, offset: int, asked: int, body: Unpacker) -> list[Output]:
        self._in_flight -= 1
        status = body.uint()
        if status != NFS3_OK:
            raise _Fail(nfs_error(status, _READ_ERRORS), f"READ at {offset}: {NFS3ERR.get(status, status)}")
        _post_op_attr(body)
        count, eof = body.uint(), body.boolean()
        payload = body.opaque_view(MAX_READ)
        if count != len(payload) or count > asked:
            raise _Fail(ERR_READ_COUNT, f"READ at {offset}: count {count}, {len(payload)} bytes, asked {asked}")
        out: list[Output] = []
        end = offset + count
        if count:
            if end > self._end:  # the file grew since we looked: keep the size we announced
                payload, end = payload[:self._end - offset], self._end
            if end > offset:
                out.append(Data(offset, payload))
                self.stats.bytes += end - offset
        if eof:
            self._end = min(self._end, offset + count)
            self._next_offset = min(self._next_offset, self._end)
            self._retries = deque((o, c) for o, c in self._retries if o < self._end)
        elif count < asked:
            if count == 0:
                raise _Fail(ERR_READ_COUNT, f"READ at {offset}: no data and no EOF")
            self.stats.short_reads += 1
            if end < self._end:
                self._retries.appendleft((end, min(asked - count, self._end - end)))
        out += self._fill()
        if not self._in_flight and not self._retries and self._next_offset >= self._end:
            out += self._umount()
        return out

    # -- 6: unmount

    def _umount(self) -> list[Output]:
        self.state = State.UNMOUNTING
        self.size = self._end
        out = self._close(NFS)
        args = Packer().opaque(self._mountpoint().encode()).bytes()
        return out + self._call(MOUNT, MOUNT_PROGRAM, MOUNT_VERSION, MOUNTPROC_UMNT, args, self._on_umnt)

    def _on_umnt(self, body: Unpacker) -> list[Output]:
        self.state = State.DONE
        return [*self._close(MOUNT), Done(self._end)]
