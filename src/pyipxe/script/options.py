"""iPXE's command option parser, shared by every command.

Why hand-written: argparse permutes, abbreviates long options and prints its own
messages; iPXE stops at the first non-option, wants exact long names, lets ``--help``
*fail* the command, and prints its own usage and error texts that scripts' users see.

Rules (reference §1.5): options only before the first non-option (``--`` ends them);
``--name=value`` and ``--name value``; short options cluster (``-qa``) and take attached
or separate values; a separate value may not start with ``-``; then the positional count
is checked. Every failure prints its message and the usage, then raises IpxeError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyipxe.console.keys import key_from_option
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.settings.types import parse_c_integer

# Errors raised by iPXE's core/parseopt.c.
ERR_COUNT = ErrorSite(ErrorClass.ERANGE, 0x1620)
ERR_HELP = ErrorSite(ErrorClass.ECANCELED, 0x1621)
ERR_UNKNOWN_OPTION = ErrorSite(ErrorClass.EINVAL, 0x1622)
ERR_MISSING_ARGUMENT = ErrorSite(ErrorClass.EINVAL, 0x1623)
ERR_BAD_INTEGER = ErrorSite(ErrorClass.EINVAL, 0x1621)
ERR_NO_SUCH_NETDEV = ErrorSite(ErrorClass.ENODEV, 0x1620)

MANY = -1


class Printer(Protocol):
    def print(self, text: str = "") -> None: ...


@dataclass(frozen=True)
class Option:
    """One option: ``parse`` is None for a flag, else turns the value text into a value."""

    long: str
    short: str
    parse: Callable[[str, Printer], Any] | None = None
    dest: str = ""

    @property
    def key(self) -> str:
        return self.dest or self.long.replace("-", "_")


@dataclass(frozen=True)
class CommandSpec:
    """What a command accepts; ``usage`` is the positional synopsis shown after options."""

    options: Sequence[Option] = ()
    min_args: int = 0
    max_args: int = MANY
    usage: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    #: False for the few commands that take their arguments raw (``help``)
    parse: bool = True


@dataclass
class Parsed:
    options: dict[str, Any]
    args: list[str]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.options[name]
        except KeyError:
            raise AttributeError(name) from None


def usage_text(name: str, spec: CommandSpec) -> str:
    parts = [f"Usage:\n\n  {name}"]
    for option in spec.options:
        value = f" <{option.long}>" if option.parse is not None else ""
        parts.append(f" [-{option.short}|--{option.long}{value}]")
    if spec.usage:
        parts.append(f" {spec.usage}")
    parts.append(f"\n\nSee https://ipxe.org/cmd/{name} for further information")
    return "".join(parts)


def _fail(out: Printer, name: str, spec: CommandSpec, message: str | None, site: ErrorSite) -> IpxeError:
    if message is not None:
        out.print(message)
    out.print(usage_text(name, spec))
    return IpxeError(site)


HELP = Option("help", "h")


def parse_options(argv: Sequence[str], spec: CommandSpec, out: Printer) -> Parsed:
    name = argv[0] if argv else ""
    if not spec.parse:
        return Parsed({}, list(argv[1:]))
    options: dict[str, Any] = {opt.key: (None if opt.parse else False) for opt in spec.options}
    options.update(spec.defaults)
    all_options = [*spec.options, HELP]
    index = 1

    def take_value(option: Option, attached: str | None, label: str) -> Any:
        nonlocal index
        if attached is None:
            if index < len(argv) and not argv[index].startswith("-"):
                attached = argv[index]
                index += 1
            else:
                raise _fail(out, name, spec, f'Option "{label}" requires an argument', ERR_MISSING_ARGUMENT)
        assert option.parse is not None
        return option.parse(attached, out)

    def apply(option: Option, value: Any) -> None:
        if option is HELP:
            raise _fail(out, name, spec, None, ERR_HELP)
        options[option.key] = value

    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if arg.startswith("--"):
            index += 1
            long_name, equals, attached = arg[2:].partition("=")
            option = next((o for o in all_options if o.long == long_name), None)
            if option is None:
                raise _fail(out, name, spec, f'Unrecognised option "{arg}"', ERR_UNKNOWN_OPTION)
            if option.parse is None:
                if equals:
                    raise _fail(out, name, spec, f'Option "{long_name}" takes no argument', ERR_MISSING_ARGUMENT)
                apply(option, True)
            else:
                apply(option, take_value(option, attached if equals else None, long_name))
            continue
        if arg.startswith("-"):
            index += 1
            position = 1
            # A lone "-" is a cluster whose only letter is iPXE's string terminator.
            cluster = arg if len(arg) > 1 else "-\0"
            while position < len(cluster):
                letter = cluster[position]
                position += 1
                option = next((o for o in all_options if o.short == letter), None)
                if option is None:
                    raise _fail(out, name, spec, f'Unrecognised option "-{letter}"', ERR_UNKNOWN_OPTION)
                if option.parse is None:
                    apply(option, True)
                    continue
                rest = cluster[position:]
                apply(option, take_value(option, rest or None, letter))
                break
            continue
        break
    args = list(argv[index:])
    if len(args) < spec.min_args or (spec.max_args != MANY and len(args) > spec.max_args):
        raise _fail(out, name, spec, None, ERR_COUNT)
    return Parsed(options, args)


# -- value parsers shared by commands ------------------------------------------


def parse_integer(text: str, out: Printer) -> int:
    value = parse_c_integer(text)
    if value is None or not text:
        out.print(f'"{text}": invalid integer value')
        raise IpxeError(ERR_BAD_INTEGER)
    return value


def parse_timeout(text: str, out: Printer) -> int:
    """Milliseconds, as every iPXE ``--timeout`` takes."""
    return parse_integer(text, out)


def parse_key(text: str, out: Printer) -> int:
    if len(text) == 1:
        return ord(text)
    return key_from_option(parse_integer(text, out))


def parse_string(text: str, out: Printer) -> str:
    return text
