"""Script and command-line splitting (reference §1.1-1.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyipxe.script.parser import Then, is_script, parse_script, split_commands, split_tokens


def test_tokens_ignore_quotes_and_backslashes() -> None:
    assert split_tokens('echo "hello world"') == ["echo", '"hello', 'world"']
    assert split_tokens("echo a\\ b") == ["echo", "a\\", "b"]
    assert split_tokens("  echo \t a \v\f b  ") == ["echo", "a", "b"]
    # Only C isspace() splits: a non-breaking space is part of a token.
    assert split_tokens("echo a\u00a0b") == ["echo", "a\u00a0b"]


def test_operators_must_stand_alone() -> None:
    commands = split_commands("iseq a b || echo no && echo yes ; echo always")
    assert [c.tokens for c in commands] == [("iseq", "a", "b"), ("echo", "no"), ("echo", "yes"), ("echo", "always")]
    assert [c.then for c in commands] == [Then.ON_FAILURE, Then.ON_SUCCESS, Then.ALWAYS, Then.END]
    assert split_commands("echo a||b")[0].tokens == ("echo", "a||b")


def test_comment_only_at_token_start() -> None:
    assert split_commands("echo a#b # c || d")[0].tokens == ("echo", "a#b")
    assert len(split_commands("echo a # c || d")) == 1


def test_trailing_operator_gives_empty_command() -> None:
    commands = split_commands("isset ${x} && echo yes ||")
    assert commands[-1].tokens == () and commands[-2].then is Then.ON_FAILURE


def test_continuation_labels_and_crlf() -> None:
    script = parse_script("#!ipxe\r\necho a\\\r\nb\r\n  :lbl echo after\r\n:end\n")
    assert [line.command_text for line in script.lines] == ["#!ipxe", "echo ab", "echo after", ""]
    assert [line.label for line in script.lines] == [None, None, "lbl", "end"]
    assert script.lines[2].lineno == 4
    assert script.find_label("end") == 3 and not script.unterminated


def test_file_ending_in_continuation() -> None:
    script = parse_script("#!ipxe\necho a \\")
    assert script.unterminated and len(script.lines) == 1


def test_first_label_wins() -> None:
    script = parse_script(":a echo 1\n:a echo 2\n")
    assert script.find_label("a") == 0


def test_script_magic() -> None:
    assert is_script(b"#!ipxe\n") and is_script(b"#!gpxe echo") and is_script(b"#!ipxe\r\n")
    assert not is_script(b"#!ipxe") and not is_script(b"#!ipxex\n") and not is_script(b"\x7fELF")


@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    for line in parse_script(text).lines:
        for command in split_commands(line.command_text):
            assert all(token and not any(c in " \t\n\v\f\r" for c in token) for token in command.tokens)


def test_megabyte_line() -> None:
    line = "echo " + "x " * 500_000
    assert len(split_commands(line)[0].tokens) == 500_001
