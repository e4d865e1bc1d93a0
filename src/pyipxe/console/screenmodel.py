"""What a person would have seen on iPXE's 80x25 console, as text: the pipe-side renderer.

Why a screen model: iPXE's full-screen UIs (menus, login, forms, config) draw with
cursor moves, and its line output redraws with backspaces and carriage returns. A log
or a pipe should get the text that was *shown*, row by row, which is also how the
golden transcripts of the real iPXE were made. So the console's output on a pipe is fed
through this model and the model emits text.

Rules (those of the transcripts in tests/golden, see tests/golden/README.md):
- A row is a list of cells; a space written over an already written cell *erases* it,
  and erased cells at the end of a row are dropped when the row is emitted.
- A row is emitted when it scrolls off the top, when the screen is cleared
  (``ESC [ 2 J``), or at the end. After a clear, empty rows before the first row with
  content are dropped ("fresh" screen).
- Until the first cursor move after a clear the output is plain lines: a row is final as
  soon as it ends (nothing can reach it again), so it is emitted at once and the pipe
  streams. After a cursor move (a full-screen UI is drawing) rows are held until they
  scroll off or are cleared, because a later move may still change them.
- Colours and other escape sequences leave no trace.
"""

from __future__ import annotations

ROWS = 25
COLS = 80

Cell = tuple[str, bool]  # (character, erased)


class _Row:
    __slots__ = ("cells", "emitted")

    def __init__(self) -> None:
        self.cells: list[Cell | None] = []
        self.emitted = False

    def text(self) -> str:
        end = len(self.cells)
        while end and (self.cells[end - 1] is None or self.cells[end - 1][1]):  # type: ignore[index]
            end -= 1
        return "".join(" " if cell is None else cell[0] for cell in self.cells[:end])


class ScreenRenderer:
    """Feed console text (escapes included); get back the finished rows as text lines."""

    def __init__(self, rows: int = ROWS, cols: int = COLS) -> None:
        self.nrows, self.ncols = rows, cols
        self.rows = [_Row() for _ in range(rows)]
        for row in self.rows:
            row.emitted = True  # what was on the console before: not ours to show
        self.r = rows - 1
        self.rows[self.r].emitted = False  # plain output runs on the bottom row, as on a console that has scrolled
        self.c = 0
        self.addressed = False
        self.fresh = False  # the console already showed something (iPXE's banner)
        self._escape: str | None = None
        self._out: list[str] = []

    # -- output -------------------------------------------------------------
    def _emit(self, row: _Row, newline: bool = True) -> None:
        if row.emitted:
            return
        row.emitted = True
        if self.fresh and not row.cells:
            return
        self.fresh = False
        self._out.append(row.text() + ("\n" if newline else ""))

    def _take(self) -> str:
        text = "".join(self._out)
        self._out = []
        return text

    def _scroll(self) -> None:
        self._emit(self.rows.pop(0))
        self.rows.append(_Row())
        self.r = self.nrows - 1

    def _screen_rows(self) -> list[_Row]:
        last = max((i for i, row in enumerate(self.rows) if row.cells), default=-1)
        if self.c > 0:
            last = max(last, self.r)
        return self.rows[: last + 1]

    def _clear(self) -> None:
        for row in self._screen_rows():
            self._emit(row)
        self.rows = [_Row() for _ in range(self.nrows)]
        self.addressed = False
        self.fresh = True

    # -- input --------------------------------------------------------------
    def feed(self, text: str) -> str:
        for char in text:
            if self._escape is not None:
                self._escape += char
                if len(self._escape) == 1:
                    if char != "[":
                        self._escape = None  # ESC c and friends: nothing to show
                elif char.isalpha() or char in "@`~" or len(self._escape) > 16:
                    self._apply_escape(self._escape[1:-1], char)
                    self._escape = None
            elif char == "\x1b":
                self._escape = ""
            elif char == "\n":
                self._newline()
            elif char == "\r":
                self.c = 0
            elif char == "\b":
                self.c = max(0, self.c - 1)
            elif char == "\x07":
                pass
            else:
                self._put(" " if char == "\0" else char)  # a NUL shows as a blank cell
        return self._take()

    def _newline(self) -> None:
        if not self.addressed:
            # The rows above would scroll off first: keep that order.
            for row in self.rows[: self.r + 1]:
                self._emit(row)
        self.c = 0
        self.r += 1
        if self.r >= self.nrows:
            self._scroll()

    def _put(self, char: str) -> None:
        if self.addressed and self.c >= self.ncols:
            self._newline()
        row = self.rows[self.r]
        cells = row.cells
        while len(cells) < self.c:
            cells.append(None)
        if self.c < len(cells):
            cells[self.c] = (char, char == " " and cells[self.c] is not None)
        else:
            cells.append((char, False))
        row.emitted = False
        self.c += 1

    def _apply_escape(self, params: str, final: str) -> None:
        if final in "Hf":
            parts = params.split(";") if params else []
            try:
                row = int(parts[0]) if parts and parts[0] else 1
                col = int(parts[1]) if len(parts) > 1 and parts[1] else 1
            except ValueError:
                return
            self.addressed = True
            self.r = min(max(row - 1, 0), self.nrows - 1)
            self.c = min(max(col - 1, 0), self.ncols - 1)
        elif final == "J" and params == "2":
            self._clear()
        # colours (m), cursor visibility and screen modes (h/l): nothing to record

    def finish(self) -> str:
        """Everything not yet emitted; the cursor's own unfinished row without a newline."""
        rows = self._screen_rows()
        for row in rows:
            self._emit(row, newline=row is not self.rows[self.r])
        return self._take()
