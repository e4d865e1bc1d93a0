"""Golden transcripts: pyipxe's console output and status equal the real iPXE's.

Each ``tests/golden/cases/NAME.ipxe`` was run on the real iPXE (Debian's 2019 build,
``real-ipxe --no-dhcp``; see tests/golden/README.md) and its transcript kept as
``NAME.out`` with the script status in ``NAME.status``. Where current iPXE (the
reference) differs from that old build, ``NAME.expected`` holds what current iPXE
prints and ``NAME.note`` says why. Normalisations applied to every recorded transcript:
- ``http://ipxe.org/`` → ``https://ipxe.org/`` (current iPXE prints https);
- trailing newlines are ignored on both sides (the recorder cannot tell them apart).

pyipxe runs each case presenting the recorder's machine: a pcbios platform, i386 build
and QEMU's SMBIOS strings, with the keys of ``NAME.input`` typed at start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyipxe

CASES = Path(__file__).parent / "golden" / "cases"
MACHINE = [
    "--platform", "pcbios",
    "--set", "buildarch=i386",
    "--set", "manufacturer=QEMU",
    "--set", "product=Standard PC (i440FX + PIIX, 1996)",
]


# The help table lists the commands of the build; pyipxe's set differs from the 2019
# build's, so these cases check the table's layout instead (test_help_layout).
HELP_CASES = ("cmd-help", "cmd-help-args")


def _cases() -> list[Path]:
    return sorted(case for case in CASES.glob("*.ipxe") if case.stem not in HELP_CASES)


def _expected(case: Path) -> str:
    override = case.with_suffix(".expected")
    source = override if override.exists() else case.with_suffix(".out")
    text = source.read_bytes().decode("utf-8", "surrogateescape")
    return text.replace("http://ipxe.org/", "https://ipxe.org/")


def _expected_status(case: Path) -> int:
    override = case.with_suffix(".expected-status")
    source = override if override.exists() else case.with_suffix(".status")
    text = source.read_text().strip()
    return int(text, 16) if text.startswith("0x") else int(text)


def run_pyipxe(case: Path) -> subprocess.CompletedProcess[bytes]:
    args = [sys.executable, "-m", "pyipxe", "run", *MACHINE]
    input_file = case.with_suffix(".input")
    if input_file.exists():
        for keys in input_file.read_text().splitlines():
            args += ["--input", keys]
    env = dict(os.environ)
    # Run the pyipxe under test wherever it was imported from (installed or src/).
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pyipxe.__file__).parent.parent), env.get("PYTHONPATH", "")])
    return subprocess.run([*args, case.name], cwd=case.parent, capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)


def test_enough_golden_cases() -> None:
    assert len(_cases()) + len(HELP_CASES) >= 60


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    result = run_pyipxe(case)
    stdout = result.stdout.decode("utf-8", "surrogateescape")
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    assert stdout.rstrip("\n") == _expected(case).rstrip("\n"), stderr
    status = _expected_status(case)
    if status == 0:
        assert result.returncode == 0, stderr
    else:
        assert result.returncode == 1, stderr
        assert f"(https://ipxe.org/{status:08x})" in stderr.splitlines()[-1], stderr


@pytest.mark.parametrize("name", HELP_CASES)
def test_help_layout(name: str) -> None:
    """The recorded table, rebuilt from its own command names, is byte-identical; pyipxe
    prints the same layout for pyipxe's commands, and the rest of the transcript equals."""
    from pyipxe.script.commands.console_cmds import help_table
    from pyipxe.script.registry import load_commands

    case = CASES / f"{name}.ipxe"
    recorded = _expected(case)
    table_end = recorded.index("for further information\n") + len("for further information\n\n")
    names = recorded[: recorded.index("Type ")].split()[2:]
    assert len(names) > 40
    assert help_table(names) == recorded[:table_end]
    result = run_pyipxe(case)
    assert result.returncode == 0
    expected = recorded.replace(help_table(names), help_table(load_commands()))
    assert result.stdout.decode().rstrip("\n") == expected.rstrip("\n")
