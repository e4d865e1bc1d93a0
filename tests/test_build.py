"""``pyipxe build`` without a VM: the cpio writer, the module closure, the image's own Python,
the init program's logic, the media layouts, reproducibility and the CLI's errors.

Debian's kernel package is fetched once into .cache/build (apt-get download), as the CLI
does by default; QEMU runs are in tests/test_build_qemu.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab import PROJECT
from pyipxe.build import closure, cpio, init, initramfs, media
from pyipxe.build.kernel import BuildError, _keep, debian_kernel, modinfo, resolve_modules

CACHE = PROJECT / ".cache" / "build"
ENV = {"PYTHONPATH": str(PROJECT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def pyipxe(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyipxe", *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, check=False)


# -- cpio ---------------------------------------------------------------------------------------

SAMPLE = [cpio.file("init", b"#!/bin/sh\n", 0o755), cpio.directory("etc"), cpio.file("etc/a", b"x" * 5),
          cpio.symlink("bin", "usr/bin"), cpio.chardev("dev/console", 5, 1), cpio.directory("dev")]


def test_cpio_round_trip_sorted_with_fixed_times() -> None:
    archive = cpio.write(SAMPLE, mtime=1234)
    entries = cpio.read(archive)
    assert [entry.path for entry in entries] == ["bin", "dev", "dev/console", "etc", "etc/a", "init"]
    assert {entry.path: entry for entry in entries}["dev/console"].rdev == (5, 1)
    assert {entry.path: entry for entry in entries}["bin"].data == b"usr/bin"
    assert archive.count(b"%08X" % 1234) == len(SAMPLE)  # every member's mtime, none other
    assert archive == cpio.write(list(reversed(SAMPLE)), mtime=1234)  # order of input does not matter
    assert len(archive) % 4 == 0 and archive.rstrip(b"\0").endswith(b"TRAILER!!!")


def test_cpio_is_what_gnu_cpio_reads(tmp_path: Path) -> None:
    archive = cpio.write([entry for entry in SAMPLE if entry.kind != "chardev"])
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=archive, capture_output=True, check=True).stdout
    assert listing.decode().split() == ["bin", "dev", "etc", "etc/a", "init"]
    subprocess.run(["cpio", "-i", "-d", "--quiet"], input=archive, cwd=tmp_path, check=True)
    assert (tmp_path / "etc" / "a").read_bytes() == b"xxxxx"
    assert stat.S_IMODE((tmp_path / "init").stat().st_mode) == 0o755
    assert os.readlink(tmp_path / "bin") == "usr/bin"


def test_cpio_refuses_conflicting_and_bad_names() -> None:
    with pytest.raises(cpio.CpioError):
        cpio.write([cpio.file("a", b"1"), cpio.file("a", b"2")])
    with pytest.raises(cpio.CpioError):
        cpio.write([cpio.file("/", b"1")])
    assert cpio.read(cpio.write([cpio.file("a", b"1"), cpio.file("/a", b"1")]))[0].path == "a"


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12)


@given(st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join), st.binary(max_size=64), max_size=8))
def test_cpio_round_trips_any_tree(files: dict[str, bytes]) -> None:
    files = {path: data for path, data in files.items() if path != cpio.TRAILER}
    entries = cpio.read(cpio.write([cpio.file(path, data) for path, data in files.items()]))
    assert {entry.path: entry.data for entry in entries} == files


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_cpio_reader_fails_cleanly_on_garbage(data: bytes) -> None:
    with contextlib.suppress(cpio.CpioError):
        cpio.read(data)


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=300))
def test_cpio_reader_fails_cleanly_on_damaged_archives(noise: bytes, where: int) -> None:
    archive = bytearray(cpio.write(SAMPLE))
    where %= len(archive)
    archive[where:where + len(noise)] = noise
    with contextlib.suppress(cpio.CpioError):
        cpio.read(bytes(archive))


# -- the module closure ----------------------------------------------------------------------

def test_imports_of_follows_relative_lazy_and_from_imports_not_typing_only() -> None:
    source = """
from __future__ import annotations
import os.path
from typing import TYPE_CHECKING
from . import sibling
from ..up import thing
if TYPE_CHECKING:
    import tkinter
def later():
    import json
"""
    found = closure.imports_of(source, "pkg.sub.mod", is_package=False)
    assert {"os.path", "pkg.sub.sibling", "pkg.up", "pkg.up.thing", "json"} <= found
    assert "tkinter" not in found
    assert "pkg.sub.mod.x" not in closure.imports_of("from .x import y", "pkg.sub.mod", is_package=False)
    assert "pkg.x" in closure.imports_of("from .x import y", "pkg", is_package=True)


@pytest.fixture(scope="module")
def finder() -> closure.ModuleFinder:
    source = PROJECT / "src"
    every = closure.package_modules(source / "pyipxe", "pyipxe")
    builder = [name for name in every if name.startswith("pyipxe.build.")]
    found = closure.ModuleFinder(closure.search_path([source]), exclude=builder)
    found.run([name for name in every if name not in builder], optional=closure.STARTUP)
    return found


def test_closure_holds_pyipxe_and_what_it_imports(finder: closure.ModuleFinder) -> None:
    for name in ("pyipxe.cli", "pyipxe.runner", "pyipxe.net.netconfig", "pyipxe.boot.kexec", "h11", "dns.resolver",
                 "pyroute2", "ssl", "_ssl", "asyncio", "encodings.utf_8", "_blake2"):
        assert name in finder.modules, name
    assert finder.modules["pyipxe.net"].package  # a namespace package, which modulefinder cannot follow
    assert "pyipxe.build.initramfs" not in finder.modules  # the image does not build images


def test_closure_leaves_out_unrelated_stdlib(finder: closure.ModuleFinder) -> None:
    for name in ("tkinter", "idlelib", "lib2to3", "pydoc", "ensurepip", "turtle", "doctest", "pdb", "venv",
                 "distutils", "test", "curses", "pytest", "hypothesis", "mypy"):
        assert not any(module == name or module.startswith(name + ".") for module in finder.modules), name


def test_unittest_is_in_only_because_pyroute2_imports_it() -> None:
    source = PROJECT / "src"
    every = closure.package_modules(source / "pyipxe", "pyipxe")
    without = closure.ModuleFinder(closure.search_path([source]), exclude=["pyipxe.build", "pyroute2"])
    without.run([name for name in every if not name.startswith(("pyipxe.build", "pyipxe.net.netconfig"))])
    assert "unittest" not in without.modules and "sqlite3" not in without.modules


@pytest.fixture(scope="module")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's runtime unpacked into a directory: its own interpreter, libraries and modules."""
    root = tmp_path_factory.mktemp("image")
    entries, _ = initramfs.runtime_entries()
    for entry in initramfs.with_parents(entries):
        path = root / entry.path
        if entry.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.data)
            path.chmod(stat.S_IMODE(entry.mode))
    return root


def test_image_python_has_no_sources_and_no_strays(image_python: Path) -> None:
    lib = image_python / closure.python_lib()
    assert not list(lib.rglob("*.py")), "the image ships compiled modules only"
    assert (lib / "pyipxe" / "cli.pyc").exists() and not (lib / "tkinter").exists()
    assert not (lib / "pyipxe" / "build" / "initramfs.pyc").exists()


def test_image_python_runs_pyipxe_entry_points(image_python: Path, tmp_path: Path) -> None:
    """Only the image's modules (``-S``, no site-packages, the image's stdlib): every pyipxe module
    imports, pyroute2's IPRoute too, and ``pyipxe run`` runs a script end to end."""
    python = str(image_python / "usr/bin/python3")
    every = [name for name in closure.package_modules(PROJECT / "src" / "pyipxe", "pyipxe")
             if not name.startswith("pyipxe.build.") and name != "pyipxe.__main__"]
    code = ("import importlib, sys\n"
            f"for name in {every!r}:\n    importlib.import_module(name)\n"
            "from pyroute2 import IPRoute\nimport hashlib; hashlib.blake2b(b'')\n"
            "assert all(m.startswith(sys.prefix) for m in [importlib.import_module('json').__file__])\n"
            "print('imported', len(sys.modules))")
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    script = tmp_path / "s.ipxe"
    script.write_text("#!ipxe\nset x 42\necho answer ${x} on ${platform}\nkernel data:,hello\n")
    result = subprocess.run([python, "-S", "-m", "pyipxe", "run", str(script), "--platform", "pcbios"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert "answer 42 on pcbios" in result.stdout, result.stderr


# -- the kernel and its modules ---------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel() -> initramfs.Kernel:
    return debian_kernel(CACHE)


def test_debian_kernel_and_its_network_modules(kernel: initramfs.Kernel) -> None:
    assert kernel.vmlinuz.read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage
    assert kernel.modules_dir is not None
    modules = resolve_modules(kernel.modules_dir, ["virtio_net", "e1000", "e1000e", "virtio_pci"])
    stems = [Path(path).stem for path in modules.ordered]
    assert stems.index("failover") < stems.index("net_failover") < stems.index("virtio_net")
    assert "e1000" in stems and "e1000e" in stems
    info = modinfo((kernel.modules_dir / modules.ordered[stems.index("virtio_net")]).read_bytes())
    assert "net_failover" in info["depends"][0].split(",")
    with pytest.raises(BuildError):
        resolve_modules(kernel.modules_dir, ["no_such_driver"])


def test_only_boot_and_network_trees_are_kept_from_the_package() -> None:
    assert _keep("./boot/vmlinuz-6.1.0-56-amd64") == "boot/vmlinuz-6.1.0-56-amd64"
    assert _keep("./lib/modules/6.1/kernel/drivers/net/virtio_net.ko") == "lib/modules/6.1/kernel/drivers/net/virtio_net.ko"
    assert _keep("./lib/modules/6.1/kernel/sound/core/snd.ko") is None
    assert _keep("./boot/System.map-6.1") is None
    with pytest.raises(BuildError):
        modinfo(b"not an elf")


# -- /init ----------------------------------------------------------------------------------

def test_init_config_runs_the_embedded_script_owning_the_network_with_kexec() -> None:
    embedded = initramfs.Embedded(script=b"#!ipxe\n", settings=["user-class=pyipxe"], trust=[("ca.pem", b"x")])
    config = initramfs.init_config(embedded, ["/lib/modules/v/e1000.ko"], {"run", "shell", "boot"},
                                   ["/etc/pyipxe/trust/00-ca.pem"])
    run = config["run"]
    assert isinstance(run, list)
    assert run[:2] == ["run", initramfs.EMBED_PATH]
    assert run[2:7] == ["--network", "own", "--boot", "kexec", "--kexec-exec"]
    assert "--no-system-trust" in run and run[-2:] == ["--set", "user-class=pyipxe"]
    assert config["shell"] == ["shell", *run[2:]]
    none = initramfs.init_config(initramfs.Embedded(), [], {"run", "boot"}, [])
    assert none["run"] == ["boot", "--network", "own", "--boot", "kexec", "--kexec-exec"]
    assert none["shell"] == ["run", initramfs.SHELL_PATH, "--network", "own", "--boot", "kexec", "--kexec-exec"]
    oldest = initramfs.init_config(initramfs.Embedded(), [], {"run"}, [])
    assert oldest["run"][:2] == ["run", initramfs.AUTOBOOT_PATH]


def test_init_reads_its_config_and_the_kernel_command_line(tmp_path: Path) -> None:
    path = tmp_path / "init.json"
    path.write_text(json.dumps({"run": ["run", "x"], "shell": ["shell"], "wait": 3, "unknown": 1}))
    config = init.InitConfig.load(str(path))
    assert config.run == ["run", "x"] and config.wait == 3
    assert init.parse_cmdline("quiet pyipxe.wait=0.5", config) == init.BootChoice(0.5, False)
    assert init.parse_cmdline("pyipxe.shell pyipxe.wait=x", config) == init.BootChoice(3, True)
    assert init.parse_cmdline("pyipxe.shell=0", config).shell_first is False


@pytest.fixture
def console_pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_ctrl_b_is_seen_on_any_console(console_pipe: tuple[int, int]) -> None:
    read_end, write_end = console_pipe
    os.write(write_end, b"x\x02")
    assert init.wait_for_key([read_end], 1.0)
    started = time.monotonic()
    assert not init.wait_for_key([read_end], 0.2)
    assert time.monotonic() - started >= 0.2


def test_session_runs_the_script_then_the_shell_forever_never_returning_on_failure() -> None:
    ran: list[list[str]] = []
    config = init.InitConfig(pyipxe=["py"], run=["run", "embed"], shell=["shell"], banner="BANNER")
    read_end, write_end = os.pipe()
    try:
        init.session(config, init.BootChoice(0, False), [write_end], lambda argv: ran.append(list(argv)) or 1,
                     forever=False)
        os.close(write_end)
        shown = os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
    assert ran == [["py", "run", "embed"], ["py", "shell"]]
    assert "BANNER" in shown and "starting the pyipxe shell" in shown and "exit status 1" in shown


def test_session_goes_straight_to_the_shell_on_ctrl_b() -> None:
    ran: list[list[str]] = []
    config = init.InitConfig(pyipxe=["py"], run=["run"], shell=["shell"])
    keys_read, keys_write = os.pipe()
    shown_read, shown_write = os.pipe()
    os.write(keys_write, b"\x02")
    try:
        init.session(config, init.BootChoice(5, False), [keys_read], lambda argv: ran.append(list(argv)) or 0,
                     forever=False)
    finally:
        for fd in (keys_read, keys_write, shown_read, shown_write):
            os.close(fd)
    assert ran == [["py", "shell"]]


def test_relay_copies_a_child_on_a_pty_to_every_console() -> None:
    first_read, first_write = os.pipe()
    second_read, second_write = os.pipe()
    try:
        status = init.relay(["/bin/sh", "-c", "echo relayed-$((6*7)); exit 3"], [first_write, second_write],
                            {"PATH": "/bin:/usr/bin"})
        os.close(first_write)
        os.close(second_write)
        assert status == 3
        assert b"relayed-42" in os.read(first_read, 4096)
        assert b"relayed-42" in os.read(second_read, 4096)
    finally:
        os.close(first_read)
        os.close(second_read)


def test_relay_reports_a_program_that_cannot_start() -> None:
    read_end, write_end = os.pipe()
    try:
        assert init.relay(["/no/such/program"], [write_end], {}) == 127
        os.close(write_end)
        assert b"cannot run /no/such/program" in os.read(read_end, 4096)
    finally:
        os.close(read_end)


def test_init_imports_only_the_standard_library() -> None:
    for name in initramfs.init_imports():
        assert not name.startswith("pyipxe"), name


# -- media and reproducibility ------------------------------------------------------------------

def test_loader_configs_and_pxe_script_boot_the_same_files() -> None:
    assert "KERNEL /boot/vmlinuz" in media.isolinux_cfg("console=ttyS0")
    assert "APPEND console=ttyS0" in media.isolinux_cfg("console=ttyS0")
    grub = media.grub_cfg("console=ttyS0")
    assert f"--label --set=root {media.VOLUME_LABEL}" in grub and "linux /boot/vmlinuz console=ttyS0" in grub
    assert media.pxe_script("q") == "#!ipxe\nkernel vmlinuz q\ninitrd initrd.img\nboot\n"


def test_iso_has_bios_and_uefi_boot_entries_and_is_reproducible(kernel: initramfs.Kernel, tmp_path: Path) -> None:
    initrd = initramfs.compress(cpio.write([cpio.file("init", b"x")]), 0)
    digests = []
    for name in ("a.iso", "b.iso"):
        media.build_iso(kernel.vmlinuz.read_bytes(), initrd, tmp_path / name, mtime=1700000000)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    report = subprocess.run(["xorriso", "-indev", str(tmp_path / "a.iso"), "-report_el_torito", "plain"],
                            capture_output=True, text=True, check=True).stdout
    assert "El Torito boot img :   1  BIOS" in report and "El Torito boot img :   2  UEFI" in report
    assert (tmp_path / "a.iso").read_bytes()[510:512] == b"\x55\xaa"  # isohybrid MBR: a USB stick boots too


def test_build_is_reproducible_and_small(kernel: initramfs.Kernel, tmp_path: Path) -> None:
    """The whole CLI path twice, same inputs: the same bytes. Prints the size for the report."""
    script = tmp_path / "boot.ipxe"
    script.write_text("#!ipxe\necho hi\n")
    digests, sizes = [], []
    for name in ("one", "two"):
        target = tmp_path / name
        result = pyipxe("build", "--fast", "--cache", str(CACHE), "--embed", str(script), "--set", "a=b",
                        "--format", "pxe", "-o", str(target))
        assert result.returncode == 0, result.stderr
        digests.append({path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(target.iterdir())})
        sizes.append((target / "initrd.img").stat().st_size)
    assert digests[0] == digests[1]
    members = {entry.path: entry for entry in cpio.read(lzma.decompress((tmp_path / "one" / "initrd.img").read_bytes()))}
    assert members["etc/pyipxe/embed.ipxe"].data == b"#!ipxe\necho hi\n"
    assert members["etc/pyipxe/settings"].data == b"a=b\n"
    assert members["init"].mode == stat.S_IFREG | 0o755
    assert any(path.endswith("/virtio_net.ko") for path in members)
    config = json.loads(members["etc/pyipxe/init.json"].data)
    assert config["run"][:2] == ["run", "/etc/pyipxe/embed.ipxe"]
    assert sizes[0] < 40 * 1024 * 1024
    print(f"initramfs {sizes[0]} bytes, {len(members)} members")


def test_build_refuses_bad_input_cleanly(tmp_path: Path) -> None:
    not_script = tmp_path / "plain.txt"
    not_script.write_text("echo hi\n")
    cases = [
        (["--embed", str(not_script)], "not an iPXE script"),
        (["--embed", str(tmp_path / "missing.ipxe")], "--embed"),
        (["--trust", str(not_script)], "neither a PEM nor a DER certificate"),
        (["--set", "novalue"], "--set needs NAME=VALUE"),
        (["--kernel", str(tmp_path / "nothing")], "no such file"),
    ]
    for args, message in cases:
        result = pyipxe("build", *args, "-o", str(tmp_path / "out"), timeout=60)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_custom_kernel_without_modules(tmp_path: Path, kernel: initramfs.Kernel) -> None:
    shutil.copyfile(kernel.vmlinuz, tmp_path / "vmlinuz")
    result = pyipxe("build", "--fast", "--kernel", str(tmp_path / "vmlinuz"), "--format", "initramfs",
                    "-o", str(tmp_path / "initrd.img"))
    assert result.returncode == 0, result.stderr
    members = cpio.read(lzma.decompress((tmp_path / "initrd.img").read_bytes()))
    assert not any(entry.path.startswith("lib/modules") for entry in members)
    assert json.loads(next(e for e in members if e.path == "etc/pyipxe/init.json").data)["modules"] == []
