"""``pyipxe demo``: a whole network boot on loopback, with nothing to set up.

Why: the first thing to try on a fresh machine. An embedded HTTP server (pyipxe.server)
starts on a free loopback port over a demo tree made in memory — a boot script with a
menu, a generated kernel with a valid bzImage header and an initramfs — and a normal
pyipxe session chains the script from it; its menu (a real iPXE menu on a terminal,
the default at once without one) picks the entry that
fetches the kernel and initrd over HTTP and boots them with the chosen backend. With the
default ``--boot print`` it ends by printing the boot plan; ``--boot qemu --kernel K
--initrd I`` boots a real kernel the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pyipxe.demo.images import make_bzimage, make_initrd
from pyipxe.server.http import Entry, TreeServer

#: The demo's boot script. It chooses its menu entry itself (${demo-choice}, default
#: "linux") so that it runs the same with or without a keyboard.
BOOT_SCRIPT = """#!ipxe
# pyipxe demo: this script, the kernel and the initrd come from pyipxe's embedded HTTP
# server on loopback; relative names resolve against this script's URI.
menu pyipxe demo: a network boot on loopback
item --key l linux Boot the demo kernel with its initrd
item --key s stop Stop before booting
isset ${demo-choice} || choose --default linux --timeout 5000 demo-choice || set demo-choice linux
echo Selected: ${demo-choice}
goto ${demo-choice}

:linux
kernel vmlinuz console=ttyS0 quiet panic=-1
initrd initrd.img
imgstat
boot

:stop
echo Stopped before booting
"""


def demo_tree(kernel: Path | None = None, initrd: Path | None = None) -> dict[str, Entry]:
    return {
        "/boot.ipxe": BOOT_SCRIPT.encode(),
        "/vmlinuz": kernel if kernel is not None else make_bzimage(),
        "/initrd.img": initrd if initrd is not None else make_initrd(),
    }


def demo_main(args: argparse.Namespace) -> int:
    from pyipxe.boot import BootFinished, install_from_args
    from pyipxe.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
    from pyipxe.console.keys import TerminalKeys, default_key_source
    from pyipxe.console.output import Console
    from pyipxe.runner import apply_preset, run_top_script
    from pyipxe.script.context import Context
    from pyipxe.script.interpreter import Interpreter

    for path in (args.kernel, args.initrd):
        if path is not None and not Path(path).is_file():
            print(f"pyipxe: {path}: no such file", file=sys.stderr)
            return 2
    console = Console()
    ctx = Context(console=console, keys=default_key_source())
    ctx.ui.non_interactive = not ctx.keys.interactive  # without a keyboard, take the default at once
    if args.platform:
        apply_preset(ctx, f"platform={args.platform}")
    Interpreter(ctx)
    install_from_args(ctx.images, console, args)
    tree = demo_tree(Path(args.kernel) if args.kernel else None, Path(args.initrd) if args.initrd else None)

    async def session() -> int:
        server = await TreeServer(tree).start()
        print(f"pyipxe: demo server on {server.base}", file=sys.stderr)
        try:
            return await run_top_script(ctx, f"#!ipxe\nchain {server.base}boot.ipxe\n", "demo")
        finally:
            await server.close()

    if isinstance(ctx.keys, TerminalKeys):
        ctx.keys.hold_raw()
    try:
        status = asyncio.run(session())
    except BootFinished as finished:
        console.close()
        if finished.message:
            print(f"pyipxe: {finished.message}", file=sys.stderr)
        return EXIT_OK if finished.status == 0 else EXIT_FAILED
    except KeyboardInterrupt:
        console.close()
        return EXIT_INTERRUPTED
    finally:
        if isinstance(ctx.keys, TerminalKeys):
            ctx.keys.release()
    console.close()
    if status:
        print(f"Could not boot: {ctx.error_text(status)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
