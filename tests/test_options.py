"""iPXE's option parser: messages, usage and error numbers (reference §1.5)."""

from __future__ import annotations

import pytest

from conftest import run_script
from pyipxe.script.options import CommandSpec, Option, parse_integer, parse_options, usage_text


class Capture:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str = "") -> None:
        self.lines.append(text)


SPEC = CommandSpec(
    options=(Option("name", "n", parse_integer), Option("quiet", "q"), Option("autofree", "a")),
    min_args=1, max_args=2, usage="<uri>",
)


def test_usage_text() -> None:
    assert usage_text("imgfetch", SPEC) == (
        "Usage:\n\n  imgfetch [-n|--name <name>] [-q|--quiet] [-a|--autofree] <uri>\n\n"
        "See https://ipxe.org/cmd/imgfetch for further information"
    )


@pytest.mark.parametrize(
    ("argv", "options", "args"),
    [
        (["x", "-qa", "u"], {"quiet": True, "autofree": True}, ["u"]),
        (["x", "-n5", "u"], {"name": 5}, ["u"]),
        (["x", "-n", "0x10", "u"], {"name": 16}, ["u"]),
        (["x", "--name=7", "u", "--quiet"], {"name": 7, "quiet": False}, ["u", "--quiet"]),
        (["x", "--", "-q"], {"quiet": False}, ["-q"]),
    ],
)
def test_parsing(argv: list[str], options: dict[str, object], args: list[str]) -> None:
    parsed = parse_options(argv, SPEC, Capture())
    for key, value in options.items():
        assert parsed.options[key] == value
    assert parsed.args == args


def test_script_level_errors() -> None:
    run = run_script("#!ipxe\nsleep --bogus || echo ${errno}\n")
    assert run.output == (
        'Unrecognised option "--bogus"\nUsage:\n\n  sleep <seconds>\n\n'
        "See https://ipxe.org/cmd/sleep for further information\n0x1c162202\n"
    )
    assert run_script("#!ipxe\nisset || echo ${errno}\n").output.endswith("0x46162001\n")
    assert run_script("#!ipxe\necho --help || echo ${errno}\n").output.endswith("0xb1621a0\n")
    assert run_script("#!ipxe\nsleep x || echo ${errno}\n").output == '"x": invalid integer value\n0x1c162102\n'
    # An expansion that looks like an option is parsed as one (reference §1.5).
    assert 'Unrecognised option "-1"' in run_script("#!ipxe\nset v -1\nisset ${v} ||\n").output
