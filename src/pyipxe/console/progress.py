"""Download progress, as iPXE's monojob shows it, plus a live bar on a terminal.

Why two forms: logs and serial consoles must read exactly like iPXE
(``http://host/file... ok``: a dot a second while the size is unknown, a percentage
erased again once known); a person at a terminal wants size, rate and ETA. Both are
drawn after ``<uri>...`` and erased with backspaces before `` ok`` or the error, as iPXE
does, so the finished line is identical either way.
"""

from __future__ import annotations

import time

from pyipxe.console.output import Console


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class Progress:
    """The progress of one foreground job (a download) on the console."""

    def __init__(self, console: Console, label: str | None, *, live: bool | None = None) -> None:
        self.console = console
        self.label = label
        self.live = console.is_tty if live is None else live
        self.shown = 0  # characters to erase before the next drawing
        self.started = time.monotonic()

    def begin(self) -> None:
        if self.label is not None:
            self.console.write(f"{self.label}...")

    def tick(self, completed: int, total: int | None) -> None:
        """Called once a second (iPXE's TICKS_PER_SEC display rate)."""
        if self.label is None:
            return
        self._clear()
        if self.live:
            text = self._bar(completed, total)
            self.console.write(text)
            self.shown = len(text)
        elif total:
            text = f"{(100 * (completed // 128)) // max(1, total // 128):3d}%"
            self.console.write(text)
            self.shown = len(text)
        else:
            self.console.write(".")
            self.shown = 0

    def _bar(self, completed: int, total: int | None) -> str:
        elapsed = max(1e-6, time.monotonic() - self.started)
        rate = completed / elapsed
        if total:
            fraction = min(1.0, completed / total)
            filled = int(fraction * 20)
            eta = (total - completed) / rate if rate > 0 else 0
            return (f" [{'#' * filled}{'.' * (20 - filled)}] {fraction * 100:3.0f}% {_size(completed)}/{_size(total)}"
                    f" {_size(rate)}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        return f" {_size(completed)} {_size(rate)}/s"

    def _clear(self) -> None:
        if self.shown:
            self.console.write("\b" * self.shown + " " * self.shown + "\b" * self.shown)
            self.shown = 0

    def end(self, error_text: str | None) -> None:
        if self.label is None:
            return
        self._clear()
        self.console.print(" ok" if error_text is None else f" {error_text}")
