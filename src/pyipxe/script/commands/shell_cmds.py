"""shell, login, config, colour, cpair, console: the interactive side (reference §1.7, §3.4).

The shell reads lines with the line editor (history, and Tab completion of command
names, options, setting names and image names: a pyipxe extension, iPXE has none) and
runs each exactly like a script line. It prints nothing on failure; ``exit`` leaves it
with that status. Ctrl-C typed while a command runs interrupts that command (it fails
with ECANCELED), not the shell; typed at the prompt it discards the line, as in iPXE.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

from pyipxe.console.editline import ERR_TIMED_OUT, Completion, read_line
from pyipxe.console.form import login_ui
from pyipxe.console.settings_ui import settings_ui
from pyipxe.console.tui import Screen
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.script.commands.settings_cmds import _parse_setting
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Stop
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_integer, parse_string
from pyipxe.script.parser import split_commands
from pyipxe.script.registry import COMMANDS, command
from pyipxe.settings import predefined
from pyipxe.settings.store import SettingsBlock, predefined_settings

PROMPT = "iPXE> "
# usr/imgmgmt.c: Ctrl-C while a command runs (the code iPXE reports for an aborted job)
ERR_INTERRUPTED = ErrorSite(ErrorClass.ECANCELED, 0x0720)
# hci/commands/console_cmd.c: a colour or pair number out of range (site bits guessed)
ERR_BAD_COLOUR = ErrorSite(ErrorClass.EINVAL, 0x4D21)

#: commands whose arguments name images (completion offers image names)
IMAGE_COMMANDS = {"boot", "chain", "imgexec", "imgfree", "imgselect", "imgstat", "imgargs", "imgload", "imgverify",
                  "imgtrust", "imgextract", "kernel", "initrd", "module", "imgfetch", "certstore", "md5sum",
                  "sha1sum", "sha256sum"}
#: commands whose arguments name settings
SETTING_COMMANDS = {"set", "show", "clear", "read", "inc", "choose", "isset", "pciscan", "usbscan"}


# -- completion ----------------------------------------------------------------


def _walk(block: SettingsBlock) -> Iterator[SettingsBlock]:
    yield block
    for child in block.children:
        yield from _walk(child)


def setting_names(ctx: Context) -> list[str]:
    names = {setting.name for setting in predefined_settings()}
    for block in _walk(ctx.settings.root):
        path = block.path()
        if path:
            names.add(f"{path}/")
        for setting in block.local_settings():
            names.add(f"{path}/{setting.name}" if path else setting.name)
    return sorted(name for name in names if name)


def complete(ctx: Context, text: str, cursor: int) -> Completion:
    """Candidates for the word that ends at ``cursor`` (see the module docstring)."""
    head = text[:cursor]
    start = len(head) - len(head.split(" ")[-1]) if head else 0
    word = head[start:]
    expansion = word.rfind("${")
    if expansion >= 0 and "}" not in word[expansion:]:
        return Completion(start + expansion + 2, setting_names(ctx), suffix="}")
    last = split_commands(head[:start])[-1]  # the command being typed (operators end one)
    if not last.tokens:
        return Completion(start, list(COMMANDS))
    name = last.tokens[0]
    entry = COMMANDS.get(name)
    if word.startswith("-") and entry is not None:
        options = [f"--{option.long}" for option in entry.spec.options] + ["--help"]
        return Completion(start, options)
    candidates: list[str] = []
    if name in IMAGE_COMMANDS:
        candidates += [image.name for image in ctx.images.visible() if image.name]
    if name in SETTING_COMMANDS or name not in IMAGE_COMMANDS:
        candidates += setting_names(ctx)
    suffix = "" if len(candidates) and all(c.endswith("/") for c in candidates if c.startswith(word)) else " "
    return Completion(start, candidates, suffix=suffix)


# -- the shell -------------------------------------------------------------------


@contextlib.contextmanager
def _interrupts_cancel(task: asyncio.Task[int]) -> Iterator[None]:
    """While ``task`` runs, Ctrl-C (SIGINT on a raw-but-signalling terminal) cancels it."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread: no signals
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)


async def run_shell(ctx: Context) -> int:
    """iPXE's shell loop; returns the status of the line that ran ``exit`` (or 0 at end of input)."""
    interpreter = ctx.run()
    while True:
        try:
            line = await read_line(ctx.console, ctx.keys, prompt=PROMPT, history=ctx.ui.history,
                                   complete=lambda text, cursor: complete(ctx, text, cursor))
        except IpxeError as error:
            if error.site is ERR_TIMED_OUT:
                return 0  # no more keys can come: the input has ended
            continue  # Ctrl-C discards the line
        task = asyncio.ensure_future(interpreter.run_line(line, "shell"))
        with _interrupts_cancel(task):
            try:
                status = await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                status = ctx.code(IpxeError(ERR_INTERRUPTED))
                ctx.errno = abs(status)
        if interpreter.stopped(Stop.SEQUENCE):
            return status


@command("shell", spec=CommandSpec(max_args=0))
async def shell(ctx: Context, opts: Parsed) -> None:
    status = await run_shell(ctx)
    if status:
        raise IpxeError(raw=status)


# -- login, config -----------------------------------------------------------------


@command("login", spec=CommandSpec(max_args=0))
async def login(ctx: Context, opts: Parsed) -> None:
    username = ctx.settings.fetch_text("username")[:63]
    password = ctx.settings.fetch_text("password")[:63]
    with ctx.reporting("set credentials"):
        username, password = await login_ui(Screen(ctx.console, ctx.ui.palette), ctx.keys, username, password)
        root = ctx.settings.root
        ctx.settings.store_text(root, predefined.USERNAME, username)
        ctx.settings.store_text(root, predefined.PASSWORD, password)


@command("config", spec=CommandSpec(max_args=1, usage="[<scope>]"))
async def config(ctx: Context, opts: Parsed) -> None:
    block = ctx.settings.root
    if opts.args:
        block, _ = _parse_setting(ctx, f"{opts.args[0]}/x", create=False)
    await settings_ui(Screen(ctx.console, ctx.ui.palette), ctx.keys, ctx.settings, block,
                      interactive=ctx.keys.interactive or (not ctx.ui.non_interactive and not _no_keys(ctx)),
                      describe=ctx.error_text)


def _no_keys(ctx: Context) -> bool:
    from pyipxe.console.keys import NoKeys

    return isinstance(ctx.keys, NoKeys)


# -- colours and the console ---------------------------------------------------------


COLOUR_SPEC = CommandSpec(
    options=(Option("basic", "b", parse_integer), Option("rgb", "r", parse_integer)),
    min_args=1, max_args=1, usage="<colour>",
)


@command("colour", spec=COLOUR_SPEC)
async def colour(ctx: Context, opts: Parsed) -> None:
    number = parse_integer(opts.args[0], ctx.console)
    if not 0 <= number < 8 or (opts.basic is not None and not (0 <= opts.basic < 8 or opts.basic == 9)):
        raise IpxeError(ERR_BAD_COLOUR)
    rgb = opts.rgb & 0xFFFFFF if opts.rgb is not None else None
    ctx.ui.palette.define_colour(number, opts.basic, rgb)


CPAIR_SPEC = CommandSpec(
    options=(Option("foreground", "f", parse_integer), Option("background", "b", parse_integer)),
    min_args=1, max_args=1, usage="<cpair>",
)


@command("cpair", spec=CPAIR_SPEC)
async def cpair(ctx: Context, opts: Parsed) -> None:
    number = parse_integer(opts.args[0], ctx.console)
    for value in (opts.foreground, opts.background):
        if value is not None and not (0 <= value < 8 or value == 9):
            raise IpxeError(ERR_BAD_COLOUR)
    if not 0 <= number < 8:
        raise IpxeError(ERR_BAD_COLOUR)
    ctx.ui.palette.define_pair(number, opts.foreground, opts.background)


CONSOLE_SPEC = CommandSpec(
    options=(
        Option("x", "x", parse_integer), Option("y", "y", parse_integer),
        Option("left", "l", parse_integer), Option("right", "r", parse_integer),
        Option("top", "t", parse_integer), Option("bottom", "b", parse_integer),
        Option("depth", "d", parse_integer), Option("picture", "p", parse_string),
        Option("keep", "k"),
    ),
    max_args=0,
)


@command("console", spec=CONSOLE_SPEC)
async def console(ctx: Context, opts: Parsed) -> None:
    """A framebuffer's size, margins and background mean nothing on a text terminal:
    the options are checked and otherwise ignored (iPXE's text consoles do the same)."""
