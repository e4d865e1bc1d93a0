"""pyipxe in a real terminal (tmux): menus, hot keys, timeouts, Esc, login, the shell.

Each test starts pyipxe in its own tmux pane (a private tmux server, 100x30), types with
``send-keys`` and reads the screen with ``capture-pane``, as a person at a terminal would.
The netboot.xyz menu comes from the corpus (tests/corpus, Apache-2.0).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pyipxe

CORPUS = Path(__file__).parent / "corpus"
NETBOOT_UTILS = CORPUS / "netbootxyz__netboot.xyz__roles__netbootxyz__templates__menu__utils-efi.ipxe"
#: a small menu with gaps, hot keys and a default (the base of the golden menu-* cases)
MENU = (Path(__file__).parent / "fixtures" / "console" / "menu.ipxe").read_text()


class Pane:
    """One pyipxe run in a tmux pane."""

    def __init__(self, tmp: Path, args: list[str]) -> None:
        self.socket = f"pyipxe-test-{uuid.uuid4().hex[:8]}"
        env = f"PYTHONPATH={shlex.quote(str(Path(pyipxe.__file__).parent.parent))} TERM=xterm-256color"
        command = f"{env} {shlex.quote(sys.executable)} -m pyipxe {' '.join(map(shlex.quote, args))}"
        # Keep the pane after pyipxe exits so its last screen and exit status can be read.
        shell = f"cd {shlex.quote(str(tmp))}; {command}; echo EXIT=$?; sleep 60"
        self.tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", shell)

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                                timeout=20, check=True)
        return result.stdout.decode("utf-8", "replace")

    def screen(self, *, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t", *(["-e"] if escapes else []))

    def wait(self, predicate: Callable[[str], bool] | str, seconds: float = 20, *, escapes: bool = False) -> str:
        test = (lambda text: predicate in text) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + seconds
        while True:
            text = self.screen(escapes=escapes)
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {predicate!r}; screen:\n{text}")
            time.sleep(0.05)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "t", key)
            time.sleep(0.15)  # one key per read, as a person types

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)
        time.sleep(0.15)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Callable[..., Pane]]:
    panes: list[Pane] = []

    def start(script: str | None, *args: str) -> Pane:
        if script is not None:
            (tmp_path / "s.ipxe").write_text(script)
            argv = ["run", "--platform", "pcbios", *args, "s.ipxe"]
        else:
            argv = ["shell", "--platform", "pcbios", *args]
        started = Pane(tmp_path, argv)
        panes.append(started)
        return started

    yield start
    for started in panes:
        started.close()


def selected_row(screen_with_escapes: str) -> str:
    """The text of the row drawn in the selected colour (white on red)."""
    for line in screen_with_escapes.splitlines():
        if "[41m" in line or ";41m" in line or ";41;" in line:
            return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
    return ""


def test_netboot_xyz_menu_navigation(pane: Callable[..., Pane]) -> None:
    p = pane(NETBOOT_UTILS.read_text() + "", "--set", "menu=gparted", "--set", "space=  ")
    p.wait("Utilities")
    assert "GParted" in selected_row(p.screen(escapes=True))  # choose --default ${menu}
    p.keys("Down", "Down")
    p.wait(lambda s: "Memtest86+" in selected_row(s), escapes=True)
    p.keys("End")
    p.wait(lambda s: "netboot.xyz endpoints" in selected_row(s), escapes=True)
    p.keys("Home")
    p.wait(lambda s: "4MLinux" in selected_row(s), escapes=True)  # Home skips the leading gap
    p.keys("Escape")  # choose fails → goto utils_exit → exit 0
    final = p.wait("EXIT=")
    assert "EXIT=0" in final
    assert "Utilities" not in final  # the menu ran on the alternate screen and is gone


def test_hot_key_chooses_at_once(pane: Callable[..., Pane]) -> None:
    p = pane(MENU + "choose sel && echo chosen ${sel}\n")
    p.wait("Test menu title")
    p.keys("w")
    assert "chosen windows" in p.wait("EXIT=")


def test_timeout_counts_down_then_takes_default(pane: Callable[..., Pane]) -> None:
    p = pane(MENU + "choose --timeout 3000 sel && echo chosen ${sel}\n")
    first = p.wait("(3)")
    assert "Drop to shell" in first
    p.wait("(2)")
    assert "chosen shell" in p.wait("EXIT=", 10)


def test_key_stops_the_countdown(pane: Callable[..., Pane]) -> None:
    p = pane(MENU + "choose --timeout 3000 sel && echo chosen ${sel}\n")
    p.wait("(3)")
    p.keys("Up")
    p.wait(lambda s: "Boot Windows" in selected_row(s) and "(" not in s.split("Boot Windows")[1][:80], escapes=True)
    time.sleep(3.5)  # no countdown any more: still waiting
    assert "EXIT=" not in p.screen()
    p.keys("Enter")
    assert "chosen windows" in p.wait("EXIT=")


def test_escape_fails_choose(pane: Callable[..., Pane]) -> None:
    p = pane(MENU + "choose sel || echo failed ${errno}\n")
    p.wait("Test menu title")
    p.keys("Escape")
    assert "failed 0xb2ce0a0" in p.wait("EXIT=")


def test_login_masks_the_password(pane: Callable[..., Pane]) -> None:
    p = pane("#!ipxe\nlogin && echo user=${username} pass=${password}\n")
    p.wait("Username:")
    p.type("alice")
    p.keys("Enter")
    p.type("s3cret")
    screen = p.wait("******")
    assert "s3cret" not in screen and "alice" in screen
    p.keys("Enter")
    assert "user=alice pass=s3cret" in p.wait("EXIT=")


def test_shell_history_and_completion(pane: Callable[..., Pane]) -> None:
    p = pane(None)
    p.wait("iPXE>")
    p.type("set greeting hello")
    p.keys("Enter")
    p.type("ech")
    p.keys("Tab")
    p.wait("iPXE> echo")
    p.type("${gree")
    p.keys("Tab")
    p.wait("echo ${greeting}")
    p.keys("Enter")
    p.wait(lambda s: "\nhello" in s)
    p.keys("Up", "Up")
    p.wait(lambda s: s.rstrip().endswith("iPXE> set greeting hello"))
    p.keys("BSpace", "BSpace", "BSpace", "BSpace", "BSpace")
    p.type("bye")
    p.keys("Enter")
    p.keys("Up", "Up")
    p.wait(lambda s: s.rstrip().endswith("iPXE> echo ${greeting}"))
    p.keys("Enter")
    p.wait(lambda s: "\nbye" in s)
    p.type("exit 5")
    p.keys("Enter")
    assert "EXIT=1" in p.wait("EXIT=")  # exit 5 fails the session


def test_ctrl_c_in_shell_interrupts_the_command(pane: Callable[..., Pane]) -> None:
    p = pane(None)
    p.wait("iPXE>")
    p.type("sleep 60")
    p.keys("Enter")
    time.sleep(0.5)
    p.keys("C-c")
    p.type("echo still here ${errno}")
    p.keys("Enter")
    p.wait("still here 0x")
    assert "EXIT=" not in p.screen()  # the shell survived
    p.type("exit")
    p.keys("Enter")
    assert "EXIT=0" in p.wait("EXIT=")


def test_tmux_available() -> None:
    assert subprocess.run(["tmux", "-V"], capture_output=True, timeout=10).returncode == 0
    assert os.access(NETBOOT_UTILS, os.R_OK)
