"""Image commands and the registry, as the real iPXE behaves (observed with the oracle).

The oracle (2019 build) has no ``data:`` URIs and no sha256sum; these tests use ``data:``
and ``file:`` so that they need no server, and check the behaviour recorded from the real
iPXE over HTTP: registration order, names, imgstat's line, the running image leaving the
list, --autofree, --replace, "No image selected", and the error lines.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import types
from pathlib import Path

import pytest

from conftest import run_script
from pyipxe.image.formats import detect
from pyipxe.image.registry import ImageRegistry, default_name
from pyipxe.net import transfer
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, Sink
from pyipxe.uri import parse_uri


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "small.txt").write_text("hello\n")
    (tmp_path / "b.ipxe").write_text("#!ipxe\necho in b\nimgstat\nexit 3\n")
    (tmp_path / "c.ipxe").write_text(f"#!ipxe\necho in c\nchain --replace file:{tmp_path}/d.ipxe\necho notreached\n")
    (tmp_path / "d.ipxe").write_text("#!ipxe\necho in d\nimgstat\n")
    (tmp_path / "rel.ipxe").write_text("#!ipxe\nimgfetch small.txt\necho cwuri=${cwuri}\n")
    return tmp_path


def test_fetch_list_and_free(tree: Path) -> None:
    run = run_script(f"#!ipxe\nimgfetch file:{tree}/small.txt\nimgfetch --name foo file:{tree}/b.ipxe a1 a2\n"
                     f"imgfetch file:{tree}/small.txt\nimgstat\nimgfree small.txt\nimgstat\nimgfree\nimgstat\n")
    assert run.status == 0
    assert run.output == (
        f"file:{tree}/small.txt... ok\nfile:{tree}/b.ipxe... ok\nfile:{tree}/small.txt... ok\n"
        'small.txt : 6 bytes [PXE-NBP]\nfoo : 32 bytes [script] "a1 a2"\nsmall.txt : 6 bytes [PXE-NBP]\n'
        'foo : 32 bytes [script] "a1 a2"\nsmall.txt : 6 bytes [PXE-NBP]\n'
    )


def test_chained_script_leaves_the_list_while_it_runs_and_fails_with_its_exit_status(tree: Path) -> None:
    run = run_script(f"#!ipxe\nimgfetch file:{tree}/small.txt\nchain file:{tree}/b.ipxe || echo rc=${{errno}}\n"
                     f"imgstat\nchain --autofree file:{tree}/b.ipxe || echo rc=${{errno}}\nimgstat\n")
    assert run.output.splitlines() == [
        f"file:{tree}/small.txt... ok", f"file:{tree}/b.ipxe... ok", "in b", "small.txt : 6 bytes [PXE-NBP]",
        "Could not boot: Error 0x00000003 (https://ipxe.org/00000003)", "rc=0x3",
        "small.txt : 6 bytes [PXE-NBP]", "b.ipxe : 32 bytes [script]",
        # the second b.ipxe runs; the first (registered) one is listed; --autofree frees the second
        f"file:{tree}/b.ipxe... ok", "in b", "small.txt : 6 bytes [PXE-NBP]", "b.ipxe : 32 bytes [script]",
        "Could not boot: Error 0x00000003 (https://ipxe.org/00000003)", "rc=0x3",
        "small.txt : 6 bytes [PXE-NBP]", "b.ipxe : 32 bytes [script]",
    ]


def test_replace_discards_the_running_script(tree: Path) -> None:
    run = run_script(f"#!ipxe\nimgfetch file:{tree}/small.txt\nchain file:{tree}/c.ipxe\nimgstat\n")
    assert run.output.splitlines() == [
        f"file:{tree}/small.txt... ok", f"file:{tree}/c.ipxe... ok", "in c", f"file:{tree}/d.ipxe... ok",
        "in d", "small.txt : 6 bytes [PXE-NBP]",
        "small.txt : 6 bytes [PXE-NBP]", "d.ipxe : 25 bytes [script]",
    ]


def test_replace_the_top_level_script(tree: Path) -> None:
    run = run_script(f"#!ipxe\nchain --replace file:{tree}/d.ipxe\necho notreached\n")
    assert run.output == f"file:{tree}/d.ipxe... ok\nin d\n" and run.status == 0


def test_boot_with_nothing_selected_succeeds_and_kernel_selects(tree: Path) -> None:
    run = run_script(f"#!ipxe\nboot && echo nosel ok\nkernel file:{tree}/small.txt quiet\nimgstat\n"
                     "imgargs small.txt\nimgstat\n")
    assert run.output.splitlines() == [
        "No image selected", "nosel ok", f"file:{tree}/small.txt... ok",
        'small.txt : 6 bytes [PXE-NBP] [SELECTED] "quiet"', "small.txt : 6 bytes [PXE-NBP] [SELECTED]",
    ]


def test_selecting_an_unexecutable_image(tree: Path) -> None:
    (tree / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    run = run_script(f"#!ipxe\nkernel file:{tree}/cert.pem || echo rc=${{errno}}\nimgstat\n")
    assert run.output.splitlines() == [
        f"file:{tree}/cert.pem... ok", "Could not select: Exec format error (https://ipxe.org/2e008001)",
        "rc=0x2e008001", "cert.pem : 28 bytes [PEM]",
    ]


def test_errors_leave_no_image(tree: Path) -> None:
    run = run_script(f"#!ipxe\nimgfetch file:{tree}/missing || echo rc=${{errno}}\n"
                     "imgfetch nope.txt || echo rc=${errno}\nimgstat nosuch || echo rc=${errno}\nimgstat\n")
    assert run.output.splitlines() == [
        f"file:{tree}/missing... No such file or directory (https://ipxe.org/2d7f003b)", "rc=0x2d7f003b",
        "Could not start download: Operation not supported (https://ipxe.org/3c092003)", "rc=0x3c092003",
        '"nosuch": no such image', "rc=0x2d0ae03b",
    ]
    assert run.context.images.images == []


def test_relative_uris_resolve_against_the_running_script(tree: Path) -> None:
    run = run_script(f"#!ipxe\nchain file://{tree}/rel.ipxe\nimgstat\necho cwuri=${{cwuri}}\n")
    assert run.output.splitlines() == [
        f"file://{tree}/rel.ipxe... ok", "small.txt... ok", f"cwuri=file://{tree}/rel.ipxe",
        "small.txt : 6 bytes [PXE-NBP]", "rel.ipxe : 46 bytes [script]", "cwuri=",
    ]


def test_digests_print_and_store(tree: Path) -> None:
    data = (tree / "small.txt").read_bytes()
    run = run_script(f"#!ipxe\nsha256sum file:{tree}/small.txt\nmd5sum small.txt\nsha1sum --set h small.txt\n"
                     "echo ${h}\nsha512sum missing-name\n")
    assert run.output.splitlines() == [
        f"file:{tree}/small.txt... ok", f"{hashlib.sha256(data).hexdigest()}  small.txt",
        f"{hashlib.md5(data).hexdigest()}  small.txt", hashlib.sha1(data).hexdigest(),
        "Could not start download: Operation not supported (https://ipxe.org/3c092003)",
    ]
    assert run.status == 0  # iPXE's digest commands move on past images they cannot acquire


def test_data_uri_script_runs_in_place() -> None:
    run = run_script("#!ipxe\nchain data:,%23!ipxe%0Aecho%20inline%0A\n")
    assert run.output == "data:,%23!ipxe%0Aecho%20inline%0A... ok\ninline\n"


def test_default_names() -> None:
    registry = ImageRegistry()
    assert registry.new_image(parse_uri("http://10.0.2.2")).name == "img0"
    assert registry.new_image(parse_uri("http://10.0.2.2/")).name == ""
    assert registry.new_image(parse_uri("http://h/a/b%20c.efi?x=1")).name == "b c.efi"
    assert registry.new_image(parse_uri("tftp://h")).name == "img1"
    assert default_name(parse_uri("data:,hello"), 0) == ",hello"


@pytest.mark.parametrize(("head", "platform", "name"), [
    (b"#!ipxe\n", "pcbios", "script"),
    (b"\x1f\x8b\x08" + bytes(20), "pcbios", "gzip"),
    (b"\x78\x9c" + bytes(20), "efi", "zlib"),
    (b"-----BEGIN CERTIFICATE-----", "efi", "PEM"),
    (b"\x30\x03\x02\x01\x05", "efi", "DER"),
    (b"\x89PNG\r\n\x1a\n", "pcbios", "PNG"),
    (b"random bytes", "pcbios", "PXE-NBP"),
    (b"random bytes", "efi", None),
])
def test_detection(head: bytes, platform: str, name: str | None) -> None:
    found = detect(head, len(head), platform)
    assert (found.name if found else None) == name


def test_detects_a_bzimage_header() -> None:
    head = bytearray(0x4000)
    head[0x1F1] = 4
    head[0x1FE:0x200] = b"\x55\xaa"
    head[0x202:0x206] = b"HdrS"
    assert (found := detect(bytes(head), 0x100000, "pcbios")) is not None and found.name == "bzImage"
    assert (found := detect(bytes(head), 0x800, "pcbios")) is not None and found.name == "PXE-NBP"  # setup > image


# -- the download job: timeout, progress, cleanup, with a stand-in protocol --------------------

class _Stall:
    """A protocol that sends ``chunks`` every ``interval`` seconds, then stalls or finishes."""

    def __init__(self, chunks: int, interval: float, *, finish: bool, length: int | None = None) -> None:
        self.chunks, self.interval, self.finish, self.length = chunks, interval, finish, length
        self.written = 0

    async def fetch(self, request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
        if self.length is not None:
            sink.set_length(self.length)
        for index in range(self.chunks):
            await asyncio.sleep(self.interval)
            sink.write(index * 4, b"data")
            self.written += 1
        if not self.finish:
            await asyncio.sleep(3600)
        return FetchResult(request.uri, self.chunks * 4)


@pytest.fixture
def stall(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    holder = types.SimpleNamespace(protocol=None)
    module = types.ModuleType("pyipxe_test_stall")

    async def fetch(request: FetchRequest, sink: Sink, env: FetchEnv) -> FetchResult:
        return await holder.protocol.fetch(request, sink, env)

    module.fetch = fetch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyipxe_test_stall", module)
    monkeypatch.setitem(transfer.DRIVERS, "stall", "pyipxe_test_stall")
    return holder


def test_timeout_is_inactivity_not_total_time(stall: types.SimpleNamespace) -> None:
    # 0.45 s of steady progress outlasts a 250 ms --timeout; then the stall trips it (before 1 s)
    stall.protocol = _Stall(3, 0.15, finish=False)
    run = run_script("#!ipxe\nimgfetch --timeout 250 stall://h/f || echo rc=${errno}\nimgstat\n")
    assert re.fullmatch(r"stall://h/f\.\.\.\.* Connection timed out \(https://ipxe.org/4c072035\)\nrc=0x4c072035\n",
                        run.output)
    assert stall.protocol.written == 3  # every chunk arrived: 0.45 s in total, never 250 ms idle
    assert run.context.images.images == []


def test_progress_dots_while_the_size_is_unknown(stall: types.SimpleNamespace) -> None:
    stall.protocol = _Stall(5, 0.5, finish=True)
    run = run_script("#!ipxe\nimgfetch stall://h/f\n")
    assert run.output.startswith("stall://h/f....") and run.output.endswith(". ok\n")


def test_percentages_are_erased_before_ok(stall: types.SimpleNamespace) -> None:
    stall.protocol = _Stall(3, 0.6, finish=True, length=12)
    run = run_script("#!ipxe\nimgfetch stall://h/f\nimgstat\n")
    assert run.output == "stall://h/f... ok\nf : 12 bytes [PXE-NBP]\n"


def test_imgextract_gzip_and_zlib(tree: Path) -> None:
    import gzip
    import zlib

    payload = b"#!ipxe\necho extracted\n" * 1000
    (tree / "s.ipxe.gz").write_bytes(gzip.compress(payload))
    (tree / "s.z").write_bytes(zlib.compress(payload))
    run = run_script(f"#!ipxe\nimgextract file:{tree}/s.ipxe.gz\nimgextract --keep --name zz file:{tree}/s.z\n"
                     "imgstat\nsha1sum s.ipxe zz\nimgextract zz || echo rc=${errno}\nimgstat\n")
    digest = hashlib.sha1(payload).hexdigest()
    assert run.output.splitlines() == [
        f"file:{tree}/s.ipxe.gz... ok", f"file:{tree}/s.z... ok",
        f"s.ipxe : {len(payload)} bytes [script]", f"s.z : {(tree / 's.z').stat().st_size} bytes [zlib]",
        f"zz : {len(payload)} bytes [script]", f"{digest}  s.ipxe", f"{digest}  zz",
        "Could not extract image: Operation not supported (https://ipxe.org/3c3f2003)", "rc=0x3c3f2003",
        f"s.ipxe : {len(payload)} bytes [script]", f"s.z : {(tree / 's.z').stat().st_size} bytes [zlib]",
    ]


def test_corrupt_archive_is_refused(tree: Path) -> None:
    (tree / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"garbage that does not inflate")
    run = run_script(f"#!ipxe\nimgextract file:{tree}/bad.gz || echo rc=${{errno}}\nimgstat\n")
    assert run.output.splitlines()[1:] == [
        "Could not extract image: Invalid argument (https://ipxe.org/1c088002)", "rc=0x1c088002"]


def test_executing_an_archive_runs_what_it_holds(tree: Path) -> None:
    import gzip

    (tree / "boot.ipxe.gz").write_bytes(gzip.compress(b"#!ipxe\necho from the archive\nimgstat\n"))
    run = run_script(f"#!ipxe\nchain file:{tree}/boot.ipxe.gz\nimgstat\n")
    assert run.output.splitlines() == [f"file:{tree}/boot.ipxe.gz... ok", "from the archive"]


def test_params_lists() -> None:
    run = run_script("#!ipxe\nparam x 1 || echo rc=${errno}\nparams\nparam a b c\nparam --header X-Y z\n"
                     "params --name n --method post\nparam -p n k v\nparam -p m k v || echo rc=${errno}\n"
                     "params --name n --delete\nparam -p n k v || echo rc=${errno}\n")
    assert run.output.splitlines() == [
        '"<NULL>": no such parameter list', "rc=0x2d16203b",
        '"m": no such parameter list', "rc=0x2d16203b", '"n": no such parameter list', "rc=0x2d16203b",
    ]
    default = run.context.request_params[""]
    assert default.fields == [("a", "b c")] and default.headers == [("X-Y", "z")]
    assert "n" not in run.context.request_params


def test_next_server_gives_a_tftp_working_uri() -> None:
    run = run_script("#!ipxe\necho [${cwuri}]\nset next-server 10.0.0.1\necho [${cwuri}]\n"
                     "imgfetch --timeout 100 pxelinux.0 || echo failed\nclear next-server\necho [${cwuri}]\n")
    assert run.output.splitlines()[:2] == ["[]", "[tftp://10.0.0.1/]"]
    assert run.output.splitlines()[2].startswith("pxelinux.0...")
    assert run.output.splitlines()[-1] == "[]"
