"""``pyipxe check``: find a script's mistakes without running it.

Why it is so cautious: iPXE has almost no syntax (reference §1) — any text is a script,
quotes mean nothing, and ``${...}`` is expanded *after* the line is split, so an expansion
can turn any token into anything (a command name, an option, nothing at all). The checker
therefore only reports what is certain from the text alone:

- ``magic``: the file does not start with ``#!ipxe``/``#!gpxe`` plus whitespace, so iPXE
  would not run it as a script at all;
- ``continuation``: the file ends inside a backslash continuation (iPXE drops that line
  and the script fails with EINVAL);
- ``label``: ``goto X`` with a literal ``X`` that no ``:X`` line defines;
- ``command``: a literal command name iPXE does not have (a name coming from an
  expansion is never judged);
- ``option``: iPXE's own option parser rejects a literal argument list (unknown option,
  missing value, bad integer, wrong argument count, ``--help``); any ``${`` in the command
  skips this, since the expansion could change everything.

Every finding is an error: ``check`` exits 1 as soon as it reports anything, so it does
not guess at style (the ``isset ${x} && cmd`` pitfall is often intended and stays silent).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from pyipxe.errors import IpxeError
from pyipxe.script.known_commands import known_commands
from pyipxe.script.options import (
    ERR_COUNT,
    ERR_HELP,
    MANY,
    CommandSpec,
    parse_options,
)
from pyipxe.script.parser import decode_script, is_script, parse_script, split_commands

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2

#: Findings printed per file; a binary file fed to ``check`` would otherwise flood the terminal.
MAX_PRINTED = 200
#: Longest piece of script text quoted in a message (tokens can be a megabyte long).
MAX_QUOTED = 60


class Kind(Enum):
    MAGIC = "magic"
    CONTINUATION = "continuation"
    LABEL = "label"
    COMMAND = "command"
    OPTION = "option"


@dataclass(frozen=True)
class Finding:
    """One problem, at the first physical line of the logical line it is on."""

    line: int
    kind: Kind
    message: str

    def format(self, name: str) -> str:
        return f"{name}:{self.line}: {self.message} [{self.kind.value}]"


def show(text: str, limit: int = MAX_QUOTED) -> str:
    """Script text made safe to print: bounded, and no control or undecodable characters.

    Scripts are bytes (non-UTF-8 is kept as surrogate escapes) and may hold terminal escape
    sequences; a message must neither crash a strict UTF-8 stdout nor drive the terminal.
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char.isprintable():
            out.append(char)
        elif 0xDC80 <= code <= 0xDCFF:  # a raw byte that was not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


class _Capture:
    """A Printer that keeps what the option parser would have shown on the console."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str = "") -> None:
        self.lines.append(text)


def _expands(token: str) -> bool:
    return "${" in token


def _count_words(count: int) -> str:
    return f"{count} argument" + ("" if count == 1 else "s")


def _expected(spec: CommandSpec) -> str:
    if spec.max_args == MANY:
        return f"at least {_count_words(spec.min_args)}"
    if spec.min_args == spec.max_args:
        return f"exactly {_count_words(spec.min_args)}" if spec.min_args else "no arguments"
    return f"{spec.min_args} to {_count_words(spec.max_args)}"


def _positional_count(argv: Sequence[str], spec: CommandSpec) -> int | None:
    """How many positional arguments iPXE would see, once options are taken off."""
    relaxed = CommandSpec(options=spec.options, defaults=spec.defaults)
    try:
        return len(parse_options(argv, relaxed, _Capture()).args)
    except Exception:
        return None


def _option_message(argv: Sequence[str], spec: CommandSpec) -> str | None:
    """What iPXE's option parser would reject in ``argv`` (None: it accepts it).

    Runs pyipxe's real parser, so ``check`` and ``run`` can never disagree on options.
    """
    name = argv[0]
    capture = _Capture()
    try:
        parse_options(argv, spec, capture)
    except IpxeError as error:
        if error.site == ERR_COUNT:
            got = _positional_count(argv, spec)
            usage = f"{name} {spec.usage}".rstrip()
            found = "" if got is None else f", got {got}"
            return f"{show(name)}: takes {_expected(spec)}{found} (usage: {show(usage, 200)})"
        if error.site == ERR_HELP:
            return f"{show(name)}: -h/--help prints the usage and fails the command"
        message = next((line for line in capture.lines if not line.startswith("Usage:")), "invalid options")
        return f"{show(name)}: {show(message, 200)}"
    except Exception:
        # A value parser that needs a running system (a network device, an image) cannot
        # be judged from the text; staying silent beats a false report or a crash.
        return None
    return None


def _check_command(tokens: tuple[str, ...], lineno: int, known: Mapping[str, CommandSpec],
                   labels: set[str]) -> Iterator[Finding]:
    name = tokens[0]
    if _expands(name):
        return
    spec = known.get(name)
    if spec is None:
        yield Finding(lineno, Kind.COMMAND, f"unknown command \"{show(name)}\"")
        return
    if any(_expands(token) for token in tokens):
        return
    message = _option_message(tokens, spec)
    if message is not None:
        yield Finding(lineno, Kind.OPTION, message)
        return
    if name == "goto":
        try:
            label = parse_options(tokens, spec, _Capture()).args[0]
        except Exception:
            return
        if label not in labels:
            yield Finding(lineno, Kind.LABEL, f"goto: no label \":{show(label)}\" in this script")


def check_text(text: str, name: str = "<script>", *,
               known: Mapping[str, CommandSpec] | None = None) -> list[Finding]:
    """All findings for one script's text (``name`` is only for callers' messages).

    Pure: reads no files and runs nothing, so any text, however broken, gives findings
    and never an exception.
    """
    del name  # part of the interface for symmetry with check_main; findings carry lines only
    specs = known_commands() if known is None else known
    findings: list[Finding] = []
    if not is_script(text):
        findings.append(Finding(1, Kind.MAGIC, "does not start with \"#!ipxe\" (or \"#!gpxe\") and a "
                                               "space or newline: iPXE would not run it as a script"))
    script = parse_script(text)
    labels = script.labels()
    for line in script.lines:
        for command in split_commands(line.command_text):
            if command.tokens:
                findings.extend(_check_command(command.tokens, line.lineno, specs, labels))
    if script.unterminated:
        findings.append(Finding(script.unterminated_at or 1, Kind.CONTINUATION,
                                "file ends inside a backslash continuation: iPXE drops this line "
                                "and the script fails"))
    return findings


def _printable(text: str) -> str:
    """``text`` re-encoded so that writing it to stdout cannot raise."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding, "replace")


def check_main(paths: list[str]) -> int:
    """``pyipxe check SCRIPT...``: findings on stdout, a summary on stderr (``-`` is stdin).

    Exit 0 when every file is clean, 1 when anything was reported, 2 when a file could not
    be read (nothing can be said about it, which is neither clean nor a finding).
    """
    known = known_commands()
    total = 0
    files_with_findings = 0
    unreadable = 0
    for path in paths:
        try:
            if path == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as stream:
                    data = stream.read()
        except OSError as error:
            unreadable += 1
            print(_printable(f"pyipxe check: {path}: {error.strerror or error}"), file=sys.stderr)
            continue
        findings = check_text(decode_script(data), path, known=known)
        if findings:
            files_with_findings += 1
            total += len(findings)
        for finding in findings[:MAX_PRINTED]:
            print(_printable(finding.format(path)))
        if len(findings) > MAX_PRINTED:
            print(_printable(f"{path}: {len(findings) - MAX_PRINTED} more findings not shown"))
    checked = len(paths) - unreadable
    if total:
        summary = (f"pyipxe check: {total} problem{'s' if total != 1 else ''} in "
                   f"{files_with_findings} of {checked} file{'s' if checked != 1 else ''}")
    else:
        summary = f"pyipxe check: {checked} file{'s' if checked != 1 else ''} clean"
    if unreadable:
        summary += f", {unreadable} unreadable"
    print(summary, file=sys.stderr)
    if unreadable:
        return EXIT_UNREADABLE
    return EXIT_FINDINGS if total else EXIT_CLEAN
