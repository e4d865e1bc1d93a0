"""The boot layer without hardware: initrd layout and CPIO vectors, the bzImage header, the plan
as text and JSON, the kexec arguments (with a stand-in syscall) and refusals, QEMU's command line."""

from __future__ import annotations

import asyncio
import errno
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipxe.boot import BootFinished, BootOptions, install
from pyipxe.boot.kexec import KEXEC_FILE_NO_INITRAMFS, KexecBackend, KexecRefused
from pyipxe.boot.plan import BootPlan, build_plan
from pyipxe.boot.qemu import QemuBackend, QemuRefused, memory_mib
from pyipxe.console.output import Console
from pyipxe.demo.images import make_bzimage, make_cpio
from pyipxe.errors import IpxeError
from pyipxe.image.initrd import cpio_entries, cpio_prefix, layout, strtoul
from pyipxe.image.linux import bzimage_cmdline, cmdline_options, parse_bzimage
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.image.spool import SpoolFile
from pyipxe.runner import apply_preset, run_top_script
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter

# -- CPIO: iPXE's cpio_test.c vectors -----------------------------------------------------

def header(mode: str, filesize: str, namesize: str, name: bytes) -> bytes:
    return (b"070701" + b"00000000" + mode.encode() + b"00000000" + b"00000000" + b"00000001" + b"00000000"
            + filesize.encode() + b"00000000" * 4 + namesize.encode() + b"00000000" + name)


PAD1, PAD2, PAD3, PAD4 = b"\0", b"\0" * 2, b"\0" * 3, b"\0" * 4
CPIO_VECTORS = [
    ("no_cmdline", 42, None, b""),
    ("empty_cmdline", 154, "", b""),
    ("all_slashes", 64, "////", b""),
    ("simple", 0x69, "wimboot", header("000081a4", "00000069", "00000008", b"wimboot" + PAD3)),
    ("init_slash", 0x273, "/wimboot", header("000081a4", "00000273", "00000009", b"/wimboot" + PAD2)),
    ("init_slashes", 0x94, "///initscript", header("000081a4", "00000094", "0000000e", b"///initscript" + PAD1)),
    ("path", 0x341, "/usr/share/oem/config.ign",
     header("000081a4", "00000341", "0000001a", b"/usr/share/oem/config.ign" + PAD1)),
    ("path_mkdir_0", 0x341, "/usr/share/oem/config.ign mkdir=0",
     header("000081a4", "00000341", "0000001a", b"/usr/share/oem/config.ign" + PAD1)),
    ("path_mkdir_1", 0x341, "/usr/share/oem/config.ign mkdir=1",
     header("000041ed", "00000000", "0000000f", b"/usr/share/oem" + PAD4)
     + header("000081a4", "00000341", "0000001a", b"/usr/share/oem/config.ign" + PAD1)),
    ("path_mkdir_2", 0x341, "/usr/share/oem/config.ign mkdir=2",
     header("000041ed", "00000000", "0000000b", b"/usr/share" + PAD4)
     + header("000041ed", "00000000", "0000000f", b"/usr/share/oem" + PAD4)
     + header("000081a4", "00000341", "0000001a", b"/usr/share/oem/config.ign" + PAD1)),
    ("path_mkdir_all", 0x341, "/usr/share/oem/config.ign mkdir=-1",
     header("000041ed", "00000000", "00000005", b"/usr" + PAD2)
     + header("000041ed", "00000000", "0000000b", b"/usr/share" + PAD4)
     + header("000041ed", "00000000", "0000000f", b"/usr/share/oem" + PAD4)
     + header("000081a4", "00000341", "0000001a", b"/usr/share/oem/config.ign" + PAD1)),
    ("dir", 0, "/opt/", header("000041ed", "00000000", "00000005", b"/opt" + PAD2)),
    ("tree", 0, "/opt/oem/scripts/ mkdir=-1",
     header("000041ed", "00000000", "00000005", b"/opt" + PAD2)
     + header("000041ed", "00000000", "00000009", b"/opt/oem" + PAD2)
     + header("000041ed", "00000000", "00000011", b"/opt/oem/scripts" + PAD2)),
    ("mode", 39, "/sbin/init mode=755", header("000081ed", "00000027", "0000000b", b"/sbin/init" + PAD4)),
    ("chaos", 73, "///etc//init.d///runthings mode=700 mkdir=99",
     header("000041ed", "00000000", "00000007", b"///etc" + PAD4)
     + header("000041ed", "00000000", "0000000f", b"///etc//init.d" + PAD4)
     + header("000081c0", "00000049", "0000001b", b"///etc//init.d///runthings" + PAD4)),
]


@pytest.mark.parametrize(("name", "length", "cmdline", "expected"), CPIO_VECTORS, ids=[v[0] for v in CPIO_VECTORS])
def test_cpio_headers_match_ipxe(name: str, length: int, cmdline: str | None, expected: bytes) -> None:
    assert cpio_prefix(cmdline, length) == expected
    assert len(expected) % 4 == 0


def test_strtoul_like_c() -> None:
    assert strtoul("755", 8) == 0o755
    assert strtoul("79", 8) == 7  # stops at the first non-digit
    assert strtoul("", 10) == 0
    assert strtoul("-1", 10) == (1 << 64) - 1
    assert strtoul("  12abc", 10) == 12


def test_odd_mode_and_mkdir_values_do_not_fail() -> None:
    assert cpio_entries("/a/b mode=xyz", 3)[-1].mode == 0o100000  # strtoul of nothing: 0
    # 1 + (2^64 - 5) wraps to 2^32 - 4 in iPXE's unsigned int: more levels than there are
    assert [e.path for e in cpio_entries("/a/b/c mkdir=-5", 1)] == ["/a", "/a/b", "/a/b/c"]
    assert cpio_entries("a mode=77777777777", 1)[0].header()[14:22] == b"ffffffff"


@given(st.text(alphabet="/ab= .mode1-kir", max_size=40), st.integers(0, 1 << 32))
def test_cpio_prefix_is_always_aligned_and_parseable(cmdline: str, length: int) -> None:
    prefix = cpio_prefix(cmdline, length)
    assert len(prefix) % 4 == 0
    position = 0
    while position < len(prefix):
        assert prefix[position:position + 6] == b"070701"
        namesize = int(prefix[position + 94:position + 102], 16)
        position += (110 + namesize + 3) // 4 * 4
    assert position == len(prefix)


# -- the initrd layout ---------------------------------------------------------------------

def test_initrd_layout_aligns_every_image_and_wraps_those_with_arguments() -> None:
    first, second, third = SpoolFile(b"A" * 5000), SpoolFile(b"marker"), SpoolFile(b"raw")
    plan = layout([("a.cpio", first, None), ("m", second, "/etc/marker mode=444"), ("r", third, None)])
    offsets = [part.offset for part in plan.parts]
    assert offsets == [0, 8192, 12288]
    data = b"".join(plan.segments())
    assert data[:5000] == b"A" * 5000 and data[5000:8192] == bytes(3192)
    prefix = header("00008124", "00000006", "0000000c", b"/etc/marker" + PAD3)
    assert data[8192:8192 + len(prefix)] == prefix
    assert data[8192 + len(prefix):8192 + len(prefix) + 6] == b"marker"
    assert data.endswith(b"raw") and len(data) == plan.length == 12288 + 3
    spooled = plan.spool()
    assert spooled.read() == data
    import hashlib
    assert plan.sha256() == hashlib.sha256(data).hexdigest()


def test_a_lone_raw_initrd_is_passed_without_a_copy() -> None:
    only = SpoolFile(b"initramfs")
    assert layout([("i", only, None)]).spool() is only


# -- the bzImage header --------------------------------------------------------------------

def test_bzimage_header_facts() -> None:
    data = make_bzimage(version=0x020F, setup_sects=2, handover_offset=0x190, efi_stub=True, xloadflags=0x1F)
    header = parse_bzimage(data[:0x4000], len(data))
    assert header.version_text == "2.15" and header.setup_sects == 2 and header.setup_size == 1536
    assert header.efi_stub and header.handover_offset == 0x190 and header.cmdline_size == 2047
    assert header.xloadflag_names() == ["KERNEL_64", "CAN_BE_LOADED_ABOVE_4G", "EFI_HANDOVER_32",
                                        "EFI_HANDOVER_64", "EFI_KEXEC"]
    assert header.kernel_version is not None and header.kernel_version.startswith("0.0.0-pyipxe-demo")
    assert header.kexec_problem() is None
    assert header.init_size == 0x1000000 and header.kernel_alignment == 0x200000


def test_old_protocols_hide_newer_fields() -> None:
    data = make_bzimage(version=0x0204)
    header = parse_bzimage(data, len(data))
    assert header.xloadflags is None and header.cmdline_size == 0x7FF and header.handover_offset is None
    assert header.kexec_problem() == "boot protocol 2.04 is older than 2.12"


def test_setup_sects_zero_means_four() -> None:
    data = bytearray(make_bzimage(setup_sects=4))
    data[0x1F1] = 0
    assert parse_bzimage(bytes(data), len(data)).setup_sects == 4


@pytest.mark.parametrize("damage", ["flag", "short", "setup"])
def test_broken_headers_are_exec_format_errors(damage: str) -> None:
    data = bytearray(make_bzimage())
    if damage == "flag":
        data[0x1FE] = 0
    elif damage == "short":
        data = data[:0x100]
    else:
        data[0x1F1] = 200
    with pytest.raises(IpxeError) as caught:
        parse_bzimage(bytes(data), len(data))
    assert caught.value.code("pcbios") == 0x2E818001


@given(st.binary(max_size=0x300), st.integers(0, 1 << 40))
def test_hostile_headers_never_crash(data: bytes, length: int) -> None:
    head = bytearray(data.ljust(0x202, b"\0"))
    head[0x1FE:0x200] = b"\x55\xaa"
    try:
        header = parse_bzimage(bytes(head), length)
    except IpxeError:
        return
    header.facts()
    header.kexec_problem()


def test_command_line_is_cut_to_the_header_limit() -> None:
    data = make_bzimage(cmdline_size=8)
    header = parse_bzimage(data, len(data))
    assert bzimage_cmdline("console=ttyS0 quiet", header) == "console="
    assert bzimage_cmdline(None, header) == ""
    assert cmdline_options("vga=ext mem=512M quiet") == {"vga": 0xFFFE, "mem": 512 << 20}
    assert cmdline_options("vga=0x317 mem=bad") == {"vga": 0x317, "mem": None}


# -- sessions: the plan as iPXE would build it ---------------------------------------------

class Session:
    def __init__(self, tmp_path: Path, options: BootOptions, platform: str = "pcbios") -> None:
        self.stream = io.BytesIO()
        self.console = Console(self.stream, tty=False)  # type: ignore[arg-type]
        self.ctx = Context(console=self.console)
        apply_preset(self.ctx, f"platform={platform}")
        Interpreter(self.ctx)
        self.plans: list[BootPlan] = []
        install(self.ctx.images, self.console, options)
        self.tmp = tmp_path

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return f"file://{path}"

    def run(self, script: str) -> tuple[str, int | BootFinished]:
        try:
            status: int | BootFinished = asyncio.run(run_top_script(self.ctx, script, "test"))
        except BootFinished as finished:
            status = finished
        self.console.close()
        return self.stream.getvalue().decode(), status


@pytest.fixture
def kernel() -> bytes:
    return make_bzimage(efi_stub=True, handover_offset=0x190)


def test_print_shows_the_plan_and_ends_the_session(tmp_path: Path, kernel: bytes) -> None:
    session = Session(tmp_path, BootOptions())
    k = session.file("vmlinuz", kernel)
    i = session.file("initrd.img", make_cpio({"init": (b"#!/bin/sh\n", 0o755)}))
    m = session.file("m.txt", b"marker")
    output, status = session.run(f"#!ipxe\nkernel {k} console=ttyS0 quiet\ninitrd {i}\ninitrd {m} /etc/marker "
                                 "mode=444\nboot\necho not reached\n")
    assert isinstance(status, BootFinished) and status.status == 0
    assert "not reached" not in output
    lines = output.splitlines()
    assert "Boot plan (print): linux on pcbios" in lines
    assert "  kernel  vmlinuz : 5120 bytes [bzImage]" in lines
    assert "  cmdline console=ttyS0 quiet" in lines
    assert any(line.startswith("  format  boot protocol 2.15, version 0.0.0-pyipxe-demo, EFI stub, handover 0x190")
               for line in lines)
    assert any(line.startswith("    0x00001000 m.txt -> /etc/marker (mode 0444) : 6 bytes sha256 ") for line in lines)


def test_json_plan(tmp_path: Path, kernel: bytes) -> None:
    session = Session(tmp_path, BootOptions(json=True))
    k = session.file("vmlinuz", kernel)
    i = session.file("a", b"1" * 10)
    script = session.file("s.ipxe", b"#!ipxe\necho leftover scripts are initrds too\n")
    output, _status = session.run(f"#!ipxe\nimgfetch {script}\nkernel {k} root=/dev/ram0\nimgfetch {i} "
                                 "/a/b/c mkdir=1\nboot\n")
    plan = json.loads(output[output.index("{"):])
    assert plan["kind"] == "linux" and plan["cmdline"] == "root=/dev/ram0" and plan["backend"] == "print"
    assert plan["kernel"]["type"] == "bzImage" and plan["facts"]["bzimage"]["version"] == "2.15"
    assert [part["name"] for part in plan["initrd"]["parts"]] == ["s.ipxe", "a"]
    assert [part["offset"] for part in plan["initrd"]["parts"]] == [0, 4096]
    assert plan["initrd"]["parts"][1]["cpio"] == [{"path": "/a/b", "mode": "040755", "size": 0},
                                                  {"path": "/a/b/c", "mode": "100644", "size": 10}]
    assert plan["initrd"]["length"] == 4096 + 116 + 120 + 10


def test_efi_platform_passes_the_name_first(tmp_path: Path, kernel: bytes) -> None:
    session = Session(tmp_path, BootOptions(json=True), platform="efi")
    k = session.file("vmlinuz", kernel)
    output, _ = session.run(f"#!ipxe\nchain {k} initrd=initrd.img quiet\n")
    plan = json.loads(output[output.index("{"):])
    assert plan["kind"] == "linux-efi" and plan["kernel"]["type"] == "EFI"
    assert plan["cmdline"] == "vmlinuz initrd=initrd.img quiet"
    assert plan["facts"]["initrd_names"] == ["initrd.img"] and plan["initrd"] is None


def test_gzip_kernel_is_extracted_before_booting(tmp_path: Path, kernel: bytes) -> None:
    session = Session(tmp_path, BootOptions(json=True))
    k = session.file("vmlinuz.gz", gzip.compress(kernel))
    output, _status = session.run(f"#!ipxe\nchain {k} quiet\n")
    plan = json.loads(output[output.index("{"):])
    assert plan["kernel"]["name"] == "vmlinuz" and plan["kernel"]["length"] == len(kernel)
    assert plan["cmdline"] == "quiet" and plan["initrd"] is None


def test_multiboot_modules_get_uris(tmp_path: Path) -> None:
    session = Session(tmp_path, BootOptions(json=True))
    mb = bytearray(64)
    mb[8:20] = (0x1BADB002).to_bytes(4, "little") + (0).to_bytes(4, "little") + (-0x1BADB002 & 0xFFFFFFFF).to_bytes(
        4, "little")
    k = session.file("mboot", bytes(mb))
    m = session.file("mod", b"x")
    output, _ = session.run(f"#!ipxe\nkernel {k} -v\nmodule {m} arg\nboot\n")
    plan = json.loads(output[output.index("{"):])
    assert plan["kind"] == "multiboot" and plan["cmdline"] == f"{k} -v"
    assert plan["modules"][0]["cmdline"] == f"{m} arg"


# -- kexec -----------------------------------------------------------------------------------

def plan_for(kernel: bytes, initrds: list[tuple[str, bytes, str | None]], cmdline: str | None = "quiet") -> BootPlan:
    registry = ImageRegistry()
    image = Image("vmlinuz", SpoolFile(kernel), cmdline=cmdline)
    registry.register(image)
    registry.images.remove(image)  # running: unregistered, as in iPXE
    for name, data, args in initrds:
        other = Image(name, SpoolFile(data), cmdline=args)
        registry.register(other)
    return build_plan(registry, image, "pcbios")


class FakeKernel:
    def __init__(self, error: int | None = None) -> None:
        self.calls: list[tuple[int, int, int, bytes, int, bytes]] = []
        self.error = error
        self.rebooted = False

    def syscall(self, kernel_fd: int, initrd_fd: int, cmdline_len: int, cmdline: bytes, flags: int) -> None:
        import fcntl
        import os
        for fd in (kernel_fd, initrd_fd) if initrd_fd >= 0 else (kernel_fd,):
            # what the kernel's deny_write_access needs: read-only descriptors
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        initrd = os.pread(initrd_fd, 1 << 20, 0) if initrd_fd >= 0 else b""
        self.kernel = os.pread(kernel_fd, 1 << 20, 0)
        self.calls.append((kernel_fd, initrd_fd, cmdline_len, cmdline, flags, initrd))
        if self.error is not None:
            raise OSError(self.error, "fake")

    def reboot(self) -> None:
        self.rebooted = True


def backend(fake: FakeKernel, *, euid: int = 0, disabled: bool = False, execute: bool = False) -> KexecBackend:
    return KexecBackend(execute=execute, syscall=fake.syscall, reboot=fake.reboot, geteuid=lambda: euid,
                        disabled=lambda: disabled, log=lambda text: None)


def test_kexec_passes_kernel_initrd_and_cmdline(kernel: bytes) -> None:
    fake = FakeKernel()
    plan = plan_for(kernel, [("a", b"AAAA", None), ("m", b"mark", "/etc/marker")])
    backend(fake).boot(plan)
    kernel_fd, initrd_fd, length, cmdline, flags, initrd = fake.calls[0]
    assert fake.kernel == plan.kernel.data.read() and initrd_fd >= 0 and kernel_fd >= 0
    assert cmdline == b"quiet\0" and length == 6 and flags == 0
    assert initrd == b"".join(plan.initrd.segments()) if plan.initrd else False
    assert not fake.rebooted


def test_kexec_without_initrd_says_so_and_executes_on_request(kernel: bytes) -> None:
    fake = FakeKernel()
    backend(fake, execute=True).boot(plan_for(kernel, [], cmdline=None))
    assert fake.calls[0][1:5] == (-1, 1, b"\0", KEXEC_FILE_NO_INITRAMFS)
    assert fake.rebooted


@pytest.mark.parametrize(("setup", "code", "advice"), [
    ({"euid": 1000}, 0x417F8000, "kexec needs root"),
    ({"disabled": True}, 0x417F8100, "kexec is disabled"),
])
def test_kexec_refuses_before_the_syscall(kernel: bytes, setup: dict[str, object], code: int, advice: str) -> None:
    fake = FakeKernel()
    with pytest.raises(KexecRefused) as caught:
        backend(fake, **setup).boot(plan_for(kernel, []))  # type: ignore[arg-type]
    assert not fake.calls and advice in caught.value.advice and "--boot qemu" in caught.value.advice
    assert caught.value.code("linux") & 0x7FFFFF00 == code & 0x7FFFFF00


@pytest.mark.parametrize(("error", "text"), [
    (errno.ENOSYS, "no kexec_file_load"), (errno.EPERM, "not permitted"), (errno.EKEYREJECTED, "signature"),
    (errno.ENOEXEC, "cannot kexec"), (errno.ENOMEM, "memory"),
])
def test_kexec_syscall_failures_are_explained(kernel: bytes, error: int, text: str) -> None:
    with pytest.raises(KexecRefused) as caught:
        backend(FakeKernel(error)).boot(plan_for(kernel, []))
    assert text in caught.value.advice


def test_kexec_refuses_what_it_cannot_load(kernel: bytes) -> None:
    old = make_bzimage(version=0x0206)
    with pytest.raises(KexecRefused) as caught:
        backend(FakeKernel()).boot(plan_for(old, []))
    assert "older than 2.12" in caught.value.advice and caught.value.code("pcbios") == 0x2E818001
    nbp = plan_for(b"\xeb\xfe" * 10, [])
    with pytest.raises(KexecRefused) as caught:
        backend(FakeKernel()).boot(nbp)
    assert "kexec boots Linux kernels only; vmlinuz is PXE-NBP" in caught.value.advice


# -- QEMU's command line -------------------------------------------------------------------

def test_qemu_linux_command_line(kernel: bytes) -> None:
    plan = plan_for(kernel, [("a", b"AAAA", None)])
    argv = QemuBackend(extra=["-smp", "2"]).argv(plan, {"kernel": "/k", "initrd": "/i"}, None)
    assert argv == ["qemu-system-x86_64", "-nographic", "-no-reboot", "-m", "256", "-accel", "tcg", "-nic", "none",
                    "-kernel", "/k", "-append", "quiet", "-initrd", "/i", "-smp", "2"]
    assert "kvm" in QemuBackend(kvm=True).argv(plan, {"kernel": "/k"}, None)


def test_qemu_memory_grows_with_the_initrd(kernel: bytes) -> None:
    plan = plan_for(kernel, [("big", b"\0" * (200 << 20), None)])
    assert memory_mib(plan) == 704


def test_qemu_refuses_foreign_kernels() -> None:
    arm = bytearray(4096)
    arm[0x38:0x3C] = b"ARM\x64"
    with pytest.raises(QemuRefused) as caught:
        QemuBackend().check(plan_for(bytes(arm), []))
    assert caught.value.code("pcbios") == 0x2E008001 and "another architecture" in caught.value.advice


def test_cli_kexec_refuses_an_old_kernel_before_any_syscall(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "k.ipxe"
    script.write_text("#!ipxe\nkernel file:///usr/lib/ipxe/ipxe.lkrn\nboot\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    result = subprocess.run([sys.executable, "-m", "pyipxe", "run", "--platform", "pcbios", "--boot", "kexec",
                             str(script)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 1
    assert "Could not boot: Exec format error (https://ipxe.org/2e818001)" in result.stdout
    assert "boot protocol 2.07 is older than 2.12; try --boot qemu" in result.stderr
