"""goto, exit, iseq, isset, sleep: control flow and conditions."""

from __future__ import annotations

import asyncio
import time

from pyipxe.console.keys import CTRL_C
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Stop, signed32
from pyipxe.script.options import CommandSpec, Parsed, parse_integer
from pyipxe.script.registry import command

# core/exec.c
ERR_ISSET = ErrorSite(ErrorClass.ENOENT, 0x0220)
ERR_ISEQ = ErrorSite(ErrorClass.ERANGE, 0x0220)
ERR_SLEEP_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x0220)


@command("goto", spec=CommandSpec(min_args=1, max_args=1, usage="<label>"))
async def goto(ctx: Context, opts: Parsed) -> None:
    ctx.run().goto(opts.args[0])


@command("exit", spec=CommandSpec(max_args=1, usage="[<status>]"))
async def exit_(ctx: Context, opts: Parsed) -> None:
    status = parse_integer(opts.args[0], ctx.console) if opts.args else 0
    ctx.run().request_stop(Stop.SEQUENCE)
    # iPXE returns the status as a C int and reports its magnitude (exit 0xffffffff → 1).
    code = abs(signed32(status))
    if code:
        raise IpxeError(raw=code)


@command("isset", spec=CommandSpec(min_args=1, max_args=1, usage="<value>"))
async def isset(ctx: Context, opts: Parsed) -> None:
    if not opts.args[0]:
        raise IpxeError(ERR_ISSET)


@command("iseq", spec=CommandSpec(min_args=2, max_args=2, usage="<value1> <value2>"))
async def iseq(ctx: Context, opts: Parsed) -> None:
    if opts.args[0] != opts.args[1]:
        raise IpxeError(ERR_ISEQ)


@command("sleep", spec=CommandSpec(min_args=1, max_args=1, usage="<seconds>"))
async def sleep(ctx: Context, opts: Parsed) -> None:
    """Wait, eating typed keys; Ctrl-C cancels (reference §3.4)."""
    seconds = parse_integer(opts.args[0], ctx.console)
    if CTRL_C in ctx.keys.pending():
        raise IpxeError(ERR_SLEEP_CANCELED)
    deadline = time.monotonic() + seconds
    if not ctx.keys.interactive:
        await asyncio.sleep(seconds)
        return
    while (remaining := deadline - time.monotonic()) > 0:
        if await ctx.keys.get_key(remaining) == CTRL_C:
            raise IpxeError(ERR_SLEEP_CANCELED)
