"""The kernel an image boots, and the driver modules it needs to see a network card.

Why Debian's ``linux-image-amd64`` by default: it is signed, maintained and has every
driver — but as modules, so an image built on it must carry the modules of its network
cards (virtio-net and e1000 by default, :data:`pyipxe.build.DEFAULT_MODULES`) and load them before
pyipxe runs. ``apt-get download`` fetches the package (no installation, no root needed
beyond apt's lists), ``dpkg-deb --fsys-tarfile`` streams it, and only the kernel and the
module trees a network boot can need are kept in the cache.

Dependencies between modules are read from each ``.ko``'s ``.modinfo`` section (the
``depends=`` field depmod itself reads), so no depmod or kmod is needed, at build time or
in the image.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

META_PACKAGE = "linux-image-amd64"
#: module trees kept from the package: network drivers and what they depend on
KEPT_TREES = ("kernel/drivers/net/", "kernel/drivers/virtio/", "kernel/drivers/ptp/", "kernel/drivers/pps/",
              "kernel/net/core/", "kernel/lib/", "kernel/drivers/dca/", "kernel/drivers/mdio/")


class BuildError(Exception):
    """``pyipxe build`` cannot go on; the message says why and what would work."""


@dataclass
class Kernel:
    vmlinuz: Path
    modules_dir: Path | None  # lib/modules/<version>, or None when the kernel comes without modules
    version: str = ""
    package: str = ""


@dataclass
class ModuleSet:
    """Modules to load, dependencies first, as paths relative to ``modules_dir``."""

    ordered: list[str] = field(default_factory=list)
    builtin: list[str] = field(default_factory=list)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyipxe"


def _apt_package() -> str:
    """The versioned package ``linux-image-amd64`` depends on today (apt's lists)."""
    try:
        out = subprocess.run(["apt-cache", "depends", META_PACKAGE], capture_output=True, text=True,
                             timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(f"apt-cache failed ({error}); give a kernel with --kernel") from None
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*)", out)
    if not match:
        raise BuildError(f"apt knows no {META_PACKAGE} (run apt-get update, or give --kernel)")
    return match.group(1)


def _keep(name: str) -> str | None:
    """Where a member of the package goes in the cache, or None to skip it."""
    name = name.removeprefix("./")
    if re.fullmatch(r"boot/vmlinuz-[^/]+", name):
        return name
    match = re.fullmatch(r"(?:usr/)?lib/modules/([^/]+)/(.+)", name)
    if match and (match.group(2).startswith(KEPT_TREES) or match.group(2) == "modules.builtin"):
        return f"lib/modules/{match.group(1)}/{match.group(2)}"
    return None


def unpack_kernel_package(deb: Path, target: Path) -> None:
    """Stream ``deb``'s data through dpkg-deb and keep the kernel and the network modules."""
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                destination = _keep(member.name)
                if destination is None or not member.isfile():
                    continue
                source = archive.extractfile(member)
                assert source is not None
                path = target / destination
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as out:
                    shutil.copyfileobj(source, out)
    finally:
        process.stdout.close()
        if process.wait(timeout=120) != 0:
            raise BuildError(f"dpkg-deb could not read {deb}")


def debian_kernel(cache: Path) -> Kernel:
    """Debian's current amd64 kernel and its network modules, fetched into ``cache`` once."""
    package = _apt_package()
    home = cache / "kernel" / package
    if not (home / ".complete").exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
            os.chmod(tmp, 0o755)  # apt's sandbox user must be able to write there
            result = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True,
                                    text=True, timeout=600, check=False)
            debs = sorted(Path(tmp).glob("*.deb"))
            if result.returncode or not debs:
                raise BuildError(f"apt-get download {package} failed: {result.stderr.strip()[-300:]}")
            staging = Path(tmp) / "tree"
            unpack_kernel_package(debs[0], staging)
            (staging / ".complete").write_text(package + "\n")
            shutil.rmtree(home, ignore_errors=True)
            staging.rename(home)
    kernels = sorted((home / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BuildError(f"{package} holds no boot/vmlinuz-*")
    version = kernels[0].name.removeprefix("vmlinuz-")
    return Kernel(kernels[0], home / "lib" / "modules" / version, version, package)


def modinfo(data: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` section of an ELF64 little-endian kernel module: key → values."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError("not a 64-bit little-endian ELF module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, base)
        return name, offset, size

    _, strings_offset, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for index in range(shnum):
        name, offset, size = section(index)
        end = data.index(b"\0", strings_offset + name)
        if data[strings_offset + name:end] == b".modinfo":
            for item in data[offset:offset + size].split(b"\0"):
                key, equals, value = item.decode("utf-8", "replace").partition("=")
                if equals:
                    info.setdefault(key, []).append(value)
    return info


def resolve_modules(modules_dir: Path, names: list[str]) -> ModuleSet:
    """``names`` and everything they depend on, each after its dependencies; built-ins skipped."""
    builtin_file = modules_dir / "modules.builtin"
    builtin = {Path(line).stem.replace("-", "_") for line in builtin_file.read_text().split()} \
        if builtin_file.exists() else set()
    index = {path.stem.replace("-", "_"): path for path in sorted(modules_dir.rglob("*.ko"))}
    result = ModuleSet()
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in done or name in chain:
            return
        if name in builtin:
            done.add(name)
            result.builtin.append(name)
            return
        if name not in index:
            raise BuildError(f"no kernel module {name!r} under {modules_dir}")
        for dependency in modinfo(index[name].read_bytes()).get("depends", [""])[0].split(","):
            if dependency:
                visit(dependency, (*chain, name))
        done.add(name)
        result.ordered.append(str(index[name].relative_to(modules_dir)))

    for name in names:
        visit(name, ())
    return result
