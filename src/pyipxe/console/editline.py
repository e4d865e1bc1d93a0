"""A one-line editor for ``read`` and the shell: iPXE's editing keys, history, completion.

Why hand-written: it must echo through pyipxe's console exactly as iPXE's readline
does (so transcripts match), and read keys from pyipxe's key sources, including
scripted input; prompt_toolkit owns the terminal and cannot do either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyipxe.console import keys as k
from pyipxe.console.keys import KeySource
from pyipxe.console.output import Console
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# hci/readline.c
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x32E0)
ERR_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x32E0)


class EditString:
    """Text and cursor, with the edits iPXE's editstring supports."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.cursor = len(text)

    def handle(self, key: int) -> bool:
        """Apply ``key``; False if it is not an editing key."""
        text, cursor = self.text, self.cursor
        if 0x20 <= key < k.SPECIAL_BASE and key != k.DELETE_ASCII:
            self.text = text[:cursor] + chr(key) + text[cursor:]
            self.cursor += 1
        elif key in (k.BACKSPACE, k.DELETE_ASCII):
            if cursor:
                self.text = text[: cursor - 1] + text[cursor:]
                self.cursor -= 1
        elif key in (k.KEY_DC, 0x04):
            self.text = text[:cursor] + text[cursor + 1 :]
        elif key in (k.KEY_LEFT, 0x02):
            self.cursor = max(0, cursor - 1)
        elif key in (k.KEY_RIGHT, 0x06):
            self.cursor = min(len(text), cursor + 1)
        elif key in (k.KEY_HOME, 0x01):
            self.cursor = 0
        elif key in (k.KEY_END, 0x05):
            self.cursor = len(text)
        elif key == 0x0B:  # Ctrl-K
            self.text = text[:cursor]
        elif key == 0x15:  # Ctrl-U
            self.text, self.cursor = "", 0
        elif key == 0x17:  # Ctrl-W
            start = len(text[:cursor].rstrip())
            start = text.rfind(" ", 0, start) + 1
            self.text, self.cursor = text[:start] + text[cursor:], start
        else:
            return False
        return True


def _redraw(console: Console, before: EditString, after: EditString) -> None:
    """Move from what is shown to the new text using backspaces, as a serial console can.

    Only the part from the first changed character on is rewritten, so typing at the end
    of the line echoes just the new character.
    """
    common = 0
    limit = min(len(before.text), len(after.text), before.cursor)
    while common < limit and before.text[common] == after.text[common]:
        common += 1
    console.write("\b" * (before.cursor - common) + after.text[common:])
    if len(after.text) < len(before.text):
        extra = len(before.text) - len(after.text)
        console.write(" " * extra + "\b" * extra)
    console.write("\b" * (len(after.text) - after.cursor))


@dataclass
class Completion:
    """What Tab offers for the word at the cursor: its start and the candidates."""

    start: int
    candidates: list[str]
    #: appended after a unique candidate (" " after a command, "}" after ``${name``)
    suffix: str = " "


Completer = Callable[[str, int], Completion]


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _columns(words: list[str], width: int = 80) -> str:
    cell = max(len(word) for word in words) + 2
    per_row = max(1, width // cell)
    rows = [words[i : i + per_row] for i in range(0, len(words), per_row)]
    return "".join("".join(word.ljust(cell) for word in row).rstrip() + "\n" for row in rows)


class _History:
    """Up/Down through earlier lines; the line being typed is kept as the newest entry."""

    def __init__(self, entries: list[str], current: str) -> None:
        self.entries = [*entries, current]
        self.index = len(entries)

    def step(self, delta: int, text: str) -> str | None:
        target = self.index + delta
        if not 0 <= target < len(self.entries):
            return None
        self.entries[self.index] = text
        self.index = target
        return self.entries[target]


async def read_line(console: Console, keys: KeySource, initial: str = "", timeout_ms: int = 0, *,
                    prompt: str = "", history: list[str] | None = None, complete: Completer | None = None) -> str:
    """Edit a line; Enter returns it, Ctrl-C cancels, the timeout applies before the first key.

    With ``history``, Up/Down recall earlier lines and a non-empty entered line is
    appended; with ``complete``, Tab completes the word at the cursor (a second Tab
    lists the candidates).
    """
    line = EditString(initial)
    console.write(prompt + line.text)
    recall = _History(history, initial) if history is not None else None
    first = True
    tabbed = False
    while True:
        timeout = timeout_ms / 1000 if (first and timeout_ms) else None
        key = await keys.get_key(timeout)
        if key is None:
            console.write("\n")
            raise IpxeError(ERR_TIMED_OUT)
        first = False
        if key in (k.CR, k.LF):
            console.write("\n")
            if history is not None and line.text:
                history.append(line.text)
            return line.text
        if key == k.CTRL_C:
            console.write("\n")
            raise IpxeError(ERR_CANCELED)
        before = EditString(line.text)
        before.cursor = line.cursor
        if recall is not None and key in (k.KEY_UP, k.KEY_DOWN):
            text = recall.step(-1 if key == k.KEY_UP else +1, line.text)
            if text is not None:
                line = EditString(text)
                _redraw(console, before, line)
        elif complete is not None and key == 0x09:
            result = complete(line.text, line.cursor)
            word = line.text[result.start : line.cursor]
            matches = sorted({c for c in result.candidates if c.startswith(word)})
            if len(matches) == 1:
                insert = matches[0][len(word):] + result.suffix
            elif matches:
                insert = _common_prefix(matches)[len(word):]
                if not insert and tabbed:
                    console.write("\n" + _columns(matches) + prompt + line.text + "\b" * (len(line.text) - line.cursor))
            else:
                insert = ""
            tabbed = not insert
            if insert:
                line.text = line.text[: line.cursor] + insert + line.text[line.cursor :]
                line.cursor += len(insert)
                _redraw(console, before, line)
            continue
        elif line.handle(key):
            _redraw(console, before, line)
        tabbed = False
