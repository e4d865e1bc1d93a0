"""``config``: a full-screen editor over the settings tree, laid out like iPXE's.

Layout (reference §3.4): title ``iPXE configuration settings`` on row 1; the current
block's child blocks (``name/``, and ``../`` below the root) then its applicable
settings as ``name.......... value`` from row 3, jump-scrolled with ``...`` markers; an
info line ``<name> - <description>`` with ``https://ipxe.org/cfg/<name>``; the key hints
at the bottom. Enter on a block opens it; Enter on a setting edits its value in place
(Enter stores it parsed with its type, Ctrl-C discards); Ctrl-D deletes; Ctrl-X leaves.

When nobody can type (no terminal, no scripted keys) the editor cannot be used; the
settings are printed instead, one ``show`` line each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from pyipxe.console import keys as k
from pyipxe.console.form import EditBox
from pyipxe.console.keys import KeySource
from pyipxe.console.menu import JumpScroller
from pyipxe.console.palette import CPAIR_ALERT, CPAIR_EDIT, CPAIR_NORMAL, CPAIR_SELECT, CPAIR_SEPARATOR, CPAIR_URL
from pyipxe.console.tui import Screen
from pyipxe.errors import IpxeError
from pyipxe.settings.store import Setting, SettingsBlock, SettingsTree, predefined_settings
from pyipxe.settings.types import FormatError

TITLE_ROW = 1
LIST_ROW = 3
LIST_COL = 1
NAME_WIDTH = 15
CTRL_D = 0x04
CTRL_X = 0x18


@dataclass
class Entry:
    label: str
    block: SettingsBlock | None = None  # a block to open
    setting: Setting | None = None


def _value(tree: SettingsTree, block: SettingsBlock, setting: Setting) -> str | None:
    found = tree.fetch(setting, block)
    if found is None:
        return None
    try:
        return found.type.format(found.data)
    except (FormatError, ValueError, IpxeError):
        return None


def entries(block: SettingsBlock) -> list[Entry]:
    result: list[Entry] = []
    if block.parent is not None:
        result.append(Entry("../", block=block.parent))
    result += [Entry(f"{child.name}/", block=child) for child in block.children]
    seen: set[str] = set()
    for setting in [*predefined_settings(), *block.local_settings()]:
        if setting.name in seen or not setting.name or not block.applies(setting):
            continue
        seen.add(setting.name)
        result.append(Entry(setting.name, setting=setting))
    return result


def print_settings(screen: Screen, tree: SettingsTree) -> None:
    """The fallback without a keyboard: every stored setting as ``show`` prints it."""
    def walk(block: SettingsBlock) -> None:
        for setting in block.local_settings():
            found = tree.fetch(setting, block)
            if found is not None and found.origin is block:
                try:
                    value = found.type.format(found.data)
                except (FormatError, ValueError, IpxeError):
                    continue
                screen.console.print(f"{found.display_name()} = {value}")
        for child in block.children:
            walk(child)

    walk(tree.root)


class SettingsView:
    def __init__(self, screen: Screen, tree: SettingsTree, block: SettingsBlock,
                 describe: Callable[[IpxeError], str]) -> None:
        self.screen, self.tree, self.describe = screen, tree, describe
        self.rows = max(1, screen.lines - LIST_ROW - 6)
        self.width = screen.cols - 2
        self.open(block)
        self.message = ""

    def open(self, block: SettingsBlock) -> None:
        self.block = block
        self.entries = entries(block)
        self.scroll = JumpScroller(self.rows, max(1, len(self.entries)), 0)

    def row_text(self, entry: Entry) -> str:
        if entry.setting is None:
            text = f" {entry.label}"
        else:
            value = _value(self.tree, self.block, entry.setting)
            name = entry.label[:NAME_WIDTH]
            text = f" {name}{'.' * (NAME_WIDTH - len(name))} {'<not specified>' if value is None else value}"
        return text[: self.width].ljust(self.width)

    def draw_row(self, index: int) -> None:
        screen = self.screen
        row = LIST_ROW + index - self.scroll.first
        screen.move(row, LIST_COL)
        if index >= len(self.entries):
            screen.clrtoeol()
            return
        entry = self.entries[index]
        screen.bold = entry.setting is None
        if index == self.scroll.current:
            screen.pair, screen.bold = CPAIR_SELECT, True
        screen.addstr(self.row_text(entry))
        screen.pair, screen.bold = CPAIR_NORMAL, False
        screen.move(row, LIST_COL)

    def draw(self) -> None:
        screen = self.screen
        screen.pair = CPAIR_NORMAL
        screen.erase()
        screen.bold = True
        title = "iPXE configuration settings" + (f" - {self.block.path()}" if self.block.path() else "")
        screen.mvaddstr(TITLE_ROW, (screen.cols - len(title)) // 2, title)
        screen.bold = False
        self.scroll.jump()
        screen.pair = CPAIR_SEPARATOR
        screen.mvaddstr(LIST_ROW - 1, LIST_COL + 1, "   " if self.scroll.is_first() else "...")
        screen.mvaddstr(LIST_ROW + self.rows, LIST_COL + 1, "   " if self.scroll.is_last() else "...")
        screen.pair = CPAIR_NORMAL
        for offset in range(self.rows):
            self.draw_row(self.scroll.first + offset)
        self.draw_info()

    def draw_info(self) -> None:
        screen = self.screen
        base = LIST_ROW + self.rows + 1
        for row in range(base, screen.lines):
            screen.move(row, 0)
            screen.clrtoeol()
        entry = self.entries[self.scroll.current] if self.entries else None
        if self.message:
            screen.pair = CPAIR_ALERT
            screen.mvaddstr(base, (screen.cols - len(self.message[: screen.cols])) // 2, self.message[: screen.cols])
        elif entry is not None and entry.setting is not None:
            info = f"{entry.setting.name} - {entry.setting.description or 'Setting'}"[: screen.cols]
            screen.mvaddstr(base, (screen.cols - len(info)) // 2, info)
            url = f"https://ipxe.org/cfg/{entry.setting.name}"[: screen.cols]
            screen.pair = CPAIR_URL
            screen.mvaddstr(base + 1, (screen.cols - len(url)) // 2, url)
        screen.pair = CPAIR_NORMAL
        hints = "Ctrl-D - delete setting" if entry is not None and entry.setting is not None else ""
        if hints:
            screen.mvaddstr(screen.lines - 2, (screen.cols - len(hints)) // 2, hints)
        final = "Ctrl-X - exit configuration utility"
        screen.mvaddstr(screen.lines - 1, (screen.cols - len(final)) // 2, final)
        if entry is not None:
            screen.move(LIST_ROW + self.scroll.current - self.scroll.first, LIST_COL)

    def move_to(self, index: int) -> None:
        previous = self.scroll.current
        self.scroll.current = index
        self.draw_row(previous)
        if self.scroll.jump():
            self.draw()
        else:
            self.draw_row(index)
            self.draw_info()


async def _edit(view: SettingsView, keys: KeySource, entry: Entry) -> None:
    """Edit one value in place; store it on Enter, drop it on Ctrl-C."""
    assert entry.setting is not None
    screen = view.screen
    row = LIST_ROW + view.scroll.current - view.scroll.first
    col = LIST_COL + 1 + NAME_WIDTH + 1
    current = _value(view.tree, view.block, entry.setting) or ""
    box = EditBox(current, row, col, max(1, view.width - NAME_WIDTH - 2), limit=255)
    while True:
        screen.pair = CPAIR_EDIT
        box.draw(screen)
        screen.refresh()
        key = await keys.get_key(None)
        if key is None or key in (k.CTRL_C, k.ESC):
            break
        if key in (k.CR, k.LF):
            try:
                view.tree.store_text(view.block, entry.setting, box.text)
                view.message = ""
            except IpxeError as error:
                view.message = f"Could not store \"{entry.setting.name}\": {view.describe(error)}"
            except (FormatError, ValueError):
                view.message = f"Could not store \"{entry.setting.name}\""
            break
        box.edit(key)
    screen.pair = CPAIR_NORMAL
    view.draw()


async def settings_ui(screen: Screen, keys: KeySource, tree: SettingsTree, block: SettingsBlock, *,
                      interactive: bool, describe: Callable[[IpxeError], str]) -> None:
    if not interactive:
        print_settings(screen, tree)
        return
    view = SettingsView(screen, tree, block, describe)
    screen.initscr()
    screen.curs_set(True)
    view.draw()
    try:
        while True:
            screen.refresh()
            key = await keys.get_key(None)
            if key is None or key == CTRL_X:
                return
            entry = view.entries[view.scroll.current] if view.entries else None
            move = view.scroll.key_move(key)
            if move:
                target = max(0, min(view.scroll.count - 1, view.scroll.current + move))
                view.message = ""
                view.move_to(target)
            elif key in (k.CR, k.LF) and entry is not None:
                if entry.block is not None:
                    view.open(entry.block)
                    view.message = ""
                    view.draw()
                else:
                    await _edit(view, keys, entry)
            elif key == CTRL_D and entry is not None and entry.setting is not None:
                with contextlib.suppress(IpxeError):
                    tree.store(view.block, entry.setting, None)
                view.draw()
    finally:
        screen.endwin()
