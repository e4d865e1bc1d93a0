"""Booting a plan in a QEMU virtual machine, its serial console on our stdout.

Why QEMU: it is how a boot configuration is tested safely — the kernel, command line and
initrd iPXE would hand the machine boot in a VM instead of replacing the host. Each kind
uses QEMU's own loader for it:
- Linux (bzImage or EFI stub): ``-kernel``/``-initrd``/``-append`` (QEMU's Linux loader).
- Multiboot 1: ``-kernel`` with the modules as ``-initrd "file args,file args"``.
- ELF: ``-kernel`` (QEMU loads Multiboot/PVH ELF kernels; others it refuses itself).
- EFI applications: OVMF firmware (``-bios``) and a virtual FAT disk holding the
  application as ``EFI/BOOT/BOOTX64.EFI`` beside the other images.
- PXE NBPs: QEMU's user network with its built-in TFTP server and the NIC's iPXE ROM.

Files reach QEMU as ``/proc/self/fd/N`` of our spool files (passed to the child), so the
bytes are never written to a named file, except for the FAT and TFTP directories, which
are temporary and removed afterwards.

TCG is the default accelerator: it always works, and KVM can hang on some hosts (nested
virtualisation); ``--qemu-kvm`` opts in. ``-no-reboot`` makes a guest reboot (or a panic
with ``panic=-1``) end QEMU, so a session ends when the VM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyipxe.boot.plan import BootPlan
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.registry import ERR_NOT_EXECUTABLE
from pyipxe.image.spool import SpoolFile

# pyipxe's own sites: QEMU or its firmware is missing
ERR_NO_QEMU = ErrorSite(ErrorClass.ENOENT, 0x7F88)
ERR_NO_OVMF = ErrorSite(ErrorClass.ENOENT, 0x7F89)
ERR_NOT_BOOTABLE = ERR_NOT_EXECUTABLE  # iPXE's image.c "Exec format error"

OVMF_CANDIDATES = ("/usr/share/qemu/OVMF.fd", "/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd")
EFI_BOOT_NAMES = {"x86_64": "BOOTX64.EFI", "i386": "BOOTIA32.EFI", "arm64": "BOOTAA64.EFI"}
QEMU_KINDS = ("linux", "linux-efi", "multiboot", "elf", "efi", "pxe")


class QemuRefused(IpxeError):
    def __init__(self, site: ErrorSite, advice: str) -> None:
        super().__init__(site)
        self.advice = advice


def find_ovmf() -> str | None:
    return next((path for path in OVMF_CANDIDATES if Path(path).is_file()), None)


def memory_mib(plan: BootPlan) -> int:
    """Enough RAM for the kernel to unpack itself and its initrd: at least 256 MiB."""
    payload = plan.kernel.length + (plan.initrd.length if plan.initrd is not None else 0)
    payload += sum(module.image.length for module in plan.modules)
    wanted = 96 + 3 * payload // (1 << 20)
    return max(256, (wanted + 63) // 64 * 64)


@dataclass
class QemuBackend:
    binary: str = "qemu-system-x86_64"
    kvm: bool = False
    extra: list[str] = field(default_factory=list)
    #: called before QEMU takes over stdout (the console flushes what it holds)
    flush: Callable[[], None] = lambda: None
    log: Callable[[str], None] = field(default=lambda text: print(f"pyipxe: {text}", file=sys.stderr))

    def check(self, plan: BootPlan) -> None:
        if plan.kind not in QEMU_KINDS:
            advice = (f"{plan.kernel.name} is an {plan.type_name} image for another architecture"
                      if plan.kind == "lkrn" else f"QEMU cannot boot {plan.kernel.name} ({plan.type_name})")
            raise QemuRefused(ERR_NOT_BOOTABLE, advice + "; --boot print shows the plan")
        if plan.kind == "multiboot" and "multiboot2" in plan.facts and "multiboot" not in plan.facts:
            raise QemuRefused(ERR_NOT_BOOTABLE, "QEMU's -kernel speaks Multiboot 1 only; boot a Multiboot 2 "
                                                "kernel through GRUB")
        if shutil.which(self.binary) is None:
            raise QemuRefused(ERR_NO_QEMU, f"{self.binary} is not installed (Debian: apt install qemu-system-x86)")
        if plan.kind == "efi" and find_ovmf() is None:
            raise QemuRefused(ERR_NO_OVMF, "EFI applications boot under OVMF, which is not installed "
                                           "(Debian: apt install ovmf)")

    def argv(self, plan: BootPlan, files: dict[str, str], workdir: Path | None) -> list[str]:
        """QEMU's command line; ``files`` maps "kernel", "initrd" and module names to paths."""
        argv = [self.binary, "-nographic", "-no-reboot", "-m", str(memory_mib(plan)),
                "-accel", "kvm" if self.kvm else "tcg"]
        if self.kvm:
            argv += ["-cpu", "host"]
        if plan.kind in ("linux", "linux-efi", "multiboot", "elf"):
            argv += ["-nic", "none", "-kernel", files["kernel"]]
            if plan.cmdline:
                argv += ["-append", plan.cmdline]
            if plan.kind == "multiboot" and plan.modules:
                argv += ["-initrd", ",".join(f"{files[module.image.name + '#' + str(index)]} "
                                             f"{module.cmdline}".replace(",", ",,")
                                             for index, module in enumerate(plan.modules))]
            elif "initrd" in files:
                argv += ["-initrd", files["initrd"]]
        elif plan.kind == "efi":
            assert workdir is not None
            argv += ["-nic", "none", "-bios", find_ovmf() or OVMF_CANDIDATES[0],
                     "-drive", f"format=raw,file=fat:rw:{workdir}"]
        elif plan.kind == "pxe":
            assert workdir is not None
            argv += ["-netdev", f"user,id=n0,tftp={workdir},bootfile={plan.kernel.name or 'nbp'}",
                     "-device", "e1000,netdev=n0", "-boot", "n"]
        return argv + self.extra

    def _prepare(self, plan: BootPlan, stack: contextlib.ExitStack) -> tuple[dict[str, str], list[int], Path | None]:
        files: dict[str, str] = {}
        fds: list[int] = []

        def pass_file(key: str, spool: SpoolFile) -> None:
            fds.append(spool.fileno())
            files[key] = f"/proc/self/fd/{spool.fileno()}"

        workdir: Path | None = None
        if plan.kind in ("efi", "pxe"):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pyipxe-qemu-")))
            target = workdir / (plan.kernel.name or "nbp")
            if plan.kind == "efi":
                boot = workdir / "EFI" / "BOOT"
                boot.mkdir(parents=True)
                pe = plan.facts.get("pe")
                machine = str(pe.get("machine")) if isinstance(pe, dict) else "x86_64"
                target = boot / EFI_BOOT_NAMES.get(machine, "BOOTX64.EFI")
                # When the application returns, OVMF falls back to its shell, which runs this: power off,
                # so that the session ends when the application does (as -no-reboot does for kernels).
                (workdir / "startup.nsh").write_text("reset -s\r\n")
                for module in plan.modules:
                    if module.image.name and "/" not in module.image.name:
                        _copy(module.image.data, workdir / module.image.name)
            _copy(plan.kernel.data, target)
            return files, fds, workdir
        pass_file("kernel", plan.kernel.data)
        if plan.initrd is not None:
            initrd = plan.initrd.spool()
            if initrd is not plan.initrd.parts[0].data:
                stack.callback(initrd.close)
            pass_file("initrd", initrd)
        for index, module in enumerate(plan.modules):
            pass_file(module.image.name + "#" + str(index), module.image.data)
        return files, fds, workdir

    async def boot(self, plan: BootPlan) -> int:
        """Run the VM until it powers off; QEMU's exit status."""
        self.check(plan)
        with contextlib.ExitStack() as stack:
            files, fds, workdir = self._prepare(plan, stack)
            argv = self.argv(plan, files, workdir)
            self.log("qemu: " + " ".join(argv))
            self.flush()
            stdin = None if sys.stdin.isatty() else asyncio.subprocess.DEVNULL
            try:
                process = await asyncio.create_subprocess_exec(*argv, stdin=stdin, pass_fds=fds)
            except OSError as error:
                raise QemuRefused(ERR_NO_QEMU, f"cannot start {self.binary}: {error.strerror}") from None
            try:
                return await process.wait()
            finally:
                if process.returncode is None:
                    process.terminate()
                    with contextlib.suppress(ProcessLookupError):
                        await asyncio.shield(process.wait())


def _copy(source: SpoolFile, path: Path) -> None:
    with open(path, "wb") as output:
        for chunk in source.chunks():
            output.write(chunk)
    os.chmod(path, 0o644)
