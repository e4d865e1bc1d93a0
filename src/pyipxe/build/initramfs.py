"""The initramfs: a Python runtime, pyipxe, the embedded files and ``/init``, as one xz'd cpio.

Why everything is collected in memory as :class:`~pyipxe.build.cpio.Entry` objects: the
archive is written once, sorted, with fixed owners and times (reproducible), and the
whole image stays small enough (tens of MB before compression) that streaming would buy
nothing. xz with CRC32 is what the kernel's decompressor accepts and gives the smallest
image; the preset is fixed, so the same tree compresses to the same bytes.

Image layout:

- ``/init`` — :mod:`pyipxe.build.init`, copied; ``/etc/pyipxe/init.json`` — what it runs;
- ``/usr/bin/python3`` and ``/usr/lib/python3.X`` — the interpreter and the module closure
  (:mod:`pyipxe.build.closure`), libraries at the paths ``ldd`` gave;
- ``/etc/pyipxe/embed.ipxe``, ``/etc/pyipxe/trust/*.pem``, ``/etc/pyipxe/settings`` — what
  ``--embed``, ``--trust`` and ``--set`` gave (the settings are passed to ``pyipxe run --set``);
- ``/lib/modules/<version>/…`` — the network drivers init loads.
"""

from __future__ import annotations

import json
import lzma
import os
import ssl
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyipxe
from pyipxe.build import closure, cpio
from pyipxe.build.kernel import BuildError, Kernel, ModuleSet, resolve_modules

EMBED_PATH = "/etc/pyipxe/embed.ipxe"
AUTOBOOT_PATH = "/etc/pyipxe/autoboot.ipxe"
SHELL_PATH = "/etc/pyipxe/shell.ipxe"
TRUST_DIR = "/etc/pyipxe/trust"
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
#: pyipxe inside the image: owns the network, boots with kexec at once
RUN_OPTIONS = ("--network", "own", "--boot", "kexec", "--kexec-exec")
#: xz presets: the default (smallest) and --fast (a third of the time, about 10% larger)
XZ_PRESET, XZ_PRESET_FAST = 6, 1


@dataclass
class Embedded:
    """What ``--embed``, ``--trust`` and ``--set`` put in the image."""

    script: bytes | None = None
    trust: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, PEM)
    settings: list[str] = field(default_factory=list)
    wait: float = 2.0


def load_script(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BuildError(f"--embed {path}: {error.strerror}") from None
    if not data.lstrip(b"\xef\xbb\xbf").startswith(b"#!ipxe"):
        raise BuildError(f"--embed {path}: not an iPXE script (the first line must be #!ipxe)")
    return data


def load_certificate(path: Path) -> bytes:
    """A PEM certificate file as given, or a DER one converted to PEM."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BuildError(f"--trust {path}: {error.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        return data
    if data[:1] == b"\x30":
        return ssl.DER_cert_to_PEM_cert(data).encode()
    raise BuildError(f"--trust {path}: neither a PEM nor a DER certificate")


def check_setting(assignment: str) -> str:
    name, equals, _ = assignment.partition("=")
    if not equals or not name or any(char.isspace() for char in name):
        raise BuildError(f"--set needs NAME=VALUE, not {assignment!r}")
    return assignment


def subcommands() -> set[str]:
    """pyipxe's CLI subcommands in this checkout (``shell`` and ``boot`` arrive in later issues)."""
    import argparse

    from pyipxe.cli import _build_parser

    for action in _build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def init_config(embedded: Embedded, modules: Sequence[str], available: set[str], trust_files: Sequence[str],
                ) -> dict[str, object]:
    """The commands ``/init`` runs (see :class:`pyipxe.build.init.InitConfig`)."""
    common: list[str] = []
    for path in trust_files:
        common += ["--trust", path]
    if embedded.trust:  # only what --trust gave; else the host's bundle, as a default store
        common.append("--no-system-trust")
    for assignment in embedded.settings:
        common += ["--set", assignment]
    if embedded.script is not None:
        run = ["run", EMBED_PATH, *RUN_OPTIONS, *common]
    elif "boot" in available:
        run = ["boot", *RUN_OPTIONS, *common]
    else:
        run = ["run", AUTOBOOT_PATH, *RUN_OPTIONS, *common]
    shell = ["shell", *RUN_OPTIONS, *common] if "shell" in available else ["run", SHELL_PATH, *RUN_OPTIONS, *common]
    return {"pyipxe": ["/usr/bin/python3", "-S", "-m", "pyipxe"], "run": run, "shell": shell,
            "modules": list(modules), "wait": embedded.wait, "banner": f"pyipxe {pyipxe.__version__} -- "
            "iPXE as a Linux userspace network bootloader", "env": {"PYTHONUNBUFFERED": "1"}}


def _autoboot_script() -> bytes:
    from pyipxe.script.registry import load_commands

    if "autoboot" in load_commands():
        return b"#!ipxe\nautoboot\n"
    return b"#!ipxe\ndhcp\nchain ${filename}\n"


def runtime_entries(extra_entry_modules: Sequence[str] = ()) -> tuple[list[cpio.Entry], list[str]]:
    """The interpreter, its libraries and pyipxe's module closure; also the module names."""
    source_root = Path(pyipxe.__file__).resolve().parent.parent
    every = closure.package_modules(source_root / "pyipxe", "pyipxe")
    # the image runs pyipxe, it does not build images: of build/, only the CLI's argument table
    builder = [name for name in every if name.startswith("pyipxe.build.")]
    finder = closure.ModuleFinder(closure.search_path([source_root]), exclude=builder)
    names = [name for name in every if name not in builder]
    modules = finder.run([*names, *closure.STARTUP, *extra_entry_modules], optional=init_imports())
    entries: list[cpio.Entry] = []
    interpreter = Path(sys.executable).resolve()
    binaries = [interpreter]
    jobs: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for module in modules:
            if module.path is None or module.root is None:
                continue
            target = closure.image_path(module)
            if module.is_source:
                compiled = Path(tmp) / target
                compiled.parent.mkdir(parents=True, exist_ok=True)
                jobs.append((str(module.path), str(compiled), "/" + target.removesuffix("c")))
            elif module.path.suffix == ".so":
                entries.append(cpio.file(target, closure.stripped(module.path), 0o755))
                binaries.append(module.path)
        closure.compile_modules(jobs)
        for _, compiled_path, shown in jobs:
            entries.append(cpio.file(shown.lstrip("/") + "c", Path(compiled_path).read_bytes()))
    entries.append(cpio.file("usr/bin/python3", closure.stripped(interpreter), 0o755))
    for library in closure.shared_libraries(binaries):
        entries.append(cpio.file(library.lstrip("/"), closure.stripped(Path(library).resolve()), 0o755))
    return entries, [module.name for module in modules]


def init_imports() -> list[str]:
    """The standard modules /init itself imports."""
    source = Path(__file__).with_name("init.py").read_text(encoding="utf-8")
    return sorted(name for name in closure.imports_of(source, "__main__", False) if name != "__future__")


def system_bundle() -> tuple[str, bytes] | None:
    for candidate in SYSTEM_BUNDLES:
        if os.path.exists(candidate):
            return "system.pem", Path(candidate).read_bytes()
    return None


def with_parents(entries: list[cpio.Entry]) -> list[cpio.Entry]:
    """``entries`` plus a directory entry for every parent they need."""
    present = {entry.path.strip("/") for entry in entries}
    missing: set[str] = set()
    for entry in entries:
        parts = entry.path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in present:
                missing.add(parent)
    return entries + [cpio.directory(path) for path in sorted(missing)]


def build_initramfs(embedded: Embedded, kernel: Kernel | None, module_names: Sequence[str], *,
                    mtime: int = 0, fast: bool = False) -> bytes:
    """The compressed initramfs bytes."""
    entries = [cpio.directory(name) for name in ("dev", "proc", "sys", "run", "tmp", "root", "etc/pyipxe")]
    # the nodes needed before /init mounts devtmpfs over /dev: Python reads /dev/urandom at start-up
    # when getrandom() would block (early boot), and the kernel opens /dev/console for init
    entries += [cpio.chardev("dev/console", 5, 1), cpio.chardev("dev/null", 1, 3, 0o666),
                cpio.chardev("dev/urandom", 1, 9, 0o666), cpio.chardev("dev/random", 1, 8, 0o666)]
    runtime, _ = runtime_entries()
    entries += runtime
    init_source = Path(__file__).with_name("init.py").read_bytes()
    entries.append(cpio.file("init", init_source, 0o755))
    module_paths: list[str] = []
    if kernel is not None and kernel.modules_dir is not None and module_names:
        modules: ModuleSet = resolve_modules(kernel.modules_dir, list(module_names))
        for relative in modules.ordered:
            target = f"lib/modules/{kernel.modules_dir.name}/{relative}"
            entries.append(cpio.file(target, (kernel.modules_dir / relative).read_bytes()))
            module_paths.append("/" + target)
    trust = list(embedded.trust)
    if not trust:
        bundle = system_bundle()
        trust = [bundle] if bundle else []
    trust_files = []
    for index, (name, pem) in enumerate(trust):
        path = f"{TRUST_DIR}/{index:02d}-{Path(name).name}"
        entries.append(cpio.file(path.lstrip("/"), pem))
        trust_files.append(path)
    if embedded.script is not None:
        entries.append(cpio.file(EMBED_PATH.lstrip("/"), embedded.script))
    entries.append(cpio.file(AUTOBOOT_PATH.lstrip("/"), _autoboot_script()))
    entries.append(cpio.file(SHELL_PATH.lstrip("/"), b"#!ipxe\nshell\n"))
    entries.append(cpio.file("etc/pyipxe/settings", "".join(f"{line}\n" for line in embedded.settings).encode()))
    config = init_config(embedded, module_paths, subcommands(), trust_files)
    entries.append(cpio.file("etc/pyipxe/init.json", (json.dumps(config, indent=1, sort_keys=True) + "\n").encode()))
    archive = cpio.write(with_parents(entries), mtime=mtime)
    return compress(archive, XZ_PRESET_FAST if fast else XZ_PRESET)


def compress(archive: bytes, preset: int = XZ_PRESET) -> bytes:
    """xz as the kernel unpacks it: CRC32 check (the only one it verifies), x86 branch filter."""
    filters = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": preset}]
    return lzma.compress(archive, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)
