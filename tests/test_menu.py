"""Menus, forms, login and colours without a terminal: iPXE's semantics, preset answers,
timeouts on a fake clock, the pipe renderer, and every menu script of the corpus.

Byte-exact comparisons with the real iPXE are in tests/golden/cases/menu-*, login-*,
shell-*; these tests pin the rest (non-TTY policy, --choose, 2.0 behaviour).
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyipxe
import pyipxe.script.commands.menu_cmds as menu_cmds
from pyipxe.console import keys as k
from pyipxe.console.dynui import DynamicUI
from pyipxe.console.keys import KeySource, NoKeys, ScriptedKeys
from pyipxe.console.menu import JumpScroller, initial_selection, show_menu
from pyipxe.console.output import Console
from pyipxe.console.palette import CPAIR_NORMAL, CPAIR_SELECT, Palette
from pyipxe.console.screenmodel import ScreenRenderer
from pyipxe.console.tui import Screen
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.runner import apply_preset, run_top_script
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter
from pyipxe.script.parser import decode_script, parse_script, split_commands

#: a small menu with gaps, hot keys and a default (the base of the golden menu-* cases)
MENU = (Path(__file__).parent / "fixtures" / "console" / "menu.ipxe").read_text()


class FakeClock:
    """asyncio.sleep stand-in: records the waits, returns at once."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def session(keys: KeySource | None = None, *, choose: tuple[str, ...] = (), non_interactive: bool = False,
            clock: FakeClock | None = None) -> tuple[Context, io.BytesIO]:
    stream = io.BytesIO()
    ctx = Context(console=Console(stream, tty=False), keys=keys or NoKeys())  # type: ignore[arg-type]
    apply_preset(ctx, "platform=pcbios")
    ctx.ui.preselect.extend(choose)
    ctx.ui.non_interactive = non_interactive
    if clock is not None:
        ctx.ui.sleep = clock
    Interpreter(ctx)
    return ctx, stream


def run(script: str, keys: str | None = None, **kwargs: object) -> tuple[int, str, Context]:
    ctx, stream = session(ScriptedKeys(keys) if keys is not None else None, **kwargs)  # type: ignore[arg-type]
    status = asyncio.run(run_top_script(ctx, script, "test"))
    ctx.console.close()
    return status, stream.getvalue().decode(), ctx


def code(cls: ErrorClass, where: int) -> int:
    return IpxeError(ErrorSite(cls, where)).code("pcbios")


# -- choose: keys, defaults, errors ----------------------------------------------------


@pytest.mark.parametrize(("keys", "chosen"), [
    ("\x1b[B\r", "exit"),  # down skips the gap
    ("w", "windows"),  # a hot key chooses at once
    ("\x1b[H\r", "linux"),  # Home lands on the first item, not the gap above it
    ("\x1b[F\r", "exit"),
    ("\x1b[A\x1b[A\x1b[A\r", "linux"),  # Up stops at the top
    ("\t\t\r", "linux"),  # 2.0: Tab moves down and wraps (past the leading gap)
    ("\r", "shell"),
])
def test_choose_keys(keys: str, chosen: str) -> None:
    status, out, _ = run(MENU + "choose sel && echo chosen ${sel}\n", keys)
    assert status == 0
    assert out.rstrip().endswith(f"chosen {chosen}")


@pytest.mark.parametrize("key", ["\x1b", "\x03"])
def test_choose_cancel(key: str) -> None:
    status, _out, ctx = run(MENU + "choose sel\n", key)
    assert status == code(ErrorClass.ECANCELED, 0x2CE0) == 0x0B2CE0A0
    assert ctx.settings.fetch_text("sel") == ""
    assert ctx.ui.registry.find(None) is None  # destroyed even on failure


def test_choose_without_selectable_items() -> None:
    status, out, _ = run("#!ipxe\nmenu Gaps\nitem --gap a\nitem\nchoose x\n", "\r")
    assert status == 0x2D2CE03B
    assert "Gaps" not in out  # refused before drawing


def test_unknown_ui_messages() -> None:
    _status, out, _ = run("#!ipxe\nitem a A || echo e ${errno}\nchoose --menu m x || echo f ${errno}\n")
    assert out.splitlines() == ["No default user interface", "e 0x2d16203b",
                                '"m": no such user interface', "f 0x2d16203b"]


def test_choose_default_option_beats_item_default() -> None:
    _status, out, _ = run(MENU + "choose --default exit sel && echo chosen ${sel}\n", "\r")
    assert out.rstrip().endswith("chosen exit")


def test_initial_selection_rules() -> None:
    ui = DynamicUI(None, "t")
    ui.add(None, "gap")
    ui.add("a", "A")
    ui.add("b", "B", default=True)
    ui.add("c", "C", default=True)
    assert initial_selection(ui, None) == 3  # the last --default wins
    assert initial_selection(ui, "b") == 2
    assert initial_selection(ui, "nosuch") == 1  # the first selectable item
    assert initial_selection(DynamicUI(None, "t"), None) is None


def test_keep_and_named_menus() -> None:
    script = ("#!ipxe\nmenu --name m Named\nitem --menu m a A\nitem --menu m b B\n"
              "choose --keep --menu m --default b x && echo ${x}\nchoose --menu m x && echo ${x}\n"
              "choose --menu m x || echo gone\n")
    _status, out, _ = run(script, "\r\x1b[B\r")
    assert [line for line in out.splitlines() if line in ("b", "gone")] == ["b", "b", "gone"]


def test_menu_delete_and_replace() -> None:
    _status, _out, ctx = run("#!ipxe\nmenu First\nmenu Second\nmenu --name x --delete\nitem a A\n")
    ui = ctx.ui.registry.find(None)
    assert ui is not None and ui.title == "Second" and [i.name for i in ui.items] == ["a"]
    assert ctx.ui.registry.find("x") is None


def test_choose_stores_typed_value() -> None:
    _status, out, _ctx = run("#!ipxe\nmenu T\nitem 0x10 Sixteen\nchoose n:uint8 && show n\n", "\r")
    assert out.rstrip().endswith("n:uint8 = 0x10")


def test_hot_key_on_gap_moves_to_next_item() -> None:
    script = "#!ipxe\nmenu T\nitem a A\nitem --gap --key g Gap\nitem b B\nchoose x && echo ${x}\n"
    _status, out, _ = run(script, "g\r")
    assert out.rstrip().endswith("b")


# -- without a terminal: timeouts, --non-interactive, --choose --------------------------


def test_no_keys_no_timeout_takes_default_at_once() -> None:
    clock = FakeClock()
    _status, out, _ = run(MENU + "choose sel && echo chosen ${sel}\n", clock=clock)
    assert out.rstrip().endswith("chosen shell") and clock.waited == []


def test_no_keys_timeout_is_waited_out_second_by_second() -> None:
    clock = FakeClock()
    _status, out, _ = run(MENU + "choose --timeout 2500 sel && echo chosen ${sel}\n", clock=clock)
    assert out.rstrip().endswith("chosen shell")
    assert [round(w, 1) for w in clock.waited] == [0.5, 1.0, 1.0]


def test_non_interactive_does_not_wait() -> None:
    clock = FakeClock()
    _status, out, _ = run(MENU + "choose --timeout 9000 sel && echo chosen ${sel}\n", clock=clock,
                         non_interactive=True)
    assert out.rstrip().endswith("chosen shell") and clock.waited == []


def test_key_stops_countdown_and_retimeout_restarts_it() -> None:
    clock = FakeClock()
    _status, out, _ = run(MENU + "choose --timeout 5000 --retimeout 2000 sel && echo ${sel}\n", "\x1b[B",
                         clock=clock)
    assert out.rstrip().endswith("exit")  # after the key, a new 2 s countdown chose the selection
    assert [round(w, 1) for w in clock.waited] == [1.0, 1.0]


def test_preselected_answers_consumed_in_order() -> None:
    script = MENU + "choose a\n" + MENU + "choose b\n" + MENU + "choose c && echo ${a} ${b} ${c}\n"
    _status, out, _ = run(script, choose=("linux", "exit"))
    assert out.rstrip().endswith("linux exit shell")  # the third takes its default
    assert "Boot Windows" in out  # the menu is still drawn for the log


def test_preselected_answer_not_in_menu(capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, _ = run(MENU + "choose sel\n", choose=("nosuch",))
    assert status == 0x2D2CE03B
    assert "--choose nosuch" in capsys.readouterr().err


def test_cli_choose_and_non_interactive(tmp_path: Path) -> None:
    script = tmp_path / "m.ipxe"
    script.write_text(MENU + "choose --timeout 60000 sel && echo chosen ${sel}\n")
    env = {"PYTHONPATH": str(Path(pyipxe.__file__).parent.parent)}
    for extra, chosen in (([], "shell"), (["--choose", "windows"], "windows")):
        result = subprocess.run([sys.executable, "-m", "pyipxe", "run", "--non-interactive", *extra, str(script)],
                                capture_output=True, timeout=30, stdin=subprocess.DEVNULL, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().rstrip().endswith(f"chosen {chosen}")


# -- drawing ------------------------------------------------------------------------------


def test_menu_screen_on_a_pipe() -> None:
    _status, out, _ = run(MENU + "choose --timeout 1 sel\n", non_interactive=True)
    lines = out.splitlines()
    assert lines[0] == " " * 32 + "Test menu title"
    assert lines[2] == "   Section one:" + " " * 64  # never redrawn: its trailing blanks stay
    assert lines[5] == "   Drop to shell"  # redrawn: blanks over blanks are erased


def test_long_menu_scrolls_a_page_at_a_time() -> None:
    items = "".join(f"item i{n} Item {n}\n" for n in range(1, 31))
    _status, out, _ = run("#!ipxe\nmenu Long\n" + items + "choose x && echo ${x}\n", "\x1b[6~\x1b[6~\r")
    assert out.rstrip().endswith("i30")
    assert "   ..." in out.splitlines()  # the "more above" marker


def test_jump_scroller() -> None:
    scroll = JumpScroller(rows=5, count=12, current=0)
    assert scroll.key_move(k.KEY_NPAGE) == 5
    scroll.move(5)
    assert scroll.jump() and scroll.first == 5
    assert scroll.key_move(k.KEY_PPAGE) == -1
    assert scroll.move(-100) == +1 and scroll.current == 0
    assert scroll.move(+100) == -1 and scroll.current == 11
    assert scroll.jump() and scroll.first == 10 and scroll.is_last() and not scroll.is_first()


def test_show_menu_tty_uses_alternate_screen() -> None:
    stream = io.BytesIO()
    console = Console(stream, tty=True)  # type: ignore[arg-type]
    console.colour = True
    ui = DynamicUI(None, "T")
    ui.add("a", "A")
    chosen = asyncio.run(show_menu(Screen(console), ScriptedKeys("\r"), ui))
    raw = stream.getvalue().decode()
    assert chosen.name == "a"
    assert raw.startswith("\x1b[?1049h") and raw.endswith("\x1b[?1049l")
    assert "\x1b[0;1;37;41m" in raw  # the selected bar: bold white on red


# -- the pipe renderer ----------------------------------------------------------------------


def test_renderer_streams_plain_lines() -> None:
    renderer = ScreenRenderer()
    assert renderer.feed("abc") == ""
    assert renderer.feed("\b \bd\n") == "abd\n"  # erased cell then overwritten
    assert renderer.feed("x\rab\n") == "ab\n"
    assert renderer.feed("\n") == "\n"
    assert renderer.feed("\x1b[1mbold\x1b[0m\n") == "bold\n"
    assert renderer.feed("tail") == "" and renderer.finish() == "tail"


def test_renderer_screen_mode() -> None:
    renderer = ScreenRenderer()
    out = renderer.feed("before\n\x1b[2J\x1b[2;5Htitle\x1b[4;1Hrow")
    assert out == "before\n"  # held: a cursor move may still change these rows
    out = renderer.feed("\x1b[4;1HROW\x1b[25;1H\n\x1b[0m\x1b[2Jafter\n")
    assert out == "    title\n\nROW\nafter\n"  # leading blank rows of a cleared screen dropped


@given(st.text(alphabet=st.sampled_from(list("ab \b\r\n\x1b[0123456789;HJm?lh")), max_size=200))
def test_renderer_never_fails(text: str) -> None:
    renderer = ScreenRenderer()
    out = renderer.feed(text) + renderer.finish()
    assert "\x1b" not in out


# -- login, forms, colours ------------------------------------------------------------------


def test_login_stores_credentials() -> None:
    _status, out, _ctx = run("#!ipxe\nlogin && echo ${username}:${password}\n", "alice\rs3cret\r")
    assert out.rstrip().endswith("alice:s3cret")
    assert "******______________" in out and "s3cret_" not in out  # the password is masked


def test_login_without_keys_is_cancelled() -> None:
    _status, out, _ = run("#!ipxe\nlogin || echo failed ${errno}\n")
    assert "Could not set credentials: Operation canceled (https://ipxe.org/0b17e0a0)" in out
    assert out.rstrip().endswith("failed 0xb17e0a0")


def test_form_present_stores_fields() -> None:
    script = ("#!ipxe\nform Config\nitem --form= host Host name\nitem --secret pw Password\nitem n:int8 Number\n"
              "set host old\npresent && echo ${host} ${pw} ${n}\n")
    script = script.replace("--form= ", "")
    _status, out, _ = run(script, "\x08\x08\x08new\rpass\r12\r")
    assert out.rstrip().endswith("new pass 12")
    assert "Ctrl-X - save changes" in out and "****" in out


def test_form_shows_store_errors_and_keeps_editing() -> None:
    script = "#!ipxe\nform F\nitem n:int8 Number\npresent && echo ok ${n} || echo failed\n"
    _status, out, _ = run(script, "zz\r\x1b")
    assert 'Could not store "n": Invalid argument' in out  # shown beneath the box
    assert out.rstrip().endswith("failed")
    _status, out, _ = run(script, "zz\r\x08\x087\r")  # corrected: stored, the message is gone
    assert "Could not store" not in out and out.rstrip().endswith("ok 7")


def test_form_errors() -> None:
    _status, out, _ = run("#!ipxe\nform F\nitem --gap x\npresent || echo e ${errno}\n")
    assert out.splitlines()[-1].startswith("e 0x1c")
    _status, out, _ = run("#!ipxe\nform F\nitem a A\npresent || echo e ${errno}\n", "\x1b")
    assert out.splitlines()[-1].startswith("e 0xb")


def test_colour_and_cpair() -> None:
    status, out, ctx = run("#!ipxe\ncolour --rgb 0x102030 4\ncpair --foreground 4 --background 9 2\n"
                           "colour 9 || echo bad\ncpair --foreground 8 1 || echo bad2\nconsole -x 1024 -y 768 -k\n")
    assert status == 0 and out.splitlines() == ["bad", "bad2"]
    palette = ctx.ui.palette
    assert palette.sgr(CPAIR_SELECT, True) == "\x1b[0;1;38;2;16;32;48;49m"
    assert palette.sgr(CPAIR_NORMAL, False) == "\x1b[0;22;37;48;2;16;32;48m"  # colour 4 is the blue
    assert Palette().sgr(CPAIR_NORMAL, False) == "\x1b[0;22;37;44m"
    assert Palette().sgr(CPAIR_SELECT, True, colour=False) == "\x1b[0;1;7m"


# -- every menu script of the corpus reaches its first choose ---------------------------------

CORPUS = Path(__file__).parent / "corpus"
#: what a script expects its environment (an earlier script, DHCP) to have set
COMMON = ("platform=pcbios", "ip=10.0.2.15", "netmask=255.255.255.0", "gateway=10.0.2.2",
          "dhcp-server=10.0.2.2", "next-server=10.0.2.2", "dns=10.0.2.3")
PRESETS = {"__debian": ("menu=debian",), "__ubuntu": ("menu=ubuntu",), "__archlinux.ipxe": ("menu=archlinux",),
           "menu__menu.ipxe": ("version=3.x", "boot_timeout=300000")}
#: keys typed at start: netboot.xyz's disk scripts offer their failsafe menu on "m"
KEYS = {"disks__autoexec": "m", "disks__netboot.xyz": "m"}


def _choose_lines(text: str) -> list[int]:
    script = parse_script(text)
    return [line.lineno for line in script.lines
            if any(command.tokens and command.tokens[0] == "choose" for command in split_commands(line.command_text))]


def _menu_scripts() -> Iterator[Path]:
    for path in sorted(CORPUS.glob("*.ipxe")):
        if _choose_lines(decode_script(path.read_bytes())):
            yield path


def _static_items(lines: list[str], choose_lineno: int) -> list[tuple[str | None, str]]:
    """``item`` lines between the choose and the ``menu`` above it that need no expansion,
    parsed here independently of pyipxe's option parser: (name, text)."""
    items: list[tuple[str | None, str]] = []
    for raw in reversed(lines[: choose_lineno - 1]):
        words = raw.split()
        if words and words[0] == "menu":
            break
        if not words or words[0] != "item" or "${" in raw or any(op in words for op in ("||", "&&", ";")):
            continue
        rest, gap = words[1:], False
        while rest and rest[0].startswith("-"):
            option = rest.pop(0)
            if option == "--":
                break
            if option in ("--gap", "-g"):
                gap = True
            elif option in ("--key", "-k", "--menu", "-m") and rest:
                rest.pop(0)
        name = None if gap or not rest else rest.pop(0)
        items.insert(0, (name, " ".join(rest)))
    return items


@pytest.mark.parametrize("path", list(_menu_scripts()), ids=lambda p: p.stem[-48:])
def test_corpus_menu_reaches_first_choose(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = decode_script(path.read_bytes())
    keys = next((ScriptedKeys(v) for key, v in KEYS.items() if key in path.name), NoKeys())
    ctx, stream = session(keys, non_interactive=True)
    for preset in COMMON + next((v for key, v in PRESETS.items() if key in path.name), ()):
        apply_preset(ctx, preset)

    async def no_dns(host: str) -> list[object]:
        raise IpxeError(ErrorSite(ErrorClass.ENXIO, 0x7F01))

    async def no_wait(seconds: float) -> None:
        return None

    assert ctx.fetch_env is not None
    ctx.fetch_env.resolve = no_dns  # type: ignore[assignment]
    monkeypatch.setattr(asyncio, "sleep", no_wait)
    reached: list[tuple[DynamicUI, int]] = []
    real_show_menu = menu_cmds.show_menu

    async def first_choose(screen: Screen, keys: KeySource, ui: DynamicUI, **kwargs: object) -> object:
        frame = ctx.run().frames[-1]
        reached.append((ui, frame.script.lines[frame.position - 1].lineno))
        await real_show_menu(screen, keys, ui, choose_now=True)  # draw it, as iPXE shows it
        raise asyncio.CancelledError  # stop the script here

    monkeypatch.setattr(menu_cmds, "show_menu", first_choose)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(asyncio.wait_for(run_top_script(ctx, text, path.name), 30))
    ctx.console.close()
    assert reached, "no choose was reached"
    ui, lineno = reached[0]
    offered = [(item.name, item.text) for item in ui.items]
    expected = _static_items(text.splitlines(), lineno)
    position = 0
    for entry in expected:  # the static items, in order, among those offered
        assert entry in offered[position:], (entry, offered)
        position = offered.index(entry, position) + 1
    shown = stream.getvalue().decode("utf-8", "surrogateescape")
    selected = initial_selection(ui, None) or 0
    page = selected - selected % 20  # 20 rows of items on iPXE's 80x25 screen
    for item in ui.items[page : page + 20]:  # the drawn page lists the items offered
        assert item.text[:74].rstrip() in shown
