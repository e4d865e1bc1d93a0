"""Dynamic user interfaces: what ``menu``/``form`` create and ``item`` fills (iPXE's dynui).

Why one object for menus and forms: iPXE 2.0 made them one thing (``menu`` = ``form``);
``choose`` shows it as a menu, ``present`` as a form. Items are kept in order; an item
without a name is a gap (a non-selectable line).

This module also holds the console state of one session that outlives a command:
the user interfaces by name, answers preset for automation (``pyipxe run --choose``),
the shell's history and the colour palette. The script context owns one
:class:`UiState`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pyipxe.console.palette import Palette


@dataclass
class DynamicItem:
    name: str | None  # None: a gap
    text: str
    key: int = 0  # shortcut key code (0: none)
    default: bool = False
    secret: bool = False
    index: int = 0


@dataclass
class DynamicUI:
    name: str | None  # None: the default user interface
    title: str
    items: list[DynamicItem] = field(default_factory=list)

    def add(self, name: str | None, text: str, *, key: int = 0, default: bool = False,
            secret: bool = False) -> DynamicItem:
        item = DynamicItem(name, text, key, default, secret, len(self.items))
        self.items.append(item)
        return item

    def shortcut(self, key: int, start: int = 0) -> DynamicItem | None:
        """The next item with shortcut ``key``, searching from ``start`` and wrapping."""
        count = len(self.items)
        for offset in range(count):
            item = self.items[(start + offset) % count]
            if item.key and item.key == key:
                return item
        return None


class UiRegistry:
    """User interfaces by name; creating one replaces a same-named one (iPXE's create_dynui)."""

    def __init__(self) -> None:
        self._uis: dict[str | None, DynamicUI] = {}

    def create(self, name: str | None, title: str) -> DynamicUI:
        ui = DynamicUI(name, title)
        self._uis[name] = ui
        return ui

    def find(self, name: str | None) -> DynamicUI | None:
        return self._uis.get(name)

    def destroy(self, ui: DynamicUI) -> None:
        if self._uis.get(ui.name) is ui:
            del self._uis[ui.name]


Sleeper = Callable[[float], Awaitable[None]]


@dataclass
class UiState:
    """The console state of one session (see the module docstring)."""

    registry: UiRegistry = field(default_factory=UiRegistry)
    #: answers for ``choose``, consumed in order (``pyipxe run --choose``)
    preselect: deque[str] = field(default_factory=deque)
    #: no person will type: timeouts expire at once instead of being waited out
    non_interactive: bool = False
    #: shell history, oldest first (non-empty lines only)
    history: list[str] = field(default_factory=list)
    palette: Palette = field(default_factory=Palette)
    #: how waits without keys are spent (tests pass a fake clock)
    sleep: Sleeper = asyncio.sleep
