"""``pyipxe run``: set up a session, preset settings, run the script, report its status.

Why separate from cli.py: this is what later issues grow (network, images, backends),
while the argument parsing stays small and quick to import.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import re
import sys
from pathlib import Path

from pyipxe.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from pyipxe.console.keys import KeySource, ScriptedKeys, TerminalKeys, default_key_source
from pyipxe.console.output import Console
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.spool import SpoolFile
from pyipxe.net.devices import InterfaceChoiceError, NetworkState
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter
from pyipxe.script.parser import decode_script, is_script
from pyipxe.settings import types as stypes
from pyipxe.settings.builtin import ComputedBlock

# image/exec.c: no image type recognised the file.
ERR_NOT_EXECUTABLE = ErrorSite(ErrorClass.ENOEXEC, 0x0080)
# pyipxe's own: the local script file could not be read.
ERR_LOCAL_FILE = ErrorSite(ErrorClass.ENOENT, 0x7F00)
# usr/imgmgmt.c: Ctrl-C while running an image.
ERR_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x0720)


class PresetError(ValueError):
    pass


def apply_preset(ctx: Context, assignment: str) -> None:
    """``NAME=VALUE`` as ``set`` would store it; computed values (SMBIOS, builtin) are overridden."""
    name, equals, value = assignment.partition("=")
    if not equals or not name:
        raise PresetError(f"--set needs NAME=VALUE, not {assignment!r}")
    try:
        block, setting = ctx.settings.parse_name(name, create=True)
        if block is ctx.settings.root and setting.scope is not None:
            for child in ctx.settings.root.children:
                if isinstance(child, ComputedBlock) and child.default_scope == setting.scope:
                    setting_type = setting.type or stypes.STRING
                    child.preset(setting, setting_type.parse(value) if value else None)
                    return
        ctx.settings.store_text(block, setting, value)
    except IpxeError as error:
        raise PresetError(f"--set {assignment}: {ctx.error_text(error)}") from error


def _keys(inputs: list[str]) -> KeySource:
    if inputs:
        text = "".join(codecs.decode(item, "unicode_escape") for item in inputs)
        return ScriptedKeys(text)
    return default_key_source()


def _read_script(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError:
        raise IpxeError(ERR_LOCAL_FILE) from None
    if not is_script(data):
        raise IpxeError(ERR_NOT_EXECUTABLE)
    return decode_script(data)


async def run_top_script(ctx: Context, text: str, name: str) -> int:
    """Run the top-level script as iPXE runs its embedded image: as an executing image
    (so ``chain --replace`` can replace it), with no URI (so cwuri is left alone)."""
    image = ctx.images.new_image(None, SpoolFile(text.encode("utf-8", "surrogateescape")), name=name)
    ctx.images.register(image)
    try:
        await ctx.images.execute(image)
    except IpxeError as error:
        return ctx.code(error)
    finally:
        ctx.images.unregister(image)
    return 0


REMOTE_SCRIPT = re.compile(r"^(https?|tftp|ftp|nfs)://", re.IGNORECASE)


#: ``pyipxe boot``: iPXE's start-up with no embedded image (reference §6.1): the Ctrl-B offer,
#: then netboot on every interface; "No more network devices"; the last status
STARTUP_SCRIPT = """#!ipxe
prompt --key 0x02 --timeout 2000 Press Ctrl-B for the iPXE command line... && goto shell ||
autoboot || goto failed
echo No more network devices
exit
:failed
echo No more network devices
exit ${errno}
:shell
shell
"""


async def _run(ctx: Context, path: str | None, builtin: str | None = None) -> int:
    if builtin is not None:  # pyipxe boot
        return await run_top_script(ctx, builtin, "autoboot")
    if path is None:  # pyipxe shell
        return await run_top_script(ctx, "#!ipxe\nshell\n", "shell")
    if REMOTE_SCRIPT.match(path):  # pyipxe run http://server/boot.ipxe: chain it, as iPXE would
        return await run_top_script(ctx, f"#!ipxe\nchain {path}\n", "-")
    try:
        text = _read_script(path)
    except IpxeError as error:
        return ctx.code(error)
    return await run_top_script(ctx, text, "-" if path == "-" else Path(path).name)


def configure_downloads(ctx: Context, args: argparse.Namespace) -> None:
    """TLS trust roots and ``-v`` protocol logging for every download of this session."""
    env = ctx.fetch_env
    assert env is not None
    env.tls.trust_files.extend(getattr(args, "trust", []))
    env.tls.system_roots = not getattr(args, "no_system_trust", False)
    if getattr(args, "verbose", 0):
        env.log = lambda message: print(f"pyipxe: {message}", file=sys.stderr, flush=True)
    env.tls.client_cert = getattr(args, "client_cert", None)
    env.tls.client_key = getattr(args, "client_key", None)
    from pyipxe.trust.store import install  # after the presets: ``trust`` is read once, here

    install(ctx, system_for_signatures=getattr(args, "signature_system_trust", False))


def unreadable_files(args: argparse.Namespace) -> list[str]:
    """``--trust``/``--client-cert``/``--client-key`` files that cannot be read: a typo there
    must not silently mean "no extra trust" or "no client certificate"."""
    named = [("--trust", path) for path in getattr(args, "trust", [])]
    named += [(flag, getattr(args, attr, None)) for flag, attr in (("--client-cert", "client_cert"),
                                                                     ("--client-key", "client_key"))]
    problems = []
    for flag, path in named:
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            problems.append(f"{flag} {path}: {error.strerror}")
    return problems


def run_main(args: argparse.Namespace) -> int:
    for problem in unreadable_files(args):
        print(f"pyipxe: {problem}", file=sys.stderr)
        return EXIT_USAGE
    console = Console()
    ctx = Context(console=console, keys=_keys(args.input))
    try:
        network = ctx.network = NetworkState(ctx.settings, mode=args.network, interfaces=args.interface)
    except InterfaceChoiceError as error:
        print(f"pyipxe: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.platform:
            apply_preset(ctx, f"platform={args.platform}")
        for assignment in args.set:
            apply_preset(ctx, assignment)
    except PresetError as error:
        print(f"pyipxe: {error}", file=sys.stderr)
        return EXIT_USAGE
    Interpreter(ctx, trace=args.trace)
    configure_downloads(ctx, args)
    ctx.ui.preselect.extend(getattr(args, "choose", []))
    ctx.ui.non_interactive = getattr(args, "non_interactive", False)
    from pyipxe.boot import BootFinished, install_from_args

    install_from_args(ctx.images, console, args)
    if isinstance(ctx.keys, TerminalKeys):
        ctx.keys.hold_raw()
    try:
        status = asyncio.run(_run(ctx, args.script, getattr(args, "builtin_script", None)))
    except KeyboardInterrupt:
        console.close()
        print("Could not boot: " + ctx.error_text(IpxeError(ERR_CANCELED)), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BootFinished as finished:  # a kernel was booted: iPXE's boot does not return
        console.close()
        if finished.message:
            print(f"pyipxe: {finished.message}", file=sys.stderr)
        return EXIT_OK if finished.status == 0 else EXIT_FAILED
    finally:
        if isinstance(ctx.keys, TerminalKeys):
            ctx.keys.release()
        network.shutdown()  # own mode leaves the interfaces as it found them
    console.close()
    if status:
        print(f"Could not boot: {ctx.error_text(status)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK

