"""Booting: what happens when a kernel image is executed (``boot``, ``chain``, autoboot).

Why a layer of its own: iPXE's image types each know how to start their image on bare
metal; pyipxe runs on Linux, so "starting" is a choice of *backend*, made once per session
(``pyipxe run --boot print|kexec|qemu``):

- ``print`` (default): show the boot plan (text, or JSON with ``--json``) and end.
- ``kexec``: stage the kernel with ``kexec_file_load``; boot it only with ``--kexec-exec``.
- ``qemu``: boot the plan in a VM, its serial console on stdout.

:func:`install` registers one executor per bootable image type in the session's image
registry; each builds the :class:`~pyipxe.boot.plan.BootPlan` exactly as iPXE would and
hands it to the backend. (Archives — gzip, zlib — are executed by the image layer: extracted,
then replaced by what they contained, which lands here if it is a kernel.)

How a session ends: iPXE's boot never returns on success, so neither does ours — after a
successful boot (plan printed, kexec staged or executed, VM finished) the executor raises
:class:`BootFinished`, which unwinds the interpreter and ends ``pyipxe run`` with exit 0
(for QEMU, 1 when QEMU itself failed). A backend that cannot boot an image fails the
``boot`` command with an iPXE error (the script goes on, as after a failed boot in iPXE)
and says on stderr what would work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pyipxe.console.output import Console
from pyipxe.image.registry import Image, ImageRegistry

BACKENDS = ("print", "kexec", "qemu")
#: image types a backend is asked to boot
BOOTABLE_TYPES = ("bzImage", "EFI", "Multiboot", "ELF", "PXE-NBP", "lkrn")


class BootFinished(BaseException):
    """The boot happened; unwinds everything up to the session, which exits with ``status``.

    A BaseException so that no ``except Exception`` on the way (the interpreter's guard
    against internal errors) mistakes it for a failure.
    """

    def __init__(self, status: int = 0, message: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.message = message


@dataclass
class BootOptions:
    backend: str = "print"
    json: bool = False
    kexec_exec: bool = False
    qemu_kvm: bool = False
    qemu_args: list[str] = field(default_factory=list)
    qemu_binary: str = "qemu-system-x86_64"


def _stderr(text: str) -> None:
    print(f"pyipxe: {text}", file=sys.stderr)


async def boot_image(registry: ImageRegistry, image: Image, *, console: Console, options: BootOptions,
                     log: Callable[[str], None] = _stderr) -> None:
    """Execute a kernel image with the chosen backend; raises BootFinished on success."""
    from pyipxe.boot.plan import build_plan

    plan = build_plan(registry, image, registry.platform())
    if options.backend == "print":
        from pyipxe.boot.show import render_json, render_text

        if options.json:
            console.print(render_json(plan, "print"))
        else:
            for line in render_text(plan, "print"):
                console.print(line)
        raise BootFinished(0)
    if options.backend == "kexec":
        from pyipxe.boot.kexec import KexecBackend, KexecRefused

        backend = KexecBackend(execute=options.kexec_exec, log=log)
        try:
            backend.boot(plan)
        except KexecRefused as refused:
            log(refused.advice)
            raise
        raise BootFinished(0)
    if options.backend == "qemu":
        from pyipxe.boot.qemu import QemuBackend, QemuRefused

        def flush() -> None:
            console.close()
            sys.stdout.flush()

        qemu = QemuBackend(binary=options.qemu_binary, kvm=options.qemu_kvm, extra=list(options.qemu_args),
                           flush=flush, log=log)
        try:
            status = await qemu.boot(plan)
        except QemuRefused as refused:
            log(refused.advice)
            raise
        if status:
            raise BootFinished(1, f"qemu exited with status {status}")
        raise BootFinished(0)
    raise ValueError(f"unknown boot backend {options.backend!r}")


def install(registry: ImageRegistry, console: Console, options: BootOptions) -> None:
    """Register the executor for every bootable image type in ``registry``."""

    async def boot(image: Image) -> None:
        await boot_image(registry, image, console=console, options=options)

    for name in BOOTABLE_TYPES:
        registry.executors[name] = boot


def options_from_args(args: object) -> BootOptions:
    """BootOptions from the CLI's parsed arguments (absent ones keep their defaults)."""
    defaults = BootOptions()
    return BootOptions(
        backend=getattr(args, "boot", defaults.backend),
        json=getattr(args, "json", defaults.json),
        kexec_exec=getattr(args, "kexec_exec", defaults.kexec_exec),
        qemu_kvm=getattr(args, "qemu_kvm", defaults.qemu_kvm),
        qemu_args=list(getattr(args, "qemu_arg", defaults.qemu_args)),
    )


def install_from_args(registry: ImageRegistry, console: Console, args: object) -> BootOptions:
    options = options_from_args(args)
    install(registry, console, options)
    return options
