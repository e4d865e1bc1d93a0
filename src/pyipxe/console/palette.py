"""Colours of iPXE's full-screen UIs: eight palette entries and eight colour pairs.

Why a palette object: ``colour`` redefines what a colour number shows (a basic ANSI
colour, or a 24-bit RGB value on terminals that take it) and ``cpair`` which colours a
pair uses; menus and forms draw with pair numbers only (iPXE's ansicol). The defaults
are iPXE's: normal white on blue, selected white on red, separators cyan on blue, edit
boxes black on cyan, alerts white on red.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BLACK, RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN, WHITE = range(8)
DEFAULT = 9

CPAIR_DEFAULT = 0
CPAIR_NORMAL = 1
CPAIR_SELECT = 2
CPAIR_SEPARATOR = 3
CPAIR_EDIT = 4
CPAIR_ALERT = 5
CPAIR_URL = 6
CPAIR_PXE = 7


def _default_pairs() -> list[tuple[int, int]]:
    return [
        (DEFAULT, DEFAULT),
        (WHITE, BLUE),
        (WHITE, RED),
        (CYAN, BLUE),
        (BLACK, CYAN),
        (WHITE, RED),
        (CYAN, DEFAULT),
        (BLACK, WHITE),
    ]


@dataclass
class Palette:
    #: colour number → (basic ANSI colour, RGB or None)
    colours: list[tuple[int, int | None]] = field(default_factory=lambda: [(n, None) for n in range(8)])
    pairs: list[tuple[int, int]] = field(default_factory=_default_pairs)

    def define_colour(self, number: int, basic: int | None, rgb: int | None) -> None:
        current_basic, _ = self.colours[number]
        self.colours[number] = (current_basic if basic is None else basic, rgb)

    def define_pair(self, number: int, foreground: int | None, background: int | None) -> None:
        fg, bg = self.pairs[number]
        self.pairs[number] = (fg if foreground is None else foreground, bg if background is None else background)

    def _colour(self, number: int, layer: int) -> str:
        if number == DEFAULT or not 0 <= number < 8:
            return f"{layer}9"
        basic, rgb = self.colours[number]
        if rgb is not None:
            return f"{layer}8;2;{(rgb >> 16) & 0xFF};{(rgb >> 8) & 0xFF};{rgb & 0xFF}"
        return f"{layer}{basic}"

    def sgr(self, pair: int, bold: bool, *, colour: bool = True) -> str:
        """The escape sequence for ``pair`` (as iPXE's ANSI screen writes it).

        Without colour, pairs that mark something (selection, edit box, alert) are shown
        in reverse video so the selection stays visible.
        """
        weight = "1" if bold else "22"
        if not colour:
            reverse = ";7" if pair in (CPAIR_SELECT, CPAIR_EDIT, CPAIR_ALERT) else ""
            return f"\x1b[0;{weight}{reverse}m"
        fg, bg = self.pairs[pair] if 0 <= pair < 8 else (DEFAULT, DEFAULT)
        return f"\x1b[0;{weight};{self._colour(fg, 3)};{self._colour(bg, 4)}m"
