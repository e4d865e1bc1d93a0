"""Key input: iPXE's key codes, and where keys come from (a terminal, a script, nowhere).

Why key codes as integers: commands compare keys with ``--key`` values given as numbers
(``0x02`` for Ctrl-B, ``0x147e`` for F8), so pyipxe uses iPXE's numbering: characters
are their code point, special keys are ``0x110000 + KEY_ANSI(n, terminator)`` as decoded
from ANSI escape sequences.

Rules: a key source never blocks without a timeout when no key can ever arrive (a pipe,
the end of scripted input): it answers "no key" at once, which commands treat as their
timeout. That is what "without a TTY, prompt behaves as a timeout" means.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import select
import sys
import termios
import tty
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

CTRL_B = 0x02
CTRL_C = 0x03
ESC = 0x1B
BACKSPACE = 0x08
DELETE_ASCII = 0x7F
CR = 0x0D
LF = 0x0A
SPECIAL_BASE = 0x110000


def key_ansi(n: int, terminator: str) -> int:
    """iPXE's KEY_ANSI: the code of ``ESC [ n terminator``, above the Unicode range."""
    return SPECIAL_BASE + 0x100 * (n + 1) + ord(terminator)


KEY_UP = key_ansi(0, "A")
KEY_DOWN = key_ansi(0, "B")
KEY_RIGHT = key_ansi(0, "C")
KEY_LEFT = key_ansi(0, "D")
KEY_END = key_ansi(0, "F")
KEY_HOME = key_ansi(0, "H")
KEY_DC = key_ansi(3, "~")
KEY_PPAGE = key_ansi(5, "~")
KEY_NPAGE = key_ansi(6, "~")


#: what other terminals send for Home and End (VT220 / rxvt / tmux): iPXE's codes
TERMINAL_ALIASES = {
    key_ansi(1, "~"): KEY_HOME,
    key_ansi(7, "~"): KEY_HOME,
    key_ansi(4, "~"): KEY_END,
    key_ansi(8, "~"): KEY_END,
}


def key_from_option(value: int) -> int:
    """Interpret a numeric ``--key`` value: non-ASCII numbers name special keys."""
    if 0x80 <= value < SPECIAL_BASE:
        return value + SPECIAL_BASE
    return value


def decode_keys(text: str) -> Iterator[int]:
    """Turn typed text (escape sequences included) into key codes."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\x1b" and index + 1 < len(text) and text[index + 1] in "[O":
            end = index + 2
            while end < len(text) and (text[end].isdigit() or text[end] == ";"):
                end += 1
            if end < len(text):
                digits = text[index + 2 : end].split(";")[0]
                code = key_ansi(int(digits) if digits else 0, text[end])
                yield TERMINAL_ALIASES.get(code, code)
                index = end + 1
                continue
        if char == "\x1b" and index + 1 < len(text) and text[index + 1].isalpha():
            # ESC <letter> is how serial terminals send Ctrl-<letter>.
            yield ord(text[index + 1].upper()) - 0x40
            index += 2
            continue
        # iPXE's consoles deliver Enter as LF whichever of CR or LF the terminal sends.
        yield LF if char == "\r" else ord(char)
        index += 1


class KeySource(Protocol):
    async def get_key(self, timeout: float | None) -> int | None:
        """Next key, or None when ``timeout`` seconds pass (or no key can ever come)."""

    def pending(self) -> list[int]:
        """Keys already typed, consumed (iPXE's sleep and downloads eat them)."""

    @property
    def interactive(self) -> bool:
        """Whether a person can type (so waiting for a key makes sense)."""


class NoKeys:
    """A pipe or /dev/null: no key will ever arrive."""

    interactive = False

    async def get_key(self, timeout: float | None) -> int | None:
        return None

    def pending(self) -> list[int]:
        return []


class ScriptedKeys:
    """Keys given up front (``pyipxe run --input``), typed as the script starts."""

    interactive = False

    def __init__(self, text: str) -> None:
        self._keys: deque[int] = deque(decode_keys(text))

    async def get_key(self, timeout: float | None) -> int | None:
        return self._keys.popleft() if self._keys else None

    def pending(self) -> list[int]:
        keys = list(self._keys)
        self._keys.clear()
        return keys


class TerminalKeys:
    """A real terminal: raw keys read from stdin through the event loop."""

    interactive = True

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer: deque[int] = deque()
        self._session_saved: list[Any] | None = None

    def hold_raw(self) -> None:
        """Keep the terminal raw for the whole session, as iPXE's console always is.

        Keys typed while a command runs are then neither echoed by the terminal nor
        stuck in its line buffer; they wait, unechoed, for the next prompt (or a
        download's Ctrl-C check). :meth:`release` restores the terminal.
        """
        if self._session_saved is None:
            saved = termios.tcgetattr(self._fd)
            self._set_raw(signals=True)  # Ctrl-C still interrupts a runaway goto loop
            self._session_saved = saved

    def release(self) -> None:
        if self._session_saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._session_saved)
            self._session_saved = None

    def _set_raw(self, *, signals: bool = False) -> None:
        tty.setcbreak(self._fd, termios.TCSANOW)  # never TCSAFLUSH: keys typed ahead must survive
        attrs = termios.tcgetattr(self._fd)
        if signals:
            attrs[3] |= termios.ISIG
        else:
            attrs[3] &= ~termios.ISIG  # Ctrl-C arrives as a key, as on iPXE's console
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)

    @contextlib.contextmanager
    def _raw(self) -> Iterator[None]:
        saved = termios.tcgetattr(self._fd)
        try:
            self._set_raw()
            yield
        finally:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _read_available(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except BlockingIOError:
            return
        text = self._decoder.decode(data)
        self._buffer.extend(decode_keys(text))

    async def get_key(self, timeout: float | None) -> int | None:
        if self._buffer:
            return self._buffer.popleft()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        with self._raw():
            loop.add_reader(self._fd, on_readable)
            try:
                await asyncio.wait_for(ready, timeout)
            except TimeoutError:
                return None
            finally:
                loop.remove_reader(self._fd)
            self._read_available()
        return self._buffer.popleft() if self._buffer else None

    def pending(self) -> list[int]:
        with self._raw():
            while select.select([self._fd], [], [], 0)[0]:
                before = len(self._buffer)
                self._read_available()
                if len(self._buffer) == before:
                    break
        keys = list(self._buffer)
        self._buffer.clear()
        return keys


def default_key_source() -> KeySource:
    try:
        if sys.stdin.isatty():
            return TerminalKeys()
    except (ValueError, OSError):
        pass
    return NoKeys()
