"""``pyipxe build``: pyipxe as the first thing a machine boots (iPXE's ``make bin/ipxe.iso EMBED=…``).

Why a small Linux and not a firmware image: pyipxe is a Linux program, so its "ROM" is a
kernel plus an initramfs whose ``/init`` starts pyipxe (the LinuxBoot model); whatever the
script chooses is then booted with kexec. The forms:

- ``initramfs`` — the compressed cpio alone (:mod:`pyipxe.build.initramfs`);
- ``iso`` / ``usb`` — kernel and initramfs on a hybrid ISO bootable from BIOS and UEFI, as a
  CD or written raw to a disk (:mod:`pyipxe.build.media`; the USB form is the same bytes);
- ``pxe`` — kernel, initramfs and a ``boot.ipxe`` that chains them, for an existing PXE/iPXE.

Every form is reproducible: the same inputs (kernel, script, certificates, settings,
pyipxe and its Python) give the same bytes; times come from ``SOURCE_DATE_EPOCH`` (0 when
unset).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FORMATS = ("initramfs", "iso", "usb", "pxe")
#: network drivers loaded at boot (Debian builds them as modules): QEMU's NICs and Intel's commonest
DEFAULT_MODULES = ("virtio_pci", "virtio_net", "e1000", "e1000e")
DEFAULT_CMDLINE = "console=tty0 console=ttyS0,115200n8 quiet"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embed", metavar="SCRIPT", help="iPXE script to run at boot (default: autoboot)")
    parser.add_argument("--trust", action="append", default=[], metavar="CERT",
                        help="trust only these root certificates (PEM or DER) for HTTPS (repeatable; "
                             "default: the build host's CA bundle)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="embedded setting, applied before the script runs (repeatable)")
    parser.add_argument("--kernel", metavar="VMLINUZ",
                        help="kernel to boot (default: Debian's linux-image-amd64, fetched with apt-get download)")
    parser.add_argument("--modules-dir", metavar="DIR",
                        help="with --kernel: its lib/modules/VERSION directory (default: none; the kernel must "
                             "have its network drivers built in)")
    parser.add_argument("--module", action="append", default=None, metavar="NAME",
                        help=f"kernel module to load at boot (repeatable; default: {' '.join(DEFAULT_MODULES)})")
    parser.add_argument("--format", choices=FORMATS, default="iso", help="what to build (default: iso)")
    parser.add_argument("--cmdline", default=DEFAULT_CMDLINE,
                        help=f"kernel command line of the iso/usb/pxe forms (default: {DEFAULT_CMDLINE!r})")
    parser.add_argument("--wait", type=float, default=2.0, metavar="SECONDS",
                        help="how long the Ctrl-B prompt waits (default: 2)")
    parser.add_argument("--fast", action="store_true",
                        help="compress faster (xz preset 1: about a third of the time, about 10%% larger)")
    parser.add_argument("--cache", metavar="DIR", help="where the downloaded kernel is kept (default: "
                        "$XDG_CACHE_HOME/pyipxe)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                        help="file to write (a directory for --format pxe)")


def build_main(args: argparse.Namespace) -> int:
    import hashlib

    from pyipxe.build.initramfs import Embedded, build_initramfs, check_setting, load_certificate, load_script
    from pyipxe.build.kernel import BuildError, Kernel, debian_kernel, default_cache
    from pyipxe.build.media import build_iso, build_pxe

    try:
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        print("pyipxe build: SOURCE_DATE_EPOCH must be a number", file=sys.stderr)
        return 2
    try:
        embedded = Embedded(
            script=load_script(Path(args.embed)) if args.embed else None,
            trust=[(Path(name).name, load_certificate(Path(name))) for name in args.trust],
            settings=[check_setting(item) for item in args.set],
            wait=args.wait,
        )
        if args.kernel:
            vmlinuz = Path(args.kernel)
            if not vmlinuz.is_file():
                raise BuildError(f"--kernel {vmlinuz}: no such file")
            kernel = Kernel(vmlinuz, Path(args.modules_dir) if args.modules_dir else None)
        else:
            kernel = debian_kernel(Path(args.cache) if args.cache else default_cache())
        modules = args.module if args.module is not None else list(DEFAULT_MODULES)
        initrd = build_initramfs(embedded, kernel, modules if kernel.modules_dir else [], mtime=mtime,
                                 fast=args.fast)
        output = Path(args.output)
        if args.format == "initramfs":
            output.write_bytes(initrd)
            written = [output]
        elif args.format in ("iso", "usb"):
            build_iso(kernel.vmlinuz.read_bytes(), initrd, output, cmdline=args.cmdline, mtime=mtime)
            written = [output]
        else:
            written = build_pxe(kernel.vmlinuz.read_bytes(), initrd, output, cmdline=args.cmdline)
    except BuildError as error:
        print(f"pyipxe build: {error}", file=sys.stderr)
        return 1
    print(f"initramfs {len(initrd)} bytes", file=sys.stderr)
    if args.format == "usb":
        print("pyipxe build: the usb form is the hybrid ISO: write it raw to the disk or stick (dd, cp)",
              file=sys.stderr)
    for path in written:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path} {path.stat().st_size} bytes sha256 {digest}")
    return 0
