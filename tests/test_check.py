"""``pyipxe check``: what it reports, what it must never report, and that it never crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipxe.script.check import MAX_PRINTED, Finding, Kind, check_main, check_text, show
from pyipxe.script.known_commands import TABLE, known_commands
from pyipxe.script.options import CommandSpec
from pyipxe.script.parser import decode_script
from pyipxe.script.registry import load_commands

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.ipxe"))
KNOWN: Mapping[str, CommandSpec] = known_commands()


def check(text: str) -> list[Finding]:
    return check_text(text, "t.ipxe", known=KNOWN)


def kinds(text: str) -> list[tuple[int, Kind]]:
    return [(finding.line, finding.kind) for finding in check(text)]


# -- the corpus: real scripts by other people -------------------------------------------

# Every finding over tests/corpus, reviewed by hand: each one is a real mistake in the
# script (a label that is never defined, ":shell:" defining "shell:" not "shell").
EXPECTED_CORPUS_FINDINGS = {
    "2pintsoftware__2Pint-iPXEAnywhere__Scripts__Authentication__DeviceAuthentication.ps1__menu.ipxe": [
        (19, Kind.LABEL, 'goto: no label ":cancel" in this script'),
    ],
    "2pintsoftware__2Pint-iPXEAnywhere__Scripts__Boot__iPXEboot.ps1__menu.ipxe": [
        (17, Kind.LABEL, 'goto: no label ":cancel" in this script'),
    ],
    "Gauthier-desmet__ipxe.raw__public__loader.ipxe": [
        (line, Kind.LABEL, 'goto: no label ":shell" in this script') for line in (84, 85, 86, 116, 117, 118)
    ],
    "kevydotvinu__tinyPXE__boot.ipxe": [
        (15, Kind.LABEL, 'goto: no label ":menu" in this script'),
    ],
    "netbootxyz__netboot.xyz__roles__netbootxyz__templates__menu__live-ubuntu.ipxe": [
        (100, Kind.LABEL, 'goto: no label ":24.04-boot" in this script'),
    ],
}


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) >= 60
    listed = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for path in CORPUS_FILES:
        assert f"`{path.name}`" in listed, f"{path.name} has no row in tests/corpus/SOURCES.md"
    assert "none stated" not in listed


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name[:60])
def test_corpus_script(path: Path) -> None:
    findings = check_text(decode_script(path.read_bytes()), path.name, known=KNOWN)
    # Valid iPXE has no syntax errors: only these three kinds can be real-world mistakes.
    assert {finding.kind for finding in findings} <= {Kind.COMMAND, Kind.OPTION, Kind.LABEL}
    got = [(finding.line, finding.kind, finding.message) for finding in findings]
    assert got == EXPECTED_CORPUS_FINDINGS.get(path.name, [])


# -- the command table -----------------------------------------------------------------

# `help` in the Debian build (oracle README), and the commands it lacks but iPXE has.
HELP_LIST = [
    "config", "cpuid", "dhcp", "pxebs", "ifopen", "ifclose", "ifstat", "ifconf", "imgfetch", "module",
    "initrd", "kernel", "chain", "imgselect", "imgload", "imgargs", "imgexec", "boot", "imgstat",
    "imgfree", "login", "menu", "item", "choose", "show", "set", "clear", "read", "inc", "reboot",
    "route", "sanhook", "sanboot", "sanunhook", "prompt", "goto", "shell", "help", "sync", "autoboot",
    "sleep", "iseq", "isset", "exit", "echo", "ibstat", "iwstat", "iwlist",
]
OFF_BY_DEFAULT = [
    "poweroff", "nslookup", "ping", "params", "param", "imgverify", "imgtrust", "md5sum", "sha1sum",
    "vcreate", "vdestroy", "ntp", "time", "console", "colour", "cpair", "pciscan", "nstat", "certstat",
    "certstore", "imgextract", "imgmem", "ipstat", "profstat", "imgdecrypt", "lotest", "startpxe",
    "stoppxe", "form", "present", "shim", "fdt", "usbscan", "certfree", "iflinkwait",
]


@pytest.mark.parametrize("name", HELP_LIST + OFF_BY_DEFAULT)
def test_every_ipxe_command_is_known(name: str) -> None:
    assert name in KNOWN
    # help takes its arguments raw (iPXE prints the table whatever follows it).
    expected = [] if name == "help" else [(2, Kind.OPTION)]
    assert kinds(f"#!ipxe\n{name} --help\n") == expected


def test_registry_specs_win() -> None:
    for name, entry in load_commands().items():
        assert KNOWN[name] is entry.spec


@pytest.mark.parametrize(
    "group",
    [("imgfetch", "module", "initrd"), ("kernel", "imgselect", "imgload"), ("chain", "imgexec", "boot"),
     ("menu", "form"), ("ifconf", "dhcp")],
)
def test_aliases_share_options(group: tuple[str, ...]) -> None:
    specs = {id(TABLE[name]) for name in group}
    assert len(specs) == 1


# -- each kind of finding ----------------------------------------------------------------


def test_kinds_are_exactly_these() -> None:
    assert {kind.value for kind in Kind} == {"magic", "continuation", "label", "command", "option"}


@pytest.mark.parametrize(
    "text",
    [
        "#!ipxe\n",
        "#!gpxe\n",
        "#!ipxe \n",
        "#!ipxe\r\n",
        "#!ipxe\techo hi\n",
        "#!ipxe\necho hi",  # no final newline
        "#!ipxe\ndhcp\nchain http://boot.example/x.ipxe\n",
    ],
)
def test_magic_accepted(text: str) -> None:
    assert check(text) == []


@pytest.mark.parametrize(
    "text",
    ["", "#!ipxe", "#!ipxe2\n", "#!/bin/sh\n", "\ufeff#!ipxe\n", " #!ipxe\n", "#!IPXE\n", "echo hi\n"],
)
def test_magic_missing(text: str) -> None:
    assert kinds(text)[:1] == [(1, Kind.MAGIC)]


def test_continuation_at_end_of_file() -> None:
    assert kinds("#!ipxe\necho a \\\n") == [(2, Kind.CONTINUATION)]
    assert kinds("#!ipxe\necho a\necho b \\\nc \\\r\nd \\") == [(3, Kind.CONTINUATION)]


def test_continuation_inside_the_file_is_fine() -> None:
    assert check("#!ipxe\necho a \\\nb\r\nkernel x \\\n  quiet\n") == []


def test_label_missing() -> None:
    findings = check("#!ipxe\n:start\ngoto nowhere\n")
    assert [(f.line, f.kind, f.message) for f in findings] == [
        (3, Kind.LABEL, 'goto: no label ":nowhere" in this script')
    ]


@pytest.mark.parametrize(
    "text",
    [
        "#!ipxe\ngoto later\n:later\n",  # forward jumps
        "#!ipxe\n:retry dhcp || goto retry\n",  # a label line runs its command
        "#!ipxe\n  :indented\ngoto indented\n",
        "#!ipxe\ngoto ${target}\n",  # computed: anything could be there
        "#!ipxe\nchoose sel && goto ${sel} || goto fail\n:fail\n",
        "#!ipxe\ngoto -- x\n:x\n",
        "#!ipxe\necho goto nowhere\n",  # not a goto
        "#!ipxe\n:a\\\nb\ngoto ab\n",  # a label joined over a continuation
    ],
)
def test_label_found_or_unknowable(text: str) -> None:
    assert check(text) == []


def test_label_is_exact() -> None:
    assert kinds("#!ipxe\n:shell:\ngoto shell\n") == [(3, Kind.LABEL)]
    assert kinds("#!ipxe\n:Menu\ngoto menu\n") == [(3, Kind.LABEL)]


def test_unknown_command() -> None:
    findings = check("#!ipxe\nwimboot\ndhcp && imgfetchh x ||\n")
    assert [(f.line, f.kind, f.message) for f in findings] == [
        (2, Kind.COMMAND, 'unknown command "wimboot"'),
        (3, Kind.COMMAND, 'unknown command "imgfetchh"'),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "#!ipxe\n${cmd} arg\n",  # the command name comes from an expansion
        "#!ipxe\n${net0/mac}\n",
        "#!ipxe\necho a # nosuchcommand\n",  # comment
        "#!ipxe\n# nosuchcommand --bogus\n",
        "#!ipxe\necho a || || echo b\n",  # empty commands succeed
        "#!ipxe\n;\n",
        "#!ipxe\nping -c 1 10.0.0.1 ; nslookup ip example.com\n",  # off by default, still iPXE
        "#!ipxe\nimgtrust --permanent\nimgverify vmlinuz vmlinuz.sig\n",
    ],
)
def test_known_or_unknowable_commands(text: str) -> None:
    assert check(text) == []


def test_operators_must_stand_alone() -> None:
    # `a||b` is one token, so this calls a command named "isset||echo".
    assert kinds("#!ipxe\nisset||echo x\n") == [(2, Kind.COMMAND)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("echo --bogus", 'echo: Unrecognised option "--bogus"'),
        ("sleep -x 3", 'sleep: Unrecognised option "-x"'),
        ("exit -1", 'exit: Unrecognised option "-1"'),
        ("prompt --timeout", 'prompt: Option "timeout" requires an argument'),
        ("prompt --timeout -5 hi", 'prompt: Option "timeout" requires an argument'),
        ("prompt --timeout 5s hi", 'prompt: "5s": invalid integer value'),
        ("echo --n=1 x", 'echo: Option "n" takes no argument'),
        ("isset a b", "isset: takes exactly 1 argument, got 2 (usage: isset <value>)"),
        ("iseq a", "iseq: takes exactly 2 arguments, got 1 (usage: iseq <value1> <value2>)"),
        ("imgfetch --name x", "imgfetch: takes at least 1 argument, got 0 "
                              "(usage: imgfetch <uri> [<arguments>...])"),
        ("show -h x", "show: -h/--help prints the usage and fails the command"),
        ("sanboot --drive 0x8z iscsi:x", 'sanboot: "0x8z": invalid integer value'),
    ],
)
def test_option_errors(line: str, message: str) -> None:
    findings = check(f"#!ipxe\n{line}\n")
    assert [(f.line, f.kind, f.message) for f in findings] == [(2, Kind.OPTION, message)]


@pytest.mark.parametrize(
    "line",
    [
        "chain http://x/y --autofree",  # options stop at the first non-option
        "kernel --name k --timeout=5000 -a http://x/vmlinuz console=ttyS0 -- quiet",
        "chain -ar http://x/y.efi",
        "item --key 0x147e --default linux Boot Linux",
        "item --gap",
        "item",
        "choose --timeout 3000 --default linux --keep target",
        "prompt --key 0x02 --timeout 3000 Press Ctrl-B && shell ||",
        "isset -- -1",
        "exit 3",
        "echo -n",
        "echo -nn x",
        "sanboot --no-describe --keep --drive 0x80 iscsi:10.0.0.1::::iqn.x:t",
        "console --x 1024 --y 768 --picture bg.png --keep",
        "echo --bogus ${x}",  # skipped: the expansion could be anything
        "isset ${a} ${b}",
        "imgfetch ${url}",
        "set x a  b   c",
    ],
)
def test_option_checks_accept(line: str) -> None:
    assert check(f"#!ipxe\n{line}\n") == []


def test_clean_menu_script() -> None:
    text = """#!ipxe
# A typical boot menu.
dhcp || goto failed
set base http://boot.example.com/${buildarch}
:menu
menu Choose an operating system
item --gap -- Linux
item --key l linux    Linux ${version}
item --key s shell    iPXE shell
item exit Exit
choose --default linux --timeout 5000 target && goto ${target} || goto cancel
:linux
kernel ${base}/vmlinuz initrd=initrd.img quiet
initrd ${base}/initrd.img
boot || goto failed
:shell
shell
goto menu
:cancel
echo Cancelled
:exit
exit 0
:failed
echo Boot failed: ${errno}
prompt Press any key ||
goto menu
"""
    assert check(text) == []
    assert check(text.replace("\n", "\r\n")) == []


def test_format_and_show() -> None:
    assert Finding(3, Kind.LABEL, "goto: x").format("a.ipxe") == "a.ipxe:3: goto: x [label]"
    assert show("a\x1bb\udcff\u200bc") == "a\\x1bb\\xff\\u200bc"
    assert show("x" * 100) == "x" * 60 + "..."


# -- robustness ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_bytes(data: bytes) -> None:
    findings = check_text(decode_script(data), "fuzz", known=KNOWN)
    assert all(isinstance(finding, Finding) and finding.line >= 1 for finding in findings)
    for finding in findings:
        finding.format("fuzz").encode("utf-8")  # always printable


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=1000))
def test_fuzz_text(text: str) -> None:
    for finding in check_text(text, "fuzz", known=KNOWN):
        finding.format("fuzz").encode("utf-8")


_TOKENS = st.sampled_from(
    ["#!ipxe", "echo", "goto", "chain", "item", "choose", "isset", "iseq", "exit", "prompt", "set",
     "nosuch", ":a", ":b", "a", "b", "${x}", "${", "}", "-", "--", "-n", "--timeout", "--key", "-k",
     "--name=", "--help", "-h", "0x10", "5s", "||", "&&", ";", "#", "\\", "\r", ":", "\udc80"]
)
_LINES = st.lists(st.lists(_TOKENS, max_size=8).map(" ".join), max_size=30)


@settings(max_examples=500, deadline=None)
@given(_LINES, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_fuzz_script_like(lines: list[str], newline: str, magic: bool) -> None:
    text = ("#!ipxe" + newline if magic else "") + newline.join(lines)
    findings = check_text(text, "fuzz", known=KNOWN)
    if magic:
        assert Kind.MAGIC not in {finding.kind for finding in findings}
    assert all(finding.line <= text.count("\n") + 1 for finding in findings)


@pytest.mark.parametrize(
    "line",
    ["x" * 1_000_000, "echo " + "a " * 500_000, "echo -" + "n" * 1_000_000, "${" * 300_000,
     "\\\n" * 200_000, "nosuch " * 150_000, "goto " + "q" * 1_000_000],
)
def test_huge_input(line: str) -> None:
    start = time.monotonic()
    check_text("#!ipxe\n" + line + "\n", "big", known=KNOWN)
    assert time.monotonic() - start < 20


# -- the command line --------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "pyipxe", "check", *args], capture_output=True,
                          env=env, timeout=60, check=False)


def test_cli_clean(tmp_path: Path) -> None:
    script = tmp_path / "ok.ipxe"
    script.write_bytes(b"#!ipxe\r\ndhcp\r\nchain http://x/y\r\n")
    result = _run_cli(str(script))
    assert result.returncode == 0
    assert result.stdout == b""
    assert b"1 file clean" in result.stderr


def test_cli_findings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipxe"
    bad.write_bytes(b"#!ipxe\ngoto nowhere\nwimb\xffoot\n")
    good = tmp_path / "good.ipxe"
    good.write_bytes(b"#!ipxe\necho hi\n")
    result = _run_cli(str(good), str(bad))
    assert result.returncode == 1
    assert result.stdout.decode().splitlines() == [
        f'{bad}:2: goto: no label ":nowhere" in this script [label]',
        f'{bad}:3: unknown command "wimb\\xffoot" [command]',
    ]
    assert b"2 problems in 1 of 2 files" in result.stderr


def test_cli_stdin() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-m", "pyipxe", "check", "-"], input=b"#!ipxe\nnosuch\n",
                            capture_output=True, env=env, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == b'-:2: unknown command "nosuch" [command]\n'


def test_cli_unreadable(tmp_path: Path) -> None:
    result = _run_cli(str(tmp_path / "missing.ipxe"))
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"missing.ipxe" in result.stderr


def test_cli_corpus() -> None:
    result = _run_cli(*(str(path) for path in CORPUS_FILES))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == sum(map(len, EXPECTED_CORPUS_FINDINGS.values()))


def test_check_main_caps_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy = tmp_path / "noisy.bin"
    noisy.write_bytes(b"\x7fELF\x00\n" + b"junk\xfe\n" * (MAX_PRINTED + 50))
    assert check_main([str(noisy)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == MAX_PRINTED + 1
    assert lines[-1].endswith("52 more findings not shown")
    assert "252 problems in 1 of 1 file" in err
