"""The ``pyipxe`` command line: ``run`` a script, ``check`` scripts.

Rules: stdout carries only what iPXE's console would show; pyipxe's own diagnostics go
to stderr. Exit status: 0 success, 1 the script (or check) failed, 2 bad usage,
130 interrupted. Heavy modules are imported inside the subcommands to keep start-up
fast (``bench/startup.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyipxe import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_boot_options(parser: argparse.ArgumentParser) -> None:
    """How an executed kernel is booted (pyipxe.boot); shared by run, demo and boot."""
    group = parser.add_argument_group("booting")
    group.add_argument("--boot", choices=("print", "kexec", "qemu"), default="print",
                       help="what booting a kernel does: print the boot plan (default), stage it with kexec, "
                            "or boot it in a QEMU VM with its serial console on stdout")
    group.add_argument("--json", action="store_true", help="print the boot plan as JSON (--boot print)")
    group.add_argument("--kexec-exec", action="store_true",
                       help="with --boot kexec: reboot into the loaded kernel at once (default: only load it)")
    group.add_argument("--qemu-kvm", action="store_true", help="with --boot qemu: use KVM (default: TCG)")
    group.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                       help="with --boot qemu: one more QEMU argument (repeatable), e.g. --qemu-arg=-smp --qemu-arg=2")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyipxe", description="iPXE as a Linux userspace network bootloader")
    parser.add_argument("--version", action="version", version=f"pyipxe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an iPXE script")
    run.add_argument("script", help="script file (must start with #!ipxe), - for stdin, or a URL to chain "
                     "(http, https, tftp, ftp, nfs)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="preset a setting before the script runs (repeatable), e.g. --set smbios/serial=X")
    run.add_argument("--platform", choices=("pcbios", "efi", "linux"),
                     help="platform to present (${platform}, error numbers); default from this machine")
    run.add_argument("--input", action="append", default=[], metavar="KEYS",
                     help="keys to type as the script starts (Python escapes: \\r Enter, \\x03 Ctrl-C)")
    run.add_argument("--trace", action="store_true",
                     help="print every executed command with its expanded arguments, status and time")
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="protocol detail on stderr (requests, negotiated options, TLS version and cipher)")
    run.add_argument("--trust", action="append", default=[], metavar="FILE",
                     help="also trust the PEM root certificates in FILE for HTTPS (repeatable)")
    run.add_argument("--no-system-trust", action="store_true",
                     help="trust only the --trust roots for HTTPS, not the system store")
    run.add_argument("--client-cert", metavar="FILE",
                     help="PEM client certificate (and chain) for HTTPS servers that ask for one; the key may "
                          "follow it in FILE (the cert/privkey settings, DER, override it as in iPXE)")
    run.add_argument("--client-key", metavar="FILE", help="PEM private key for --client-cert")
    run.add_argument("--signature-system-trust", action="store_true",
                     help="also accept image signatures (imgverify) that chain to the system's TLS roots; "
                          "off by default: only --trust roots and the trust setting's fingerprints")
    run.add_argument("--network", choices=("auto", "own", "host"), default="auto",
                     help="who configures the interfaces: own (pyipxe applies DHCP/static settings and undoes "
                          "them at ifclose), host (read only; dhcp just learns boot options), auto (default: own "
                          "for an interface without an IPv4 address, else host)")
    run.add_argument("--interface", action="append", default=[], metavar="IF|netN=IF",
                     help="use only this Linux interface (repeatable; numbered net0.. in the order given), "
                          "or map one explicitly: --interface net1=eth2")
    run.add_argument("--choose", action="append", default=[], metavar="LABEL",
                     help="answer the next choose with the item named LABEL (repeatable, used in order)")
    run.add_argument("--non-interactive", action="store_true",
                     help="nobody will type: menu timeouts expire at once and take the default")
    _add_boot_options(run)

    # ``pyipxe shell`` is a session whose script is iPXE's ``shell``: same options, no script.
    shell = sub.add_parser("shell", help="an interactive iPXE> shell (line editing, history, Tab completion)")
    for action in run._actions:
        if action.dest not in ("help", "script"):
            shell._add_action(action)

    # ``pyipxe boot`` is iPXE's start-up: the Ctrl-B offer, then autoboot (DHCP on each interface).
    boot = sub.add_parser("boot", help="autoboot as iPXE starts: Ctrl-B for a shell, else DHCP and boot on each "
                                       "interface")
    for action in run._actions:
        if action.dest not in ("help", "script"):
            boot._add_action(action)

    check = sub.add_parser("check", help="report problems in scripts without running them")
    check.add_argument("scripts", nargs="+", help="script files")

    demo = sub.add_parser("demo", help="netboot from an embedded loopback server over a bundled demo tree")
    demo.add_argument("--kernel", metavar="FILE", help="serve this kernel instead of the generated one")
    demo.add_argument("--initrd", metavar="FILE", help="serve this initrd instead of the generated one")
    demo.add_argument("--platform", choices=("pcbios", "efi", "linux"),
                      help="platform to present (${platform}, error numbers); default from this machine")
    _add_boot_options(demo)

    build = sub.add_parser("build", help="a bootable image that runs pyipxe first: initramfs, iso, usb or pxe")
    from pyipxe.build import add_arguments

    add_arguments(build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "run":
            from pyipxe.runner import run_main

            return run_main(args)
        if args.command == "shell":
            from pyipxe.runner import run_main

            args.script = None
            return run_main(args)
        if args.command == "boot":
            from pyipxe.runner import STARTUP_SCRIPT, run_main

            args.script, args.builtin_script = None, STARTUP_SCRIPT
            return run_main(args)
        if args.command == "check":
            from pyipxe.script.check import check_main

            return check_main(args.scripts)
        if args.command == "build":
            from pyipxe.build import build_main

            return build_main(args)
        if args.command == "demo":
            from pyipxe.demo import demo_main

            return demo_main(args)
    except KeyboardInterrupt:
        print("pyipxe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    return EXIT_USAGE
