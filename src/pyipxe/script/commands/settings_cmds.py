"""set, clear, show, read, inc: the settings commands (reference §2.3)."""

from __future__ import annotations

from dataclasses import replace

from pyipxe.console.editline import read_line
from pyipxe.errors import IpxeError
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_integer, parse_timeout
from pyipxe.script.registry import command
from pyipxe.settings import types as stypes
from pyipxe.settings.store import ERR_NOT_FOUND, Setting, SettingsBlock
from pyipxe.settings.types import FormatError


def _parse_setting(ctx: Context, text: str, *, create: bool) -> tuple[SettingsBlock, Setting]:
    """Resolve a setting argument, printing iPXE's message when it names no block."""
    try:
        return ctx.settings.parse_name(text, create=create)
    except IpxeError:
        ctx.console.print(f'"{text}": invalid setting')
        raise


def _store_text(ctx: Context, block: SettingsBlock, setting: Setting, value: str) -> None:
    try:
        ctx.settings.store_text(block, setting, value)
    except IpxeError as error:
        ctx.console.print(f'Could not store "{setting.name}": {ctx.error_text(error)}')
        raise


@command("set", spec=CommandSpec(min_args=1, usage="<setting> <value>"))
async def set_(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=True)
    _store_text(ctx, block, setting, " ".join(opts.args[1:]))


@command("clear", spec=CommandSpec(min_args=1, max_args=1, usage="<setting>"))
async def clear(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=True)
    _store_text(ctx, block, setting, "")


SHOW_SPEC = CommandSpec(options=(Option("quiet", "q"),), min_args=1, max_args=1, usage="<setting>")


@command("show", spec=SHOW_SPEC)
async def show(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=False)
    found = ctx.settings.fetch(setting, block)
    try:
        if found is None:
            raise IpxeError(ERR_NOT_FOUND)
        try:
            value = found.type.format(found.data)
        except FormatError as error:
            raise IpxeError(error.site) from None
    except IpxeError as error:
        ctx.console.print(f'Could not find "{setting.name}": {ctx.error_text(error)}')
        raise
    ctx.console.print(value if opts.quiet else f"{found.display_name()} = {value}")


READ_SPEC = CommandSpec(options=(Option("timeout", "t", parse_timeout),), min_args=1, max_args=1,
                        usage="<setting>")


@command("read", spec=READ_SPEC)
async def read(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=True)
    found = ctx.settings.fetch(setting, block)
    current = ""
    if found is not None:
        setting = found.setting  # the edited value is stored back with its type
        try:
            current = found.type.format(found.data)
        except (ValueError, IpxeError):
            current = ""
    line = await read_line(ctx.console, ctx.keys, current, opts.timeout or 0)
    _store_text(ctx, block, setting, line)


@command("inc", spec=CommandSpec(min_args=1, max_args=2, usage="<setting> [<increment>]"))
async def inc(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=False)
    increment = parse_integer(opts.args[1], ctx.console) if len(opts.args) > 1 else 1
    value = 0
    found = ctx.settings.fetch(setting, block)
    if found is not None:
        setting = found.setting
        try:
            value = found.type.numerate(found.data)
        except (ValueError, IpxeError):
            value = 0  # iPXE treats an unreadable value as zero
    setting_type = setting.type or stypes.INT32
    try:
        ctx.settings.store(block, replace(setting, type=setting_type), setting_type.denumerate(value + increment))
    except IpxeError as error:
        ctx.console.print(f'Could not store "{setting.name}": {ctx.error_text(error)}')
        raise
