#!/usr/bin/python3 -S
"""``/init`` of a pyipxe image: make Linux usable, then hand the consoles to pyipxe, forever.

Why Python and not a busybox script: the image carries Python anyway, and the two things
init must get right — never exiting (PID 1 exiting is a kernel panic) and serving the
serial *and* the VGA console at once — are easier to get right and to test here. The file
is copied to ``/init`` as it is; it imports only the standard library, reads what the build
decided from ``/etc/pyipxe/init.json`` and lets the kernel command line override a little
(``pyipxe.wait=SECONDS`` for the Ctrl-B prompt, ``pyipxe.shell`` to go straight to the
shell).

The consoles: pyipxe runs on a pseudo-terminal whose output init copies to every console
it could open (``/dev/ttyS0``, ``/dev/tty0``) and whose input is whatever is typed on any
of them — iPXE's own model, where every console shows everything and any keyboard works.

Order of events, as iPXE's ``main()``: banner, "Press Ctrl-B" (the shell if pressed), the
embedded script — or autoboot when none is embedded — run with the ``own`` network and the
``kexec`` backend; a successful boot never comes back. Anything else (a failed script, an
unreachable server, a crash) shows its error and drops to the shell, restarted whenever it
ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import select
import socket
import struct
import termios
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CONFIG = "/etc/pyipxe/init.json"
CTRL_B = b"\x02"
CONSOLE_DEVICES = ("/dev/ttyS0", "/dev/tty0")
#: (source, target, type, flags) mounted before anything else; MS_NOSUID|MS_NODEV|MS_NOEXEC where sensible
MOUNTS = (("proc", "/proc", "proc", 0xE), ("sysfs", "/sys", "sysfs", 0xE), ("devtmpfs", "/dev", "devtmpfs", 0x2),
          ("tmpfs", "/run", "tmpfs", 0x6), ("devpts", "/dev/pts", "devpts", 0xA), ("tmpfs", "/tmp", "tmpfs", 0x6))
SYS_FINIT_MODULE = 313  # x86_64
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
WINSIZE = struct.pack("HHHH", 25, 80, 0, 0)


@dataclass
class InitConfig:
    """What ``pyipxe build`` decided; see :func:`pyipxe.build.initramfs.init_config`."""

    pyipxe: list[str] = field(default_factory=lambda: ["/usr/bin/python3", "-S", "-m", "pyipxe"])
    run: list[str] = field(default_factory=list)  # the embedded script, or autoboot
    shell: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)  # paths of .ko files, dependencies first
    wait: float = 2.0
    banner: str = "pyipxe"
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str = CONFIG) -> InitConfig:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class BootChoice:
    """What the kernel command line asks of init."""

    wait: float
    shell_first: bool


def parse_cmdline(cmdline: str, config: InitConfig) -> BootChoice:
    choice = BootChoice(config.wait, False)
    for word in cmdline.split():
        key, _, value = word.partition("=")
        if key == "pyipxe.wait":
            with contextlib.suppress(ValueError):
                choice.wait = max(0.0, float(value))
        elif key == "pyipxe.shell":
            choice.shell_first = value in ("", "1", "yes", "y", "true")
    return choice


def log(consoles: Sequence[int], text: str) -> None:
    """One line on every console (``\\r\\n``: consoles are raw, nothing adds the carriage return)."""
    data = text.replace("\n", "\r\n").encode("utf-8", "replace") + b"\r\n"
    for fd in consoles:
        with contextlib.suppress(OSError):
            os.write(fd, data)


# -- making Linux usable ----------------------------------------------------------------

def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_all(libc: ctypes.CDLL) -> list[str]:
    """Mount what Linux needs; returns the problems (init goes on regardless)."""
    problems = []
    for source, target, fstype, flags in MOUNTS:
        os.makedirs(target, exist_ok=True)
        if libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), None) != 0:
            code = ctypes.get_errno()
            if code != errno.EBUSY:
                problems.append(f"mount {target}: {os.strerror(code)}")
    return problems


def load_modules(libc: ctypes.CDLL, paths: Sequence[str]) -> list[str]:
    """``finit_module`` each driver (dependencies come first in ``paths``); absent hardware is fine."""
    problems = []
    libc.syscall.restype = ctypes.c_long
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            problems.append(f"{path}: {error.strerror}")
            continue
        try:
            if libc.syscall(ctypes.c_long(SYS_FINIT_MODULE), ctypes.c_int(fd), ctypes.c_char_p(b""),
                            ctypes.c_int(0)) != 0:
                code = ctypes.get_errno()
                if code != errno.EEXIST:
                    problems.append(f"{os.path.basename(path)}: {os.strerror(code)}")
        finally:
            os.close(fd)
    return problems


def link_up(name: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))


def open_consoles(devices: Sequence[str] = CONSOLE_DEVICES) -> list[int]:
    """Every console device that opens, in raw mode; /dev/console's fd 1 if none does."""
    fds = []
    for device in devices:
        try:
            fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            continue
        with contextlib.suppress(termios.error):
            tty.setraw(fd)
        fds.append(fd)
    return fds or [1]


# -- the consoles and the child ------------------------------------------------------------

def wait_for_key(consoles: Sequence[int], seconds: float, key: bytes = CTRL_B,
                 clock: Callable[[], float] = time.monotonic) -> bool:
    """True when ``key`` is typed on any console within ``seconds``."""
    deadline = clock() + seconds
    while (left := deadline - clock()) > 0:
        ready, _, _ = select.select(list(consoles), [], [], left)
        for fd in ready:
            try:
                data = os.read(fd, 64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return False
            if key in data:
                return True
    return False


def relay(argv: Sequence[str], consoles: Sequence[int], env: dict[str, str] | None = None) -> int:
    """Run ``argv`` on a new pseudo-terminal, copying between it and every console until it ends.

    Returns the child's exit status (128+N when killed by signal N).
    """
    pid, master = os.forkpty()
    if pid == 0:  # the child: never returns into init's code
        try:
            os.execve(argv[0], list(argv), env if env is not None else dict(os.environ))
        except OSError as error:
            os.write(2, f"pyipxe init: cannot run {argv[0]}: {error.strerror}\r\n".encode())
        os._exit(127)
    with contextlib.suppress(OSError):
        fcntl.ioctl(master, termios.TIOCSWINSZ, WINSIZE)
    inputs = [fd for fd in consoles if fd != 1]
    try:
        while True:
            try:
                ready, _, _ = select.select([master, *inputs], [], [], 1.0)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed its side (it ended)
                    break
                if not data:
                    break
                for fd in consoles:
                    _write_all(fd, data)
            for fd in ready:
                if fd != master:
                    try:
                        typed = os.read(fd, 1024)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        inputs.remove(fd)
                        continue
                    _write_all(master, typed)
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _write_all(fd: int, data: bytes) -> None:
    deadline = time.monotonic() + 2  # a console nobody reads (serial flow control) must not hang init
    while data and time.monotonic() < deadline:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [], 0.1)
            continue
        except OSError:
            return
        data = data[written:]


def reap() -> None:
    """PID 1 adopts orphans: collect any that ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- the whole life of the machine --------------------------------------------------------

def session(config: InitConfig, choice: BootChoice, consoles: Sequence[int],
            run: Callable[[Sequence[str]], int], forever: bool = True) -> None:
    """Banner, Ctrl-B, the script, then the shell for as long as the machine runs."""
    log(consoles, config.banner)
    wants_shell = choice.shell_first
    if not wants_shell and choice.wait > 0:
        log(consoles, "Press Ctrl-B for the pyipxe command line...")
        wants_shell = wait_for_key(consoles, choice.wait)
    if not wants_shell:
        status = run([*config.pyipxe, *config.run])
        log(consoles, f"pyipxe init: the boot did not happen (exit status {status}); starting the pyipxe shell")
    while True:
        status = run([*config.pyipxe, *config.shell])
        reap()
        if not forever:
            return
        log(consoles, f"pyipxe init: the shell ended (exit status {status}); starting it again")
        time.sleep(0.5)


def main() -> None:
    consoles = [1]
    try:
        libc = _libc()
        problems = mount_all(libc)
        consoles = open_consoles()
        config = InitConfig.load()
        problems += load_modules(libc, config.modules)
        try:
            link_up("lo")
        except OSError as error:
            problems.append(f"lo: {error.strerror}")
        for problem in problems:
            log(consoles, f"pyipxe init: {problem}")
        with open("/proc/cmdline", encoding="utf-8", errors="replace") as handle:
            choice = parse_cmdline(handle.read(), config)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "TERM": "linux", "LANG": "C.UTF-8", **config.env}
        session(config, choice, consoles, lambda argv: relay(argv, consoles, env))
    except BaseException as error:  # PID 1 must never end: a kernel panic shows nothing useful
        log(consoles, f"pyipxe init: {type(error).__name__}: {error}")
    while True:  # last resort: keep the machine up and say so
        log(consoles, "pyipxe init: stopped; the machine is idle (power it off or reset it)")
        time.sleep(3600)


if __name__ == "__main__":
    main()
