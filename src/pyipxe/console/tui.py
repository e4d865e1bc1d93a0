"""A tiny curses for full-screen UIs, writing exactly what iPXE's mucurses writes.

Why not the ``curses`` module: its output depends on terminfo and optimises redraws,
so neither a pipe's transcript nor a serial log would match iPXE's. iPXE's mucurses
is simple and predictable: a cursor move is written only when the next character is
not where the screen's cursor already is, an attribute change only when it changes,
``erase`` is ``ESC [ 2 J``, and ``endwin`` moves to the last line and prints a newline
before resetting. Doing the same keeps pyipxe's screens identical to iPXE's, cell for
cell (the pipe renderer in :mod:`pyipxe.console.screenmodel` turns them into text).

On a terminal the UI runs on the alternate screen, so the shell's scrollback survives
a menu; the size is the terminal's (iPXE lays out from ``COLS``/``LINES`` too).
"""

from __future__ import annotations

from pyipxe.console.output import Console
from pyipxe.console.palette import CPAIR_DEFAULT, Palette


class Screen:
    def __init__(self, console: Console, palette: Palette | None = None) -> None:
        self.console = console
        self.palette = palette or Palette()
        self.cols, self.lines = console.size()
        self.y = self.x = 0  # the window's cursor
        self._sy = self._sx = 0  # where the terminal's cursor is believed to be
        self.pair = CPAIR_DEFAULT
        self.bold = False
        self._shown: tuple[int, bool] = (CPAIR_DEFAULT, False)
        self._parts: list[str] = []

    # -- output -------------------------------------------------------------
    def _write(self, text: str) -> None:
        self._parts.append(text)

    def refresh(self) -> None:
        """Send what was drawn (once per key, so a terminal sees whole frames)."""
        if self._parts:
            self.console.write("".join(self._parts))
            self._parts = []

    def _attrs(self) -> None:
        wanted = (self.pair, self.bold)
        if wanted != self._shown:
            self._shown = wanted
            self._write(self.palette.sgr(self.pair, self.bold, colour=self.console.colour))

    def _reset(self) -> None:
        self._shown = (CPAIR_DEFAULT, False)
        self._sy = self._sx = 0
        self._write("\x1b[0m\x1b[2J")

    def _sync_cursor(self) -> None:
        if (self.y, self.x) != (self._sy, self._sx):
            self._write(f"\x1b[{self.y + 1};{self.x + 1}H")
            self._sy, self._sx = self.y, self.x

    def _putc(self, char: str) -> None:
        self._sync_cursor()
        self._attrs()
        self._write(char)
        self._sx += 1
        if self._sx == self.cols:
            self._sx = 0
            self._sy += 1
        self.x += 1
        if self.x == self.cols:
            self.x = 0
            self.y = (self.y + 1) % self.lines

    # -- curses calls ---------------------------------------------------------
    def initscr(self) -> None:
        if self.console.is_tty:
            self._write("\x1b[?1049h")
        self._reset()
        self.move(0, 0)

    def endwin(self) -> None:
        self.bold = False
        self.pair = CPAIR_DEFAULT
        self.curs_set(True)
        self.move(self.lines - 1, 0)
        self.addstr("\n")
        self._reset()
        if self.console.is_tty:
            self._write("\x1b[?1049l")
        self.refresh()

    def move(self, y: int, x: int) -> None:
        if not (0 <= y < self.lines and 0 <= x < self.cols):
            return
        self.y, self.x = y, x
        self._sync_cursor()

    def addstr(self, text: str) -> None:
        for char in text:
            self._putc(char)

    def mvaddstr(self, y: int, x: int, text: str) -> None:
        self.move(y, x)
        self.addstr(text)

    def clrtoeol(self) -> None:
        y, x = self.y, self.x
        while self.y == y:
            self._putc(" ")
        self.move(y, x)

    def erase(self) -> None:
        self._attrs()
        self._write("\x1b[2J")

    def curs_set(self, visible: bool) -> None:
        self._write("\x1b[?25h" if visible else "\x1b[?25l")
