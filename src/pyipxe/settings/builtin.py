"""Settings the firmware computes: builtin, SMBIOS, CPU and memory blocks.

Why: scripts branch on ``${platform}``, ``${buildarch}``, ``${manufacturer}`` or
``${uuid}`` to pick what to boot, so pyipxe reports what *this* machine is, read from
Linux (``/sys/firmware/efi``, ``/sys/class/dmi/id``, ``/proc``) instead of firmware
tables. Every value can be preset (``pyipxe run --set``) so a script can be run as a
given machine would see it.

Rules: each block answers only for its own scope (iPXE's applicability rule), values are
computed on every fetch (the clock moves, errno changes), and presets win over computed
values.
"""

from __future__ import annotations

import os
import platform as _host_platform
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from pyipxe import __version__
from pyipxe.errors import IpxeError
from pyipxe.settings import predefined as p
from pyipxe.settings import smbios
from pyipxe.settings.store import ERR_NOT_NUMERIC, Setting, SettingsBlock, SettingsTree
from pyipxe.settings.types import HEX, STRING, UUID

Provider = Callable[[], bytes | None]

# iPXE 2.0 compatible; the suffix says which implementation this is.
VERSION = f"2.0.0+ (pyipxe {__version__})"

_ARCH_NAMES = {
    "x86_64": "x86_64", "amd64": "x86_64", "i386": "i386", "i686": "i386", "aarch64": "arm64",
    "arm64": "arm64", "armv7l": "arm32", "riscv64": "riscv64", "loongarch64": "loong64",
}


class ComputedBlock(SettingsBlock):
    """A block of computed, read-only settings, all in one scope."""

    def __init__(self, name: str, scope: str, providers: Mapping[Setting, Provider]) -> None:
        super().__init__(name)
        self.default_scope = scope
        self._providers = dict(providers)
        self._presets: dict[str, bytes] = {}

    def applies(self, setting: Setting) -> bool:
        return setting.scope == self.default_scope and any(known.same_as(setting) for known in self._providers)

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        for known, provide in self._providers.items():
            if known.same_as(setting):
                data = self._presets.get(known.name)
                if data is None:
                    data = provide()
                return (known, data) if data else None
        return None

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        raise IpxeError(ERR_NOT_NUMERIC)  # iPXE: block has no store operation → ENOTSUP

    def preset(self, setting: Setting, data: bytes | None) -> bool:
        """Override a computed value (command line presets); False if not ours."""
        for known in self._providers:
            if known.same_as(setting):
                if data:
                    self._presets[known.name] = data
                else:
                    self._presets.pop(known.name, None)
                return True
        return False

    def local_settings(self) -> Iterator[Setting]:
        yield from self._providers


class BuiltinBlock(ComputedBlock):
    """``builtin``: errno, platform, version, the clock … ``unixtime`` is writable."""

    def __init__(self, errno: Callable[[], int], cwuri: Callable[[], str | None]) -> None:
        self._clock_offset = 0

        def text(value: str | None) -> bytes | None:
            return value.encode() if value else None

        super().__init__("builtin", p.SCOPE_BUILTIN, {
            p.ERRNO: lambda: errno().to_bytes(4, "big"),
            p.BUILDARCH: lambda: text(host_buildarch()),
            p.PLATFORM: lambda: text(host_platform()),
            p.VERSION: lambda: text(VERSION),
            p.UNIXTIME: lambda: ((int(time.time()) + self._clock_offset) & 0xFFFFFFFF).to_bytes(4, "big"),
            p.CWURI: lambda: text(cwuri()),
            p.CWDURI: lambda: text(_directory_of(cwuri())),
        })

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        if not p.UNIXTIME.same_as(setting):
            super().store_local(setting, data)
        elif data is None:
            self._clock_offset = 0
        else:
            self._clock_offset = int.from_bytes(data[-4:], "big") - int(time.time())


def _directory_of(uri: str | None) -> str | None:
    if not uri or "/" not in uri:
        return None
    return uri[: uri.rindex("/") + 1]


def host_platform() -> str:
    """``efi`` when Linux was booted by UEFI firmware, else ``pcbios``."""
    return "efi" if os.path.isdir("/sys/firmware/efi") else "pcbios"


def host_buildarch() -> str:
    machine = _host_platform.machine()
    return _ARCH_NAMES.get(machine, machine or "x86_64")


def _read_text(path: Path) -> str | None:
    try:
        value = path.read_text(errors="replace").strip()
    except OSError:
        return None
    return value or None


class SmbiosBlock(ComputedBlock):
    """``smbios``: named values from Linux's DMI strings, any ``<type>.<offset>.<len>`` from
    the raw table when Linux exports it."""

    def __init__(self, providers: Mapping[Setting, Provider], table: Path) -> None:
        super().__init__("smbios", p.SCOPE_SMBIOS, providers)
        self._table_path = table
        self._table: list[smbios.Structure] | None = None

    def applies(self, setting: Setting) -> bool:
        return setting.scope == self.default_scope

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        named = super().fetch_local(setting)
        if named is not None or not setting.tag:
            return named
        if self._table is None:
            self._table = smbios.load_table(self._table_path) or []
        found = smbios.fetch(self._table, setting.tag)
        if found is None or not found[0]:
            return None
        data, is_string = found
        return replace(setting, type=setting.type or (STRING if is_string else HEX)), data


def smbios_block(dmi_dir: Path = Path("/sys/class/dmi/id"), table: Path = smbios.DMI_TABLE) -> ComputedBlock:
    """``smbios``: the DMI strings Linux exports (absent ones are simply unset)."""

    def string(name: str) -> Provider:
        return lambda: (v.encode() if (v := _read_text(dmi_dir / name)) else None)

    def uuid() -> bytes | None:
        value = _read_text(dmi_dir / "product_uuid")
        if value is None:
            return None
        try:
            return UUID.parse(value)
        except (IpxeError, ValueError):
            return None

    return SmbiosBlock({
        p.UUID: uuid,
        p.MANUFACTURER: string("sys_vendor"),
        p.PRODUCT: string("product_name"),
        p.SERIAL: string("product_serial"),
        p.ASSET: string("chassis_asset_tag"),
        p.BOARD_SERIAL: string("board_serial"),
    }, table)


def _cpuinfo_field(field: str, cpuinfo: Path) -> bytes | None:
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == field and value.strip():
            return value.strip().encode()
    return None


def cpuid_block(cpuinfo: Path = Path("/proc/cpuinfo")) -> ComputedBlock:
    """``cpuid``: vendor and model strings, as x86 CPUID leaves 0 and 0x80000002-4 give them."""
    return ComputedBlock("cpuid", p.SCOPE_CPUID, {
        p.CPUVENDOR: lambda: _cpuinfo_field("vendor_id", cpuinfo),
        p.CPUMODEL: lambda: _cpuinfo_field("model name", cpuinfo),
    })


def memmap_block(meminfo: Path = Path("/proc/meminfo")) -> ComputedBlock:
    """``memmap``: total memory in MiB."""

    def memsize() -> bytes | None:
        for line in (_read_text(meminfo) or "").splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return (kib // 1024).to_bytes(4, "big", signed=True)
        return None

    return ComputedBlock("memmap", p.SCOPE_MEMMAP, {p.MEMSIZE: memsize})


def install_platform_blocks(tree: SettingsTree, builtin: BuiltinBlock) -> None:
    """Register the computed blocks under the root, in iPXE's order."""
    tree.root.register(builtin)
    tree.root.register(smbios_block())
    tree.root.register(cpuid_block())
    tree.root.register(memmap_block())
