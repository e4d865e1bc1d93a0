"""Line status, operators, goto/exit, errno and the basic commands, in-process."""

from __future__ import annotations

import asyncio
import io

from conftest import run_script
from pyipxe.console.output import Console
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter
from pyipxe.script.parser import parse_script


def test_operators_and_line_status() -> None:
    run = run_script(
        "#!ipxe\n"
        "iseq a b || echo or-ran\n"
        "iseq a a && echo and-ran\n"
        "iseq a b && echo skipped || echo fallback\n"
        "iseq a b ; echo semicolon\n"
        "isset ${nothing} && echo yes ||\n"
        "echo end\n"
    )
    assert run.output == "or-ran\nand-ran\nfallback\nsemicolon\nend\n"
    assert run.status == 0


def test_failure_ends_script_with_that_status() -> None:
    run = run_script("#!ipxe\necho one\niseq 1 2\necho never\n")
    assert run.output == "one\n"
    assert run.status == 0x46022001
    assert run.context.errno == 0x46022001


def test_errno_is_never_cleared() -> None:
    run = run_script("#!ipxe\nisset ${x} || echo ${errno}\necho ok\necho ${errno}\n")
    assert run.output == "0x2d02203b\nok\n0x2d02203b\n"


def test_goto_loops_labels_with_commands_and_missing_labels() -> None:
    run = run_script(
        "#!ipxe\nset i:int32 0\n:top echo at ${i}\ninc i\niseq ${i} 2 || goto top\n"
        "goto nowhere || echo missing ${errno}\n"
    )
    assert run.output == "at 0\nat 1\nmissing 0x2d02803b\n"


def test_goto_drops_rest_of_line() -> None:
    run = run_script("#!ipxe\ngoto x ; echo not-run\n:x\necho done\n")
    assert run.output == "done\n"


def test_exit_codes() -> None:
    assert run_script("#!ipxe\nexit 42\necho no\n").status == 42
    assert run_script("#!ipxe\nexit\necho no\n").status == 0
    run = run_script("#!ipxe\nexit 0 ; echo no\necho no\n")
    assert run.output == "" and run.status == 0


def test_empty_expansion_is_an_argument() -> None:
    run = run_script("#!ipxe\necho ${e} z\nset v a ${e} b\necho [${v}]\n")
    assert run.output == " z\n[a  b]\n"


def test_unknown_command() -> None:
    run = run_script("#!ipxe\nfrobnicate http://x/ || echo ${errno}\n")
    assert run.output == "frobnicate: command not found\n0x2e022001\n"


def test_unterminated_continuation_fails_einval() -> None:
    assert run_script("#!ipxe\necho a\necho b \\").status == 0x1C028002


def test_efi_platform_changes_error_numbers() -> None:
    run = run_script("#!ipxe\nisset ${x} || echo ${errno}\n", presets=("platform=efi",))
    assert run.output == "0x2d02208e\n"


def test_goto_outside_a_script() -> None:
    stream = io.BytesIO()
    context = Context(console=Console(stream, tty=False))  # type: ignore[arg-type]
    interpreter = Interpreter(context)
    assert asyncio.run(interpreter.run_line("goto x")) == 0x3D028001


def test_prompt_and_read_with_scripted_keys() -> None:
    run = run_script("#!ipxe\nprompt --key y Go? && echo yes\nread name\necho hello ${name}\n", keys="yBob\r")
    assert run.output == "yes\nBob\nhello Bob\n"
    assert run_script("#!ipxe\nprompt --key y Go? || echo ${errno}\n", keys="n").output == "0xb22e0a0\n"
    assert run_script("#!ipxe\nprompt -t 10 || echo ${errno}\n").output == "0x4c22e035\n"


def test_goto_loop_yields_to_event_loop() -> None:
    """A tight goto loop must stay cancellable (Ctrl-C cancels the main task)."""

    async def scenario() -> bool:
        stream = io.BytesIO()
        context = Context(console=Console(stream, tty=False))  # type: ignore[arg-type]
        task = asyncio.create_task(Interpreter(context).run_script(parse_script("#!ipxe\n:x goto x\n")))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(asyncio.wait_for(scenario(), 10))
