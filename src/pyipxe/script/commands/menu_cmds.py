"""menu/form, item, choose, present: dynamic user interfaces (reference §3.4, §10).

Parsing lives here; drawing and keys live in :mod:`pyipxe.console.menu` and
:mod:`pyipxe.console.form`. A ``choose`` answered in advance (``pyipxe run --choose``)
still draws its menu, so a log shows what was offered.
"""

from __future__ import annotations

import sys

from pyipxe.console.dynui import DynamicUI
from pyipxe.console.form import show_form
from pyipxe.console.menu import ERR_NO_ITEMS, show_menu
from pyipxe.console.tui import Screen
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.script.commands.settings_cmds import _parse_setting, _store_text
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_key, parse_string, parse_timeout
from pyipxe.script.registry import command
from pyipxe.settings.types import FormatError

# core/parseopt.c parse_dynui (recorded: 0x2d16203b)
ERR_NO_SUCH_UI = ErrorSite(ErrorClass.ENOENT, 0x1620)


def find_ui(ctx: Context, name: str | None) -> DynamicUI:
    """The named user interface, or the default one; iPXE's messages when missing."""
    ui = ctx.ui.registry.find(name)
    if ui is None:
        ctx.console.print(f'"{name}": no such user interface' if name is not None else "No default user interface")
        raise IpxeError(ERR_NO_SUCH_UI)
    return ui


MENU_SPEC = CommandSpec(
    options=(Option("name", "n", parse_string), Option("delete", "d")),
    usage="[<title>]",
)


@command("menu", "form", spec=MENU_SPEC)
async def menu(ctx: Context, opts: Parsed) -> None:
    ui = ctx.ui.registry.create(opts.name, " ".join(opts.args))
    if opts.delete:
        ctx.ui.registry.destroy(ui)


ITEM_SPEC = CommandSpec(
    options=(
        Option("menu", "m", parse_string),
        Option("form", "f", parse_string),
        Option("key", "k", parse_key),
        Option("default", "d"),
        Option("secret", "s"),
        Option("gap", "g"),
    ),
    usage="[<name> [<text>]]",
)


@command("item", spec=ITEM_SPEC)
async def item(ctx: Context, opts: Parsed) -> None:
    args = list(opts.args)
    name = None if opts.gap or not args else args.pop(0)
    text = " ".join(args)
    ui = find_ui(ctx, opts.menu if opts.menu is not None else opts.form)
    ui.add(name, text, key=opts.key or 0, default=opts.default, secret=opts.secret)


CHOOSE_SPEC = CommandSpec(
    options=(
        Option("menu", "m", parse_string),
        Option("default", "d", parse_string),
        Option("timeout", "t", parse_timeout),
        Option("retimeout", "r", parse_timeout),
        Option("keep", "k"),
    ),
    min_args=1,
    max_args=1,
    usage="<setting>",
)


@command("choose", spec=CHOOSE_SPEC)
async def choose(ctx: Context, opts: Parsed) -> None:
    block, setting = _parse_setting(ctx, opts.args[0], create=True)
    ui = find_ui(ctx, opts.menu)
    try:
        select = opts.default
        preset = bool(ctx.ui.preselect)
        if preset:
            select = ctx.ui.preselect.popleft()
            if not any(entry.name == select for entry in ui.items):
                offered = " ".join(entry.name for entry in ui.items if entry.name is not None)
                print(f"pyipxe: --choose {select}: not in this menu (items: {offered})", file=sys.stderr)
                raise IpxeError(ERR_NO_ITEMS)
        chosen = await show_menu(
            Screen(ctx.console, ctx.ui.palette), ctx.keys, ui,
            timeout_ms=opts.timeout or 0, retimeout_ms=opts.retimeout or 0, select=select,
            choose_now=preset, sleep=ctx.ui.sleep, wait_out=not ctx.ui.non_interactive,
        )
        assert chosen.name is not None
        _store_text(ctx, block, setting, chosen.name)
    finally:
        if not opts.keep:
            ctx.ui.registry.destroy(ui)


PRESENT_SPEC = CommandSpec(options=(Option("form", "f", parse_string), Option("keep", "k")), max_args=0)


@command("present", spec=PRESENT_SPEC)
async def present(ctx: Context, opts: Parsed) -> None:
    ui = find_ui(ctx, opts.form)

    def current(name: str) -> str:
        try:
            block, setting = ctx.settings.parse_name(name, create=True)
        except IpxeError:
            return ""
        found = ctx.settings.fetch(setting, block)
        if found is None:
            return ""
        try:
            return found.type.format(found.data)
        except (FormatError, ValueError, IpxeError):
            return ""

    def store(name: str, text: str) -> str:
        bare = name.partition("/")[2] if "/" in name else name
        bare = bare.partition(":")[0]  # iPXE names the setting without scope or type
        try:
            block, setting = ctx.settings.parse_name(name, create=True)
            ctx.settings.store_text(block, setting, text)
        except IpxeError as error:
            return f"Could not store \"{bare}\": {ctx.error_text(error)}"
        except (FormatError, ValueError):
            return f"Could not store \"{bare}\""
        return ""

    values = {entry.name: current(entry.name) for entry in ui.items if entry.name is not None}
    try:
        await show_form(Screen(ctx.console, ctx.ui.palette), ctx.keys, ui, values, store)
    finally:
        if not opts.keep:
            ctx.ui.registry.destroy(ui)
