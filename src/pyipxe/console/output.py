"""Console output: iPXE's text, raw on a terminal, rendered on a pipe.

Why two modes: iPXE redraws with backspaces and carriage returns (``prompt`` erases its
own text, progress percentages overwrite each other). A terminal shows that live; a
pipe or a log file should get the text a person would have *seen*, which is also what
the real iPXE's transcripts contain. So without a TTY the console applies backspace, CR
and overwrite to the current line and emits each finished line once.

Full-screen UIs (menus, forms) write ANSI cursor moves; on a pipe the console keeps a
model of iPXE's 80x25 screen (:mod:`pyipxe.console.screenmodel`) and emits its rows.

Rules: all console text goes through :class:`Console`; pyipxe's own diagnostics go to
stderr, never here. Text is str; bytes that were not UTF-8 in a script travel as
surrogate escapes and are written back as the original bytes.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from pyipxe.console.screenmodel import COLS, ROWS, ScreenRenderer


class LineRenderer:
    """One terminal line: a cursor, cells, and which cells were erased."""

    def __init__(self) -> None:
        self._cells: list[str] = []
        self._erased: list[bool] = []
        self._cursor = 0

    def feed(self, text: str) -> str:
        """Apply ``text``; return the finished lines it completed (each ending in LF)."""
        done: list[str] = []
        for char in text:
            if char == "\n":
                done.append(self.take() + "\n")
            elif char == "\r":
                self._cursor = 0
            elif char == "\b":
                self._cursor = max(0, self._cursor - 1)
            else:
                self._put(" " if char == "\0" else char)  # a NUL shows as a blank cell
        return "".join(done)

    def _put(self, char: str) -> None:
        if self._cursor < len(self._cells):
            # A space written over a character erases it (``\b \b``).
            self._erased[self._cursor] = char == " "
            self._cells[self._cursor] = char
        else:
            self._cells.append(char)
            self._erased.append(False)
        self._cursor += 1

    def take(self) -> str:
        """The line as shown, erased cells at its end dropped; resets the line."""
        end = len(self._cells)
        while end and self._erased[end - 1]:
            end -= 1
        line = "".join(self._cells[:end])
        self._cells, self._erased, self._cursor = [], [], 0
        return line


class Console:
    """Where iPXE's console text goes."""

    def __init__(self, stream: BinaryIO | None = None, *, tty: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        if tty is None:
            try:
                tty = self._stream.isatty()
            except (ValueError, OSError):
                tty = False
        self.is_tty = tty
        # On a pipe: the text iPXE's 80x25 screen showed (full-screen UIs included).
        self._renderer = None if tty else ScreenRenderer()
        #: whether the terminal shows colour (``colour``/``cpair`` apply); only on a TTY
        self.colour = tty and os.environ.get("NO_COLOR", "") == "" and os.environ.get("TERM", "") != "dumb"

    def size(self) -> tuple[int, int]:
        """(columns, lines): the terminal's on a TTY, iPXE's 80x25 elsewhere."""
        if self.is_tty:
            try:
                columns, lines = os.get_terminal_size(self._stream.fileno())
                if columns >= 40 and lines >= 12:
                    return columns, lines
            except (OSError, ValueError, AttributeError):
                pass
        return COLS, ROWS

    def write(self, text: str) -> None:
        if self._renderer is not None:
            text = self._renderer.feed(text)
            if not text:
                return
        self._stream.write(text.encode("utf-8", "surrogateescape"))
        if self.is_tty:
            self._stream.flush()

    def print(self, text: str = "") -> None:
        self.write(text + "\n")

    def close(self) -> None:
        """Emit a last unfinished line (``echo -n`` at the very end) and flush."""
        if self._renderer is not None:
            rest = self._renderer.finish()
            if rest:
                self._stream.write(rest.encode("utf-8", "surrogateescape"))
        self._stream.flush()
