"""The command table: every command registers itself here, by decorator.

Why a table: as in iPXE's ``__command`` linker table, nothing keeps a hand-written list
of commands; the shell, scripts, ``help``, ``pyipxe check`` and completion all read this
one table. Command modules are imported by :func:`load_commands`, so adding a family is
adding a module to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyipxe.script.options import CommandSpec, Parsed

if TYPE_CHECKING:
    from pyipxe.script.context import Context

Handler = Callable[["Context", Parsed], Awaitable[None]]


@dataclass(frozen=True)
class CommandEntry:
    name: str
    spec: CommandSpec
    handler: Handler


COMMANDS: dict[str, CommandEntry] = {}

COMMAND_MODULES = (
    "pyipxe.script.commands.console_cmds",
    "pyipxe.script.commands.flow",
    "pyipxe.script.commands.settings_cmds",
    "pyipxe.script.commands.image_cmds",
    "pyipxe.script.commands.params_cmds",
    "pyipxe.script.commands.net_cmds",
    "pyipxe.script.commands.menu_cmds",
    "pyipxe.script.commands.shell_cmds",
    "pyipxe.script.commands.trust_cmds",
    "pyipxe.script.commands.autoboot_cmds",
)


def command(*names: str, spec: CommandSpec | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler`` under each of ``names`` (aliases share options and code)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = CommandEntry(name, spec or CommandSpec(), handler)
        return handler

    return register


def load_commands() -> dict[str, CommandEntry]:
    """The table in ``COMMAND_MODULES`` order (as ``help`` lists it), whatever imported what first."""
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    rank = {module: index for index, module in enumerate(COMMAND_MODULES)}
    ordered = sorted(COMMANDS.values(), key=lambda entry: rank.get(entry.handler.__module__, len(rank)))
    COMMANDS.clear()
    COMMANDS.update((entry.name, entry) for entry in ordered)
    return COMMANDS
