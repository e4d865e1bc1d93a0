"""The download progress line: iPXE's form on a pipe, a live bar on a terminal, same final line."""

from __future__ import annotations

import io

from pyipxe.console.output import Console, LineRenderer
from pyipxe.console.progress import Progress


def _screen(raw: bytes) -> str:
    renderer = LineRenderer()
    return renderer.feed(raw.decode()) + renderer.take()


def test_terminal_bar_shows_size_rate_eta_and_is_erased() -> None:
    stream = io.BytesIO()
    console = Console(stream, tty=True)  # type: ignore[arg-type]
    progress = Progress(console, "http://h/big.img")
    progress.begin()
    progress.tick(50 << 20, 100 << 20)
    shown = stream.getvalue().decode()
    assert " 50% 50.0 MiB/100.0 MiB" in shown and "/s ETA " in shown and "[##########" in shown
    progress.tick(100 << 20, 100 << 20)
    progress.end(None)
    assert _screen(stream.getvalue()) == "http://h/big.img... ok\n"


def test_pipe_shows_ipxe_percentages_then_erases_them() -> None:
    stream = io.BytesIO()
    console = Console(stream, tty=False)  # type: ignore[arg-type]
    progress = Progress(console, "tftp://h/f")
    progress.begin()
    progress.tick(10, 40)
    progress.tick(20, 40)
    progress.end("Connection timed out (https://ipxe.org/4c126035)")
    console.close()
    assert stream.getvalue().decode() == "tftp://h/f... Connection timed out (https://ipxe.org/4c126035)\n"


def test_unknown_size_leaves_one_dot_a_second() -> None:
    stream = io.BytesIO()
    console = Console(stream, tty=False)  # type: ignore[arg-type]
    progress = Progress(console, "http://h/stream")
    progress.begin()
    for _ in range(3):
        progress.tick(100, None)
    progress.end(None)
    console.close()
    assert stream.getvalue().decode() == "http://h/stream...... ok\n"
