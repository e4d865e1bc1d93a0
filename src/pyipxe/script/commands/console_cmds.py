"""echo, prompt, help: commands that talk to the person at the console."""

from __future__ import annotations

from collections.abc import Iterable

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_key, parse_timeout
from pyipxe.script.registry import COMMANDS, command

# hci/commands/... prompt lives in usr/prompt.c
ERR_PROMPT_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x22E0)
ERR_PROMPT_WRONG_KEY = ErrorSite(ErrorClass.ECANCELED, 0x22E0)

DEFAULT_PROMPT = "Press any key to continue..."


@command("echo", spec=CommandSpec(options=(Option("n", "n", dest="no_newline"),), usage="[...]"))
async def echo(ctx: Context, opts: Parsed) -> None:
    ctx.console.write(" ".join(opts.args) + ("" if opts.no_newline else "\n"))


PROMPT_SPEC = CommandSpec(
    options=(Option("key", "k", parse_key), Option("timeout", "t", parse_timeout)),
    usage="[<text>]",
)


@command("prompt", spec=PROMPT_SPEC)
async def prompt(ctx: Context, opts: Parsed) -> None:
    text = " ".join(opts.args) if opts.args else DEFAULT_PROMPT
    ctx.console.write(text)
    timeout = opts.timeout / 1000 if opts.timeout else None
    pressed = await ctx.keys.get_key(timeout)
    ctx.console.write("\b \b" * len(text))
    if pressed is None:
        raise IpxeError(ERR_PROMPT_TIMEOUT)
    if opts.key is not None and pressed != opts.key:
        raise IpxeError(ERR_PROMPT_WRONG_KEY)


def help_table(names: Iterable[str]) -> str:
    """iPXE's table: 16-column cells, a new row once past column 64."""
    out = ["\nAvailable commands:\n\n"]
    column = 0
    for name in names:
        cell = f"  {name}"
        out.append(cell)
        column += len(cell)
        if column > 64:
            out.append("\n")
            column = 0
        else:
            pad = 16 - column % 16
            out.append(" " * pad)
            column += pad
    out.append('\n\nType "<command> --help" for further information\n\n')
    return "".join(out)


@command("help", spec=CommandSpec(parse=False))
async def help_(ctx: Context, opts: Parsed) -> None:
    """Arguments and options are ignored, as iPXE does."""
    ctx.console.write(help_table(COMMANDS))
