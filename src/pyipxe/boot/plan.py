"""The boot plan: what iPXE would hand the machine when it executes a kernel image.

Why a plan between the image list and the backends: iPXE's image types each decide what
the booted thing receives (command line, initrd, modules); the backends (print, kexec,
qemu) only differ in what they do with it. Building the plan once, exactly as iPXE would,
keeps the backends small and makes ``--boot print`` show precisely what ``--boot kexec``
would load.

What each kind receives (reference §7.3, §7.4):
- ``linux`` (bzImage, on pcbios/linux platforms): the image's arguments, cut to the header's
  ``cmdline_size``; initrd = every other registered non-hidden image, 4 KiB aligned, CPIO
  wrapped when it has arguments.
- ``linux-efi`` (an EFI-stub kernel on the efi platform): ``<name> <args>`` as iPXE's EFI
  loader passes it; the same concatenated initrd, as iPXE 2.0 serves it through the Linux
  initrd device path (``initrd=NAME`` arguments are kept on the command line and listed).
- ``efi`` (any other EFI application): ``<name> <args>``; the images stay files beside it.
- ``multiboot``: ``<URI> <args>``; modules = the other images, each ``<URI> <args>``.
- ``elf``, ``pxe``: no command line; just the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyipxe.errors import IpxeError
from pyipxe.image.formats import facts as image_facts
from pyipxe.image.initrd import InitrdLayout, layout
from pyipxe.image.linux import BzImageHeader, bzimage_cmdline, cmdline_options, parse_bzimage
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.uri import format_uri

#: the largest bzImage setup area ((255 + 1) × 512) and then some: every header fact lies within
SETUP_MAX = 1 << 17
#: image type name → plan kind (the efi platform's "EFI" type is refined by its contents)
KINDS = {"bzImage": "linux", "EFI": "efi", "Multiboot": "multiboot", "ELF": "elf", "PXE-NBP": "pxe", "lkrn": "lkrn"}


@dataclass
class Module:
    """A Multiboot module: an image and the command line the kernel sees for it."""

    image: Image
    cmdline: str


@dataclass
class BootPlan:
    kernel: Image
    kind: str
    platform: str
    cmdline: str | None
    facts: dict[str, object] = field(default_factory=dict)
    header: BzImageHeader | None = None
    #: Linux kinds: the initrd iPXE would build (None: no images to pass)
    initrd: InitrdLayout | None = None
    #: Multiboot modules, or the files an EFI application can open
    modules: list[Module] = field(default_factory=list)

    @property
    def type_name(self) -> str:
        return self.kernel.type.name if self.kernel.type is not None else "unknown"

    def to_json(self, backend: str) -> dict[str, object]:
        """The plan as a JSON-ready dict (``pyipxe run --json``)."""
        kernel = self.kernel
        result: dict[str, object] = {
            "backend": backend,
            "platform": self.platform,
            "kind": self.kind,
            "kernel": {
                "name": kernel.name,
                "uri": format_uri(kernel.uri) if kernel.uri is not None else None,
                "type": self.type_name,
                "length": kernel.length,
                "sha256": kernel.data.digest("sha256").hex(),
            },
            "facts": self.facts,
            "cmdline": self.cmdline,
        }
        if self.initrd is not None:
            result["initrd"] = {
                "length": self.initrd.length,
                "sha256": self.initrd.sha256(),
                "parts": [{
                    "name": part.name,
                    "offset": part.offset,
                    "length": part.length,
                    "sha256": part.data.digest("sha256").hex(),
                    "cmdline": part.cmdline,
                    "cpio": [{"path": entry.path, "mode": f"{entry.mode:06o}", "size": entry.size}
                             for entry in part.entries],
                } for part in self.initrd.parts],
            }
        else:
            result["initrd"] = None
        if self.modules:
            result["modules"] = [{"name": module.image.name, "cmdline": module.cmdline, "length": module.image.length,
                                  "sha256": module.image.data.digest("sha256").hex()} for module in self.modules]
        return result


def _joined(first: str, args: str | None) -> str:
    return f"{first} {args}" if args is not None else first


def _uri_text(image: Image) -> str:
    return format_uri(image.uri) if image.uri is not None else image.name


def build_plan(registry: ImageRegistry, kernel: Image, platform: str) -> BootPlan:
    """The plan for executing ``kernel`` now (it is unregistered while it runs, as in iPXE)."""
    type_name = kernel.type.name if kernel.type is not None else ""
    kind = KINDS.get(type_name, type_name or "unknown")
    head = kernel.data.read(0, SETUP_MAX)  # the version string may lie past the detection window
    plan = BootPlan(kernel, kind, platform, kernel.cmdline, facts=image_facts(head, kernel.length, kernel.type))
    others = [image for image in registry.visible() if image is not kernel]
    if kind == "efi" and "bzimage" in plan.facts:
        plan.kind = kind = "linux-efi"
    if kind in ("linux", "linux-efi"):
        try:
            plan.header = parse_bzimage(head, kernel.length)
        except IpxeError:
            plan.header = None
    if kind == "linux" and plan.header is not None:
        plan.cmdline = bzimage_cmdline(kernel.cmdline, plan.header)
        plan.facts["ipxe_options"] = cmdline_options(plan.cmdline)
    elif kind in ("linux-efi", "efi"):
        plan.cmdline = _joined(kernel.name, kernel.cmdline)
        if kind == "efi":
            plan.modules = [Module(image, image.name) for image in others]
        else:
            plan.facts["initrd_names"] = [word[len("initrd="):] for word in plan.cmdline.split(" ")
                                          if word.startswith("initrd=")]
    elif kind == "multiboot":
        plan.cmdline = _joined(_uri_text(kernel), kernel.cmdline)
        plan.modules = [Module(image, _joined(_uri_text(image), image.cmdline)) for image in others]
    if kind in ("linux", "linux-efi") and others:
        plan.initrd = layout([(image.name, image.data, image.cmdline) for image in others])
    return plan
