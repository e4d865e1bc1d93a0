"""On a real terminal (a pty): keys are read raw, prompt erases itself, read edits a line."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pyipxe

SCRIPT = "#!ipxe\nprompt --key y --timeout 20000 Go? && echo yes || echo no\nread name\necho hi ${name}\n"


def test_prompt_and_read_on_a_terminal(tmp_path: Path) -> None:
    script = tmp_path / "tty.ipxe"
    script.write_text(SCRIPT)
    pid, fd = pty.fork()
    if pid == 0:  # child: become pyipxe on the pty
        os.environ["PYTHONPATH"] = str(Path(pyipxe.__file__).parent.parent)
        os.execvp(sys.executable, [sys.executable, "-m", "pyipxe", "run", str(script)])
    output = b""

    def read_until(marker: bytes, seconds: float = 20) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    read_until(b"Go?")
    os.write(fd, b"y")
    read_until(b"yes")
    time.sleep(0.2)
    os.write(fd, b"Bobx\x7f\r")  # a typo, erased with Backspace
    read_until(b"hi Bob")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"Go?\x08 \x08\x08 \x08\x08 \x08yes" in output  # the prompt erased itself
    assert b"hi Bob\r\n" in output
