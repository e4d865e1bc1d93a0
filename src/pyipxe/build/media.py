"""Bootable media around a kernel and an initramfs: a hybrid ISO (CD and USB stick), a PXE set.

Why these loaders: ISOLINUX for BIOS (Debian's ``isolinux``/``syslinux-common``: two files
and a four-line config) and a GRUB EFI image for UEFI (``grub-mkimage`` from
``grub-efi-amd64-bin``, its config embedded, reading the kernel and initramfs from the ISO
itself, so they are stored once). ``xorriso`` lays out the ISO with both El Torito entries
and an isohybrid MBR and GPT, so the same bytes boot from a CD or, written raw to a disk or
USB stick, from BIOS and UEFI firmware alike: the ``usb`` form *is* the hybrid ISO.

Reproducible: every file in the staging tree gets the same mtime, the FAT image of the EFI
loader is made with ``mkfs.fat --invariant`` and a fixed volume id, its files are copied
with their (fixed) times, and xorriso takes its dates and UUIDs from
``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pyipxe.build import DEFAULT_CMDLINE
from pyipxe.build.kernel import BuildError

ISOLINUX_BIN = ("/usr/lib/ISOLINUX/isolinux.bin",)
ISOHYBRID_MBR = ("/usr/lib/ISOLINUX/isohdpfx.bin",)
LDLINUX = ("/usr/lib/syslinux/modules/bios/ldlinux.c32",)
GRUB_EFI_MODULES = ("/usr/lib/grub/x86_64-efi",)
VOLUME_LABEL = "PYIPXE"
GRUB_MODULES = ("iso9660", "part_msdos", "part_gpt", "fat", "search", "search_label", "linux", "boot",
                "echo", "efi_gop", "efi_uga", "video", "gzio")
FAT_VOLUME_ID = "50495845"  # "PIXE": any fixed value; mkfs.fat would pick a random one


def _first(candidates: tuple[str, ...], package: str) -> Path:
    for candidate in candidates:
        if os.path.exists(candidate):
            return Path(candidate)
    raise BuildError(f"{candidates[0]} is missing: install Debian's {package} package")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/sbin") if os.path.exists(f"{d}/{name}")),
                                       None)
    if not found:
        raise BuildError(f"{name} is missing: install Debian's {package} package")
    return found


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, env=env, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(f"{argv[0]}: {error}") from None
    if result.returncode:
        raise BuildError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")


def _stamp(root: Path, mtime: int) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    os.utime(root, (mtime, mtime))


def isolinux_cfg(cmdline: str) -> str:
    return ("DEFAULT pyipxe\nPROMPT 0\nTIMEOUT 0\nLABEL pyipxe\n  KERNEL /boot/vmlinuz\n"
            f"  INITRD /boot/initrd.img\n  APPEND {cmdline}\n")


def grub_cfg(cmdline: str) -> str:
    return ("set timeout=0\n"
            f"search --no-floppy --label --set=root {VOLUME_LABEL}\n"
            f"linux /boot/vmlinuz {cmdline}\n"
            "initrd /boot/initrd.img\n"
            "boot\n")


def efi_image(work: Path, cmdline: str, mtime: int) -> Path:
    """A small FAT image holding ``EFI/BOOT/BOOTX64.EFI`` (GRUB with its config built in)."""
    modules = _first(GRUB_EFI_MODULES, "grub-efi-amd64-bin")
    config = work / "grub-embedded.cfg"
    config.write_text(grub_cfg(cmdline))
    loader = work / "BOOTX64.EFI"
    _run([_tool("grub-mkimage", "grub-common"), "-O", "x86_64-efi", "-d", str(modules), "-p", "/boot/grub",
          "-c", str(config), "-o", str(loader), *GRUB_MODULES])
    os.utime(loader, (mtime, mtime))
    size_kib = max(1024, (loader.stat().st_size // 1024 + 256 + 63) // 64 * 64)
    image = work / "efi.img"
    image.unlink(missing_ok=True)
    _run([_tool("mkfs.fat", "dosfstools"), "--invariant", "-i", FAT_VOLUME_ID, "-n", "PYIPXE-EFI", "-C", str(image),
          str(size_kib)])
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", SOURCE_DATE_EPOCH=str(mtime), TZ="UTC")
    _run([_tool("mmd", "mtools"), "-i", str(image), "::EFI", "::EFI/BOOT"], env=env)
    _run([_tool("mcopy", "mtools"), "-m", "-i", str(image), str(loader), "::EFI/BOOT/BOOTX64.EFI"], env=env)
    return image


def build_iso(vmlinuz: bytes, initrd: bytes, output: Path, *, cmdline: str = DEFAULT_CMDLINE, mtime: int = 0) -> None:
    """A hybrid ISO: El Torito BIOS (ISOLINUX) and UEFI (GRUB) entries, isohybrid MBR and GPT."""
    xorriso = _tool("xorriso", "xorriso")
    isolinux = _first(ISOLINUX_BIN, "isolinux")
    mbr = _first(ISOHYBRID_MBR, "isolinux")
    ldlinux = _first(LDLINUX, "syslinux-common")
    with tempfile.TemporaryDirectory(prefix="pyipxe-iso-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        (tree / "boot").mkdir(parents=True)
        (tree / "isolinux").mkdir()
        (tree / "boot" / "vmlinuz").write_bytes(vmlinuz)
        (tree / "boot" / "initrd.img").write_bytes(initrd)
        shutil.copyfile(isolinux, tree / "isolinux" / "isolinux.bin")
        shutil.copyfile(ldlinux, tree / "isolinux" / "ldlinux.c32")
        (tree / "isolinux" / "isolinux.cfg").write_text(isolinux_cfg(cmdline))
        shutil.copyfile(efi_image(work, cmdline, mtime), tree / "boot" / "efi.img")
        _stamp(tree, mtime)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(mtime), TZ="UTC")
        target = work / "out.iso"
        _run([xorriso, "-as", "mkisofs", "-o", str(target), "-V", VOLUME_LABEL, "-r", "-J",
              "-isohybrid-mbr", str(mbr),
              "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
              "-boot-info-table",
              "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
              str(tree)], env=env)
        shutil.move(str(target), output)


def pxe_script(cmdline: str) -> str:
    """The iPXE script an existing PXE or iPXE ROM chains: relative names, resolved against its own URI."""
    return f"#!ipxe\nkernel vmlinuz {cmdline}\ninitrd initrd.img\nboot\n"


def build_pxe(vmlinuz: bytes, initrd: bytes, output: Path, *, cmdline: str = DEFAULT_CMDLINE) -> list[Path]:
    """``output/`` with ``vmlinuz``, ``initrd.img`` and ``boot.ipxe``."""
    output.mkdir(parents=True, exist_ok=True)
    files = [output / "vmlinuz", output / "initrd.img", output / "boot.ipxe"]
    files[0].write_bytes(vmlinuz)
    files[1].write_bytes(initrd)
    files[2].write_text(pxe_script(cmdline))
    return files
