"""Scripts and command lines, split exactly as iPXE splits them.

Why hand-written: iPXE's language has no quoting, no escaping and no grammar beyond
lines, labels and four operators, and scripts depend on those quirks (``echo "a b"``
prints the quotes; an empty expansion is still an argument). No shell-like parser
(shlex and friends) behaves this way.

Rules (reference §1.1-1.3):
- A script is split on LF; one trailing CR per physical line is dropped; a line ending in
  a backslash continues on the next one, joined with nothing in between.
- A line whose first non-blank character is ``:`` defines a label (the following
  non-blank run); the rest of the line is an ordinary command line.
- Command lines split at runs of C whitespace *before* ``${}`` expansion; a token starting
  with ``#`` ends the line; ``||``, ``&&`` and ``;`` standing alone separate commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# C isspace() in the "C" locale; str.split() would also split on Unicode spaces.
_SPACE = re.compile(r"[ \t\n\v\f\r]+")
WHITESPACE = " \t\n\v\f\r"


def split_tokens(line: str) -> list[str]:
    return [token for token in _SPACE.split(line) if token]


class Then(Enum):
    """What decides whether the next command on a line runs."""

    END = "end"
    ALWAYS = ";"
    ON_SUCCESS = "&&"
    ON_FAILURE = "||"

    def runs_next(self, status: int) -> bool:
        if self is Then.ON_SUCCESS:
            return status == 0
        if self is Then.ON_FAILURE:
            return status != 0
        return True


_OPERATORS = {";": Then.ALWAYS, "&&": Then.ON_SUCCESS, "||": Then.ON_FAILURE}


@dataclass(frozen=True)
class Command:
    """One command of a line: unexpanded tokens and what follows it."""

    tokens: tuple[str, ...]
    then: Then


def split_commands(line: str) -> list[Command]:
    """A command line → its commands; an empty command (``a ||``) has no tokens."""
    commands: list[Command] = []
    current: list[str] = []
    for token in split_tokens(line):
        if token.startswith("#"):
            break
        then = _OPERATORS.get(token)
        if then is None:
            current.append(token)
            continue
        commands.append(Command(tuple(current), then))
        current = []
    commands.append(Command(tuple(current), Then.END))
    return commands


@dataclass(frozen=True)
class ScriptLine:
    """A logical line: where it starts (for goto and messages) and its text."""

    lineno: int
    label: str | None
    command_text: str


@dataclass(frozen=True)
class Script:
    lines: tuple[ScriptLine, ...]
    #: First physical line of a backslash continuation the file ends inside, if any
    #: (iPXE drops that line and the script fails with EINVAL).
    unterminated_at: int | None = None

    @property
    def unterminated(self) -> bool:
        return self.unterminated_at is not None

    def find_label(self, label: str) -> int | None:
        """Index of the first line defining ``label`` (goto searches from the top)."""
        for index, line in enumerate(self.lines):
            if line.label == label:
                return index
        return None

    def labels(self) -> set[str]:
        return {line.label for line in self.lines if line.label is not None}


def split_label(text: str) -> tuple[str | None, str]:
    """``:name rest`` → (name, rest); other lines → (None, text)."""
    stripped = text.lstrip(WHITESPACE)
    if not stripped.startswith(":"):
        return None, text
    body = stripped[1:]
    match = _SPACE.search(body)
    if match is None:
        return body, ""
    return body[: match.start()], body[match.start() + 1 :]


def parse_script(text: str) -> Script:
    """Split a script's text into logical lines (never fails: every text is a script)."""
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    lines: list[ScriptLine] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(physical, start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        label, rest = split_label("".join(pending))
        lines.append(ScriptLine(start, label, rest))
        pending = []
    return Script(tuple(lines), unterminated_at=start if pending else None)


MAGICS = ("#!ipxe", "#!gpxe")


def is_script(data: bytes | str) -> bool:
    """iPXE's script probe: the magic, then whitespace at byte 7 (reference §1.1)."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return len(text) >= 7 and text[:6] in MAGICS and text[6] in WHITESPACE


def decode_script(data: bytes) -> str:
    """Bytes → text that round-trips any byte (iPXE scripts are bytes, not UTF-8)."""
    return data.decode("utf-8", "surrogateescape")
