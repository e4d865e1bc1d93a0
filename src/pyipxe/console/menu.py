"""The menu that ``choose`` shows: iPXE's full-screen menu, key for key and cell for cell.

Layout (reference §10): the title bold and centred on row 1; items from row 3, one bar
of screen width − 2 each, text indented two columns; gaps in the separator colour;
``...`` above or below when the list continues off screen (jump scrolling, a page at a
time); the selected bar in the selected colour with the countdown ``(N)`` at its right
while a timeout runs.

Behaviour: the timeout is counted down a second at a time and the selected bar redrawn
each second; any key stops it (or restarts it from ``--retimeout``); the countdown
reaching zero chooses the selected item. Up/Down/PgUp/PgDn/Home/End move (gaps are
skipped), Tab moves down and wraps, Enter chooses, Esc/Ctrl-C cancel, a shortcut key
selects its item and chooses it (a gap's shortcut moves to the item after it).

When no key can ever arrive (a pipe, scripted keys used up) a wait without a timeout
chooses the selection at once, and a timeout is waited out in real time unless the
session is non-interactive.
"""

from __future__ import annotations

import asyncio
import time

from pyipxe.console import keys as k
from pyipxe.console.dynui import DynamicItem, DynamicUI, Sleeper
from pyipxe.console.keys import KeySource
from pyipxe.console.palette import CPAIR_NORMAL, CPAIR_SELECT, CPAIR_SEPARATOR
from pyipxe.console.tui import Screen
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# hci/tui/menu_ui.c (as recorded from the real iPXE: 0x2d2ce03b, 0x0b2ce0a0)
ERR_NO_ITEMS = ErrorSite(ErrorClass.ENOENT, 0x2CE0)
ERR_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x2CE0)

TITLE_ROW = 1
MENU_ROW = 3
MENU_COL = 1
MENU_PAD = 2
TAB = 0x09
TICKS = 1000  # the countdown runs in milliseconds


class JumpScroller:
    """Selection and first visible row of a list shown a page at a time."""

    def __init__(self, rows: int, count: int, current: int) -> None:
        self.rows, self.count, self.current, self.first = rows, count, current, 0

    def key_move(self, key: int) -> int:
        if key == k.KEY_UP:
            return -1
        if key == k.KEY_DOWN:
            return +1
        if key == k.KEY_PPAGE:
            return self.first - self.current - 1
        if key == k.KEY_NPAGE:
            return self.first - self.current + self.rows
        if key == k.KEY_HOME:
            return -self.count
        if key == k.KEY_END:
            return self.count
        return 0

    def move(self, move: int) -> int:
        """Apply ``move``; return the step that keeps going in the same direction (past gaps)."""
        target = self.current + move
        if target < 0:
            self.current = 0
            return +1
        if target > self.count - 1:
            self.current = self.count - 1
            return -1
        self.current = target
        return +1 if move > 0 else -1

    def jump(self) -> bool:
        """Move to the page holding the selection; True if the page changed."""
        if 0 <= self.current - self.first < self.rows:
            return False
        while self.first < self.current:
            self.first += self.rows
        while self.first > self.current:
            self.first -= self.rows
        return True

    def is_first(self) -> bool:
        return self.first == 0

    def is_last(self) -> bool:
        return self.first + self.rows >= self.count


def initial_selection(ui: DynamicUI, select: str | None) -> int | None:
    """The item selected when the menu opens (None: nothing can be chosen)."""
    current: int | None = None
    for item in ui.items:
        if item.name is None:
            continue
        if current is None:
            current = item.index
        if select is not None:
            if item.name == select:
                current = item.index
        elif item.default:
            current = item.index
    return current


class MenuView:
    def __init__(self, screen: Screen, ui: DynamicUI, current: int, timeout_ms: int) -> None:
        self.screen = screen
        self.ui = ui
        self.rows = max(1, screen.lines - 2 - MENU_ROW)
        self.width = screen.cols - 2
        self.scroll = JumpScroller(self.rows, len(ui.items), current)
        self.timeout = timeout_ms

    def draw_item(self, index: int) -> None:
        screen = self.screen
        row = MENU_ROW + index - self.scroll.first
        screen.move(row, MENU_COL)
        item = self.ui.items[index] if 0 <= index < len(self.ui.items) else None
        if item is None:
            screen.clrtoeol()
        else:
            if item.name is None:
                screen.pair = CPAIR_SEPARATOR
            if index == self.scroll.current:
                screen.pair, screen.bold = CPAIR_SELECT, True
            text = item.text[: max(0, self.width - 2 * MENU_PAD)]
            bar = list(" " * MENU_PAD + text + " " * (self.width - MENU_PAD - len(text)))
            if index == self.scroll.current and self.timeout:
                countdown = f"({(self.timeout + TICKS - 1) // TICKS})"[:5]
                start = self.width - MENU_PAD - len(countdown)
                bar[start : start + len(countdown)] = countdown
            screen.addstr("".join(bar))
            screen.pair, screen.bold = CPAIR_NORMAL, False
        screen.move(row, MENU_COL)

    def draw_items(self) -> None:
        screen = self.screen
        screen.pair = CPAIR_SEPARATOR
        screen.mvaddstr(MENU_ROW - 1, MENU_COL + MENU_PAD, "   " if self.scroll.is_first() else "...")
        screen.mvaddstr(MENU_ROW + self.rows, MENU_COL + MENU_PAD, "   " if self.scroll.is_last() else "...")
        screen.pair = CPAIR_NORMAL
        for offset in range(self.rows):
            self.draw_item(self.scroll.first + offset)

    def draw(self) -> None:
        screen = self.screen
        screen.bold = True
        title = self.ui.title[: self.width]
        screen.mvaddstr(TITLE_ROW, (screen.cols - len(title)) // 2, title)
        screen.bold = False
        self.scroll.jump()
        self.draw_items()
        self.draw_item(self.scroll.current)


async def _get_key(keys: KeySource, wait_ms: int, sleep: Sleeper, wait_out: bool) -> int | None:
    """A key, or None after ``wait_ms`` (0: no limit). A source that can never deliver a
    key answers at once; the rest of a timed wait is then slept when ``wait_out``."""
    started = time.monotonic()
    key = await keys.get_key(wait_ms / 1000 if wait_ms else None)
    if key is None and wait_ms and wait_out and not keys.interactive:
        remaining = wait_ms / 1000 - (time.monotonic() - started)
        if remaining > 0:
            await sleep(remaining)
    return key


async def show_menu(screen: Screen, keys: KeySource, ui: DynamicUI, *, timeout_ms: int = 0,
                    retimeout_ms: int = 0, select: str | None = None, choose_now: bool = False,
                    sleep: Sleeper | None = None, wait_out: bool = True) -> DynamicItem:
    """Show ``ui`` as a menu; return the chosen item or raise ECANCELED / ENOENT.

    ``choose_now`` draws the menu and takes the initial selection without waiting
    (answers preset for automation).
    """
    current = initial_selection(ui, select)
    if current is None:
        raise IpxeError(ERR_NO_ITEMS)
    view = MenuView(screen, ui, current, 0 if choose_now else timeout_ms)
    screen.initscr()
    screen.pair = CPAIR_NORMAL
    screen.curs_set(False)
    screen.erase()
    view.draw()
    screen.refresh()
    try:
        if choose_now:
            return ui.items[view.scroll.current]
        return await _menu_loop(view, keys, retimeout_ms, sleep or asyncio.sleep, wait_out)
    finally:
        screen.endwin()


async def _menu_loop(view: MenuView, keys: KeySource, retimeout_ms: int, sleep: Sleeper,
                     wait_out: bool) -> DynamicItem:
    scroll, ui, screen = view.scroll, view.ui, view.screen
    while True:
        previous = scroll.current
        wait = view.timeout % TICKS
        if wait == 0 and view.timeout:
            wait = TICKS
        view.timeout -= wait
        move = 0
        chosen = cancelled = False
        key = await _get_key(keys, wait, sleep, wait_out)
        if key is None:
            chosen = view.timeout == 0
        else:
            view.timeout = retimeout_ms
            move = scroll.key_move(key)
            if key in (k.ESC, k.CTRL_C):
                cancelled = True
            elif key in (k.CR, k.LF):
                chosen = True
            elif key == TAB:
                if scroll.current < scroll.count - 1:
                    move = +1
                else:
                    scroll.current = 0
                    move = +1 if ui.items[0].name is None else 0
            elif move == 0:
                item = ui.shortcut(key, scroll.current + 1)
                if item is not None:
                    scroll.current = item.index
                    if item.name is not None:
                        chosen = True
                    else:
                        move = +1
        while move:
            move = scroll.move(move)
            if ui.items[scroll.current].name is not None:
                break
        if scroll.current != previous or wait:
            view.draw_item(previous)
            if scroll.jump():
                view.draw_items()
            view.draw_item(scroll.current)
        screen.refresh()
        if cancelled:
            raise IpxeError(ERR_CANCELED)
        if chosen:
            return ui.items[scroll.current]
