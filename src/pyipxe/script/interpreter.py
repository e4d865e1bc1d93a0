"""Running command lines and scripts exactly as iPXE's shell and script engine do.

Rules (reference §1.3, §1.6):
- A line is split into commands first, each command's tokens are expanded just before
  it runs; a running status is kept: an executed command replaces it, a skipped one
  leaves it; the line's status is the last one.
- ``${errno}`` takes every failing status and is never cleared.
- ``goto`` stops the rest of its line; ``exit`` stops the line and the script. These are
  iPXE's two stop levels, consumed the way iPXE consumes them.
- A script stops at its first failing line; its status is that line's.
- Commands fail by raising :class:`IpxeError`; nothing else escapes as a failure. An
  unexpected Python exception is a bug: it is reported on stderr and fails the command
  with EIO rather than killing the boot.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from dataclasses import dataclass
from enum import IntEnum

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.registry import Image
from pyipxe.script.context import Context
from pyipxe.script.expand import expand
from pyipxe.script.options import parse_options
from pyipxe.script.parser import Script, Then, decode_script, parse_script, split_commands
from pyipxe.script.registry import load_commands

# core/exec.c
ERR_COMMAND_NOT_FOUND = ErrorSite(ErrorClass.ENOEXEC, 0x0220)
ERR_INTERNAL = ErrorSite(ErrorClass.EIO, 0x0220)
# image/script.c
ERR_NOT_IN_SCRIPT = ErrorSite(ErrorClass.ENOTTY, 0x0280)
ERR_NO_SUCH_LABEL = ErrorSite(ErrorClass.ENOENT, 0x0280)
ERR_UNTERMINATED = ErrorSite(ErrorClass.EINVAL, 0x0280)

# Lines run between two yields to the event loop, so Ctrl-C can stop a goto loop.
YIELD_EVERY = 256


class Stop(IntEnum):
    CONTINUE = 0
    COMMAND = 1  # the rest of this line (goto)
    SEQUENCE = 2  # the rest of the script too (exit)


@dataclass
class Frame:
    """A script being executed: where it is and where it came from."""

    script: Script
    name: str
    position: int = 0


def signed32(code: int) -> int:
    code &= 0xFFFFFFFF
    return code - (1 << 32) if code & 0x80000000 else code


class Interpreter:
    def __init__(self, context: Context, *, trace: bool = False) -> None:
        self.context = context
        context.interpreter = self
        self.commands = load_commands()
        self.frames: list[Frame] = []
        self.stop_state = Stop.CONTINUE
        self.trace = trace
        self._lines_run = 0
        context.images.executors["script"] = self.execute_script_image

    async def execute_script_image(self, image: Image) -> None:
        """The executor for script images: run it in place; a failure is the image's status."""
        script = parse_script(decode_script(image.data.read()))
        status = await self.run_script(script, image.name)
        if status:
            raise IpxeError(raw=status)

    # -- stop state (iPXE's shell_stop / shell_stopped) ---------------------
    def request_stop(self, level: Stop) -> None:
        self.stop_state = level

    def stop_current_script(self) -> None:
        """``chain --replace``: the running script ends after this line (shell_stop)."""
        self.request_stop(Stop.SEQUENCE)

    def stopped(self, level: Stop) -> bool:
        stopped = self.stop_state >= level
        if self.stop_state <= level:
            self.stop_state = Stop.CONTINUE
        return stopped

    # -- commands -------------------------------------------------------------
    async def execute(self, argv: list[str]) -> int:
        """Run one expanded command; return its status (0 or an iPXE error number)."""
        if not argv:
            return 0
        status = await self._dispatch(argv)
        if status:
            self.context.errno = abs(signed32(status))
        return status

    async def _dispatch(self, argv: list[str]) -> int:
        entry = self.commands.get(argv[0])
        context = self.context
        if entry is None:
            context.console.print(f"{argv[0]}: command not found")
            return context.code(IpxeError(ERR_COMMAND_NOT_FOUND))
        try:
            parsed = parse_options(argv, entry.spec, context.console)
            await entry.handler(context, parsed)
        except IpxeError as error:
            return context.code(error)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in pyipxe, not in the script: say so, keep booting
            print(f"pyipxe: internal error in {argv[0]}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return context.code(IpxeError(ERR_INTERNAL))
        return 0

    async def run_line(self, text: str, where: str = "") -> int:
        status = 0
        run_next = True
        for command in split_commands(text):
            if run_next:
                argv = [expand(token, self.context.settings.fetch_text) for token in command.tokens]
                started = time.perf_counter()
                status = await self.execute(argv)
                if self.trace and argv:
                    self._trace(where, argv, status, time.perf_counter() - started)
            if self.stopped(Stop.COMMAND) or command.then is Then.END:
                break
            run_next = command.then.runs_next(status)
        return status

    def _trace(self, where: str, argv: list[str], status: int, elapsed: float) -> None:
        shown = " ".join(repr(arg) if (not arg or " " in arg) else arg for arg in argv) or "(empty)"
        print(f"trace: {where} {shown} -> 0x{status & 0xFFFFFFFF:x} ({elapsed * 1000:.1f} ms)",
              file=sys.stderr)

    # -- scripts --------------------------------------------------------------
    async def run_script(self, script: Script, name: str = "script") -> int:
        frame = Frame(script, name)
        self.frames.append(frame)
        status = 0
        try:
            while frame.position < len(script.lines):
                line = script.lines[frame.position]
                frame.position += 1
                status = await self.run_line(line.command_text, f"{name}:{line.lineno}")
                if self.stopped(Stop.SEQUENCE) or status != 0:
                    break
                self._lines_run += 1
                if self._lines_run % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            else:
                if script.unterminated:
                    status = self.context.code(IpxeError(ERR_UNTERMINATED))
        finally:
            self.frames.pop()
        return status

    def goto(self, label: str) -> None:
        if not self.frames:
            raise IpxeError(ERR_NOT_IN_SCRIPT)
        frame = self.frames[-1]
        index = frame.script.find_label(label)
        if index is None:
            raise IpxeError(ERR_NO_SUCH_LABEL)
        frame.position = index
        self.request_stop(Stop.COMMAND)
