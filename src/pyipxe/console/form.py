"""Edit boxes, iPXE's login screen and forms (``present``).

Why here and hand-written: the edit box is iPXE's mucurses widget (underscore-padded,
stars for secrets, scrolling to keep the cursor three characters from the left edge),
and its exact redraws make the pipe transcript match iPXE's. Editing keys are the line
editor's (:class:`pyipxe.console.editline.EditString`).

``login`` follows the layout of the iPXE build the golden transcripts were recorded from
(labels at the middle column, 20-wide boxes four rows around the middle); forms follow
the reference (§10): title on row 1, each field's label centred above an edit box half
the screen wide, ``Ctrl-X``/``Ctrl-C`` hints on the last row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyipxe.console import keys as k
from pyipxe.console.dynui import DynamicUI
from pyipxe.console.editline import EditString
from pyipxe.console.keys import KeySource
from pyipxe.console.palette import CPAIR_ALERT, CPAIR_EDIT, CPAIR_NORMAL
from pyipxe.console.tui import Screen
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# hci/tui/login_ui.c, as recorded from the real iPXE (0x0b17e0a0)
ERR_LOGIN_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x17E0)
# hci/tui/form_ui.c (2.0): the site bits are a guess (no recording of a 2.0 build here)
ERR_FORM_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x2D60)
ERR_FORM_NO_FIELDS = ErrorSite(ErrorClass.EINVAL, 0x2D60)
ERR_FORM_TOO_SMALL = ErrorSite(ErrorClass.ERANGE, 0x2D60)

EDITBOX_MIN_CHARS = 3
TAB = 0x09
CTRL_X = 0x18


class EditBox:
    """A one-line edit box at (row, col), ``width`` cells, at most ``limit`` characters."""

    def __init__(self, text: str, row: int, col: int, width: int, *, stars: bool = False, limit: int = 63) -> None:
        self.string = EditString(text[:limit])
        self.row, self.col, self.width = row, col, width
        self.stars = stars
        self.limit = limit
        self.first = 0

    @property
    def text(self) -> str:
        return self.string.text

    def edit(self, key: int) -> bool:
        if 0x20 <= key < k.SPECIAL_BASE and key != k.DELETE_ASCII and len(self.string.text) >= self.limit:
            return True  # the buffer is full: iPXE drops the character
        return self.string.handle(key)

    def draw(self, screen: Screen) -> None:
        cursor = self.string.cursor
        underflow = EDITBOX_MIN_CHARS - (cursor - self.first)
        overflow = (cursor - self.first) - (self.width - 1)
        if underflow > 0:
            self.first = max(0, self.first - underflow)
        elif overflow > 0:
            self.first += overflow
        shown = self.string.text[self.first : self.first + self.width]
        if self.stars:
            shown = "*" * len(shown)
        screen.mvaddstr(self.row, self.col, shown + "_" * (self.width - len(shown)))
        screen.move(self.row, self.col + cursor - self.first)


async def login_ui(screen: Screen, keys: KeySource, username: str, password: str) -> tuple[str, str]:
    """The login screen; the typed (username, password), or ECANCELED."""
    lines, cols = screen.lines, screen.cols
    user_box = EditBox(username, lines // 2 - 2, cols // 2 - 10, 20)
    pass_box = EditBox(password, lines // 2 + 4, cols // 2 - 10, 20, stars=True)
    screen.initscr()
    screen.pair = CPAIR_NORMAL
    screen.erase()
    screen.bold = True
    screen.mvaddstr(lines // 2 - 4, cols // 2 - 4, "Username:")
    screen.mvaddstr(lines // 2 + 2, cols // 2 - 4, "Password:")
    screen.bold = False
    screen.pair = CPAIR_EDIT
    user_box.draw(screen)
    pass_box.draw(screen)
    current = user_box
    done = False
    try:
        while not done:
            current.draw(screen)
            screen.refresh()
            key = await keys.get_key(None)
            if key is None or key in (k.CTRL_C, k.ESC):
                raise IpxeError(ERR_LOGIN_CANCELED)  # nobody can type: as if cancelled
            if key == k.KEY_DOWN:
                current = pass_box
            elif key == k.KEY_UP:
                current = user_box
            elif key == TAB:
                current = pass_box if current is user_box else user_box
            elif key in (k.CR, k.LF):
                if current is user_box:
                    current = pass_box
                else:
                    done = True
            else:
                current.edit(key)
    finally:
        screen.pair = CPAIR_NORMAL
        screen.erase()
        screen.endwin()
    return user_box.text, pass_box.text


@dataclass
class FormField:
    setting: str  # the setting name, scope and type included
    label: str
    box: EditBox
    label_row: int = -1
    error: str = ""


#: store(setting name, text) → error text, or "" once stored
Storer = Callable[[str, str], str]


async def show_form(screen: Screen, keys: KeySource, ui: DynamicUI, values: dict[str, str], store: Storer) -> None:
    """Present ``ui`` as a form; store every field when saved (reference §10)."""
    fields_items = [item for item in ui.items if item.name is not None]
    if not fields_items:
        raise IpxeError(ERR_FORM_NO_FIELDS)
    lines, cols = screen.lines, screen.cols
    per_field = sum(2 if item.text else 1 for item in fields_items)
    available = lines - 4  # title, a blank row, and the two hint rows
    if per_field > available:
        raise IpxeError(ERR_FORM_TOO_SMALL)
    spacing = 2 if per_field + len(fields_items) <= available else 1
    width = cols // 2
    fields: list[FormField] = []
    row = 3
    for item in fields_items:
        assert item.name is not None
        label_row = -1
        if item.text:
            label_row = row
            row += 1
        box = EditBox(values.get(item.name, ""), row, (cols - width) // 2, width, stars=item.secret, limit=255)
        fields.append(FormField(item.name, item.text, box, label_row))
        row += spacing
    screen.initscr()
    screen.pair = CPAIR_NORMAL
    screen.erase()
    screen.bold = True
    title = ui.title[: cols - 2]
    screen.mvaddstr(1, (cols - len(title)) // 2, title)
    screen.bold = False
    for field in fields:
        if field.label_row >= 0:
            label = field.label[: cols - 2]
            screen.mvaddstr(field.label_row, (cols - len(label)) // 2, label)
    screen.mvaddstr(lines - 2, (cols - 21) // 2, "Ctrl-X - save changes")
    screen.mvaddstr(lines - 1, (cols - 24) // 2, "Ctrl-C - discard changes")
    screen.pair = CPAIR_EDIT
    for field in fields:
        field.box.draw(screen)
    current = 0
    try:
        while True:
            screen.pair = CPAIR_EDIT
            fields[current].box.draw(screen)
            screen.refresh()
            key = await keys.get_key(None)
            if key is None or key in (k.CTRL_C, k.ESC):
                raise IpxeError(ERR_FORM_CANCELED)
            save = key == CTRL_X
            if key in (k.CR, k.LF):
                if current == len(fields) - 1:
                    save = True
                else:
                    current += 1
            elif key in (k.KEY_DOWN, TAB):
                current = min(current + 1, len(fields) - 1)
            elif key == k.KEY_UP:
                current = max(current - 1, 0)
            elif not save:
                fields[current].box.edit(key)
            if save:
                failed = _store_fields(screen, fields, store)
                if failed is None:
                    return
                current = failed
    finally:
        screen.pair = CPAIR_NORMAL
        screen.erase()
        screen.endwin()


def _store_fields(screen: Screen, fields: list[FormField], store: Storer) -> int | None:
    """Store every field; show each failure beneath its box. The first failing index, or None."""
    first_failure: int | None = None
    for index, field in enumerate(fields):
        error = store(field.setting, field.box.text)
        row = field.box.row + 1
        if error != field.error:
            screen.pair = CPAIR_NORMAL
            screen.move(row, 0)
            screen.clrtoeol()
            if error:
                screen.pair = CPAIR_ALERT
                text = error[: screen.cols - 2]
                screen.mvaddstr(row, (screen.cols - len(text)) // 2, text)
            field.error = error
        if error and first_failure is None:
            first_failure = index
    return first_failure
