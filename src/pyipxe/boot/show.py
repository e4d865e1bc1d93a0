"""The boot plan as text (``--boot print``, the default) and as JSON (``--json``).

Why print a plan rather than boot: on a Linux host, "booting" replaces the running system;
the plan shows exactly what would be loaded — kernel and format facts, command line, every
initrd part at its offset with its CPIO path and SHA-256 — so a boot configuration can be
checked anywhere, and compared byte for byte with what kexec or qemu later receive.
"""

from __future__ import annotations

import json

from pyipxe.boot.plan import BootPlan


def _size(length: int) -> str:
    return f"{length} bytes"


def _linux_facts(plan: BootPlan) -> list[str]:
    header = plan.header
    if header is None:
        return []
    parts = [f"boot protocol {header.version_text}"]
    if header.kernel_version:
        parts.append(f"version {header.kernel_version.split(' ')[0]}")
    if header.efi_stub:
        parts.append("EFI stub")
    if header.handover_offset:
        parts.append(f"handover {header.handover_offset:#x}")
    lines = [", ".join(parts)]
    details = [f"cmdline max {header.cmdline_size}", f"setup {header.setup_sects} sectors"]
    if header.xloadflags is not None:
        details.append("xloadflags " + ("|".join(header.xloadflag_names()) or "0"))
    if header.kernel_alignment is not None:
        details.append(f"alignment {header.kernel_alignment:#x}")
    if header.init_size is not None:
        details.append(f"init_size {header.init_size:#x}")
    lines.append(", ".join(details))
    return lines


def render_text(plan: BootPlan, backend: str = "print") -> list[str]:
    """The plan, one console line each."""
    kernel = plan.kernel
    lines = [f"Boot plan ({backend}): {plan.kind} on {plan.platform}"]
    lines.append(f"  kernel  {kernel.name} : {_size(kernel.length)} [{plan.type_name}]")
    if kernel.uri is not None:
        from pyipxe.uri import format_uri

        lines.append(f"          from {format_uri(kernel.uri, for_display=True)}")
    lines.append(f"          sha256 {kernel.data.digest('sha256').hex()}")
    for fact in _linux_facts(plan):
        lines.append(f"  format  {fact}")
    for key in ("pe", "elf", "multiboot", "multiboot2"):
        value = plan.facts.get(key)
        if isinstance(value, dict):
            lines.append(f"  {key:<7} " + ", ".join(f"{name} {item}" for name, item in value.items()))
    if plan.cmdline is not None:
        lines.append(f"  cmdline {plan.cmdline}")
    if plan.initrd is not None:
        lines.append(f"  initrd  {_size(plan.initrd.length)} sha256 {plan.initrd.sha256()}")
        for part in plan.initrd.parts:
            where = ""
            if part.entries:
                last = part.entries[-1]
                kind = "dir" if last.is_dir else f"mode {last.mode & 0o7777:04o}"
                made = [entry.path for entry in part.entries[:-1]]
                where = f" -> {last.path} ({kind}{', mkdir ' + ' '.join(made) if made else ''})"
            lines.append(f"    {part.offset:#010x} {part.name}{where} : {_size(part.length)}"
                         f" sha256 {part.data.digest('sha256').hex()}")
    elif plan.kind in ("linux", "linux-efi"):
        lines.append("  initrd  (none)")
    for module in plan.modules:
        lines.append(f"  module  {module.image.name} : {_size(module.image.length)} \"{module.cmdline}\"")
    return lines


def render_json(plan: BootPlan, backend: str = "print") -> str:
    return json.dumps(plan.to_json(backend), indent=2, sort_keys=False)
