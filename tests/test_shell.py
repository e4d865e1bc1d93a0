"""The shell: iPXE's prompt and line semantics, history, completion, Ctrl-C, exit status.

Transcripts against the real iPXE are the golden cases shell-*; these cover what the
real iPXE cannot be asked about (completion is pyipxe's) or what needs a signal.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyipxe
from pyipxe.console.editline import EditString, read_line
from pyipxe.console.keys import NoKeys, ScriptedKeys
from pyipxe.console.output import Console
from pyipxe.image.spool import SpoolFile
from pyipxe.runner import apply_preset, run_top_script
from pyipxe.script.commands.shell_cmds import complete
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter


def session(keys: str | None = None) -> tuple[Context, io.BytesIO]:
    stream = io.BytesIO()
    ctx = Context(console=Console(stream, tty=False), keys=ScriptedKeys(keys) if keys is not None else NoKeys())  # type: ignore[arg-type]
    apply_preset(ctx, "platform=pcbios")
    Interpreter(ctx)
    return ctx, stream


def shell(keys: str, script: str = "#!ipxe\nshell\n") -> tuple[int, str, Context]:
    ctx, stream = session(keys)
    status = asyncio.run(run_top_script(ctx, script, "test"))
    ctx.console.close()
    return status, stream.getvalue().decode(), ctx


def test_lines_run_like_script_lines() -> None:
    status, out, _ctx = shell("echo hi\rfoo\riseq 1 2 || echo no\recho ${errno}\rexit\r")
    assert status == 0
    assert out.splitlines() == ["iPXE> echo hi", "hi", "iPXE> foo", "foo: command not found",
                                "iPXE> iseq 1 2 || echo no", "no", "iPXE> echo ${errno}", "0x46022001",
                                "iPXE> exit"]


def test_failures_do_not_stop_the_shell_and_exit_sets_status() -> None:
    status, out, _ = shell("iseq 1 2\rexit 3\r", "#!ipxe\nshell || echo shell failed ${errno}\necho after\n")
    assert out.splitlines()[-2:] == ["shell failed 0x3", "after"]
    assert status == 0


def test_end_of_input_leaves_the_shell() -> None:
    status, out, _ = shell("echo a\r", "#!ipxe\nshell\necho after\n")
    assert status == 0 and out.splitlines()[-1] == "after"


def test_ctrl_c_at_the_prompt_discards_the_line() -> None:
    _, out, _ = shell("echo nope\x03echo yes\rexit\r")
    assert out.splitlines() == ["iPXE> echo nope", "iPXE> echo yes", "yes", "iPXE> exit"]


def test_history_up_and_down() -> None:
    # Up twice stays on the oldest line; Down comes back to what was being typed.
    _, out, ctx = shell("echo one\recho two\r\x1b[A\x1b[A\x1b[A\r\x1b[Apartial\x1b[A\x1b[B\rexit\r")
    lines = out.splitlines()
    assert lines[4:6] == ["iPXE> echo one", "one"]
    assert lines[6:8] == ["iPXE> echo onepartial", "onepartial"]  # the recalled line, edited
    assert ctx.ui.history == ["echo one", "echo two", "echo one", "echo onepartial", "exit"]


def test_goto_from_the_shell_jumps_in_the_running_script() -> None:
    _, out, _ = shell("goto there\r", "#!ipxe\nshell\necho skipped\n:there\necho there\n")
    assert out.splitlines()[-1] == "there"


def test_completion_candidates() -> None:
    ctx, _ = session()
    block, setting = ctx.settings.parse_name("mysetting", create=True)
    ctx.settings.store_text(block, setting, "1")
    image = ctx.images.new_image(None, SpoolFile(b"x"), name="vmlinuz")
    ctx.images.register(image)

    def offered(text: str) -> list[str]:
        result = complete(ctx, text, len(text))
        word = text[result.start:]
        return sorted(c for c in result.candidates if c.startswith(word))

    assert offered("ec") == ["echo"]
    assert offered("echo a && sho") == ["show"]
    assert "--timeout" in offered("choose --ti") and offered("choose --ti") == ["--timeout"]
    assert offered("show mys") == ["mysetting"]
    assert offered("show usern") == ["username"]
    assert offered("echo ${host") == ["hostname"]
    assert complete(ctx, "echo ${host", 11).suffix == "}"
    assert offered("imgstat vm") == ["vmlinuz"]
    assert "net0/" not in offered("show ne")  # no such block yet
    ctx.settings.find_block("net0", create=True)
    assert offered("show net0") == ["net0/"]


def test_tab_completes_in_the_shell() -> None:
    _, out, _ = shell("ech\thi\rexit\r")  # Tab completes "echo " (with its space)
    assert out.splitlines()[:2] == ["iPXE> echo hi", "hi"]


def test_second_tab_lists_candidates() -> None:
    _, out, _ = shell("s\t\t\x03exit\r")
    lines = out.splitlines()
    assert lines[0] == "iPXE> s"
    prompt_again = next(i for i in range(1, len(lines)) if lines[i].startswith("iPXE> "))
    listed = " ".join(lines[1:prompt_again]).split()
    assert {"show", "sleep", "set", "shell"} <= set(listed) and all(word.startswith("s") for word in listed)
    assert lines[prompt_again] == "iPXE> s"


def test_read_line_redraws_only_the_change() -> None:
    stream = io.BytesIO()
    console = Console(stream, tty=True)  # type: ignore[arg-type]
    history = ["echo long line"]
    text = asyncio.run(read_line(console, ScriptedKeys("echo x\x1b[A\r"), prompt="iPXE> ", history=history))
    assert text == "echo long line"
    assert stream.getvalue().decode() == "iPXE> echo x\blong line\n"
    assert history == ["echo long line", "echo long line"]
    line = EditString("abc")
    assert line.handle(0x01) and line.cursor == 0


class SlowTypist:
    """Types each line only when asked for it (so ``sleep`` finds nothing to eat)."""

    interactive = False

    def __init__(self, text: str) -> None:
        self.keys = ScriptedKeys(text)

    async def get_key(self, timeout: float | None) -> int | None:
        return await self.keys.get_key(timeout)

    def pending(self) -> list[int]:
        return []


def test_ctrl_c_interrupts_the_running_command_not_the_shell() -> None:
    ctx, stream = session()
    ctx.keys = SlowTypist("sleep 30\recho ${errno}\rexit\r")

    async def main() -> int:
        asyncio.get_running_loop().call_later(0.5, os.kill, os.getpid(), signal.SIGINT)
        return await run_top_script(ctx, "#!ipxe\nshell\necho after\n", "test")

    started = time.monotonic()
    status = asyncio.run(main())
    ctx.console.close()
    assert time.monotonic() - started < 10
    assert status == 0
    assert stream.getvalue().decode().splitlines()[-4:] == ["iPXE> echo ${errno}", "0xb0720a0", "iPXE> exit", "after"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_pyipxe_shell_subcommand(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(Path(pyipxe.__file__).parent.parent)}
    result = subprocess.run([sys.executable, "-m", "pyipxe", "shell", "--platform", "pcbios", "--input",
                             r"set x 5\recho x=${x}\rexit 7\r"], capture_output=True, timeout=30,
                            stdin=subprocess.DEVNULL, env=env)
    assert result.stdout.decode().splitlines() == ["iPXE> set x 5", "iPXE> echo x=${x}", "x=5", "iPXE> exit 7"]
    assert result.returncode == 1 and "0x00000007" in result.stderr.decode()
