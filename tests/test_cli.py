"""The pyipxe command line end to end: exit codes, stdout/stderr split, presets, trace, check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyipxe

ENV = {**os.environ, "PYTHONPATH": str(Path(pyipxe.__file__).parent.parent)}


def pyipxe_cli(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyipxe", *args], cwd=cwd, input=stdin.decode(),
                          capture_output=True, text=True, timeout=60, env=ENV)


def write(tmp_path: Path, text: str, name: str = "s.ipxe") -> str:
    (tmp_path / name).write_text(text)
    return name


def test_success_and_failure_exit_codes(tmp_path: Path) -> None:
    ok = pyipxe_cli("run", write(tmp_path, "#!ipxe\necho hi\n"), cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "hi\n", "")
    bad = pyipxe_cli("run", write(tmp_path, "#!ipxe\necho before\nexit 3\n"), cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout == "before\n"
    assert bad.stderr == "Could not boot: Error 0x00000003 (https://ipxe.org/00000003)\n"


def test_missing_and_non_script_files(tmp_path: Path) -> None:
    missing = pyipxe_cli("run", "nope.ipxe", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("Could not boot: No such file or directory (https://ipxe.org/2d")
    (tmp_path / "elf").write_bytes(b"\x7fELF\x02\x01\x01")
    wrong = pyipxe_cli("run", "elf", cwd=tmp_path)
    assert wrong.returncode == 1
    assert wrong.stderr == "Could not boot: Exec format error (https://ipxe.org/2e008001)\n"
    assert "Traceback" not in missing.stderr + wrong.stderr


def test_presets_and_platform(tmp_path: Path) -> None:
    script = write(tmp_path, "#!ipxe\nshow platform\nshow serial\nshow net0/ip\nisset ${x} || echo ${errno}\n")
    result = pyipxe_cli("run", "--platform", "efi", "--set", "serial=ABC 123", "--set", "net0/ip=10.0.0.5",
                        script, cwd=tmp_path)
    assert result.stdout == ("builtin/platform:string = efi\nsmbios/serial:string = ABC 123\n"
                             "net0/ip:ipv4 = 10.0.0.5\n0x2d02208e\n")
    bad = pyipxe_cli("run", "--set", "net0/ip=notanip", script, cwd=tmp_path)
    assert bad.returncode == 2 and "Invalid argument" in bad.stderr


def test_input_keys_and_stdin_script(tmp_path: Path) -> None:
    result = pyipxe_cli("run", "--input", "n", "-", cwd=tmp_path,
                        stdin=b"#!ipxe\nprompt --key y Continue? || echo declined\n")
    assert result.stdout == "declined\n"


def test_trace_goes_to_stderr(tmp_path: Path) -> None:
    result = pyipxe_cli("run", "--trace", write(tmp_path, "#!ipxe\nset v a b\necho ${v}\n"), cwd=tmp_path)
    assert result.stdout == "a b\n"
    assert "trace: s.ipxe:3 echo 'a b' -> 0x0" in result.stderr


def test_ctrl_c_stops_a_goto_loop(tmp_path: Path) -> None:
    script = write(tmp_path, "#!ipxe\n:x goto x\n")
    process = subprocess.Popen([sys.executable, "-m", "pyipxe", "run", script], cwd=tmp_path, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "Operation canceled" in stderr and "Traceback" not in stderr


def test_check_exit_codes(tmp_path: Path) -> None:
    clean = pyipxe_cli("check", write(tmp_path, "#!ipxe\n:a\ngoto a\n", "clean.ipxe"), cwd=tmp_path)
    assert clean.returncode == 0
    dirty = pyipxe_cli("check", write(tmp_path, "#!ipxe\ngoto nowhere\nfrobnicate\n", "dirty.ipxe"), cwd=tmp_path)
    assert dirty.returncode == 1
    assert "dirty.ipxe:2:" in dirty.stdout and "dirty.ipxe:3:" in dirty.stdout


def test_unreadable_trust_and_client_files_are_usage_errors(tmp_path: Path) -> None:
    script = write(tmp_path, "#!ipxe\necho never\n")
    for flag in ("--trust", "--client-cert", "--client-key"):
        result = pyipxe_cli("run", flag, "missing.pem", script, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"pyipxe: {flag} missing.pem: No such file or directory\n"
