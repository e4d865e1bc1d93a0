"""``${…}`` expansion, with iPXE's exact semantics but without its quadratic cost.

iPXE repeatedly finds the first ``}`` that follows a ``${``, pairs it with the latest
``${`` before it, substitutes the setting's formatted value and rescans the *whole*
string (reference §1.4). A left-to-right scan with a stack of open ``${`` positions, in
which a substituted value is pushed back in front of the unread input, visits the same
pairs in the same order: the text before an open ``${`` never changes, and a ``}`` seen
while no ``${`` was open can never pair later. So results are identical while a 1 MB
token costs one pass.

Rules: expansion never fails; unknown settings, scopes and types give "". A value that
expands to itself forever (iPXE would hang) is cut off after ``MAX_EXPANSIONS``
substitutions (plus one per character of the token) or ``MAX_LENGTH``
characters, leaving the rest unexpanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_EXPANSIONS = 100_000
MAX_LENGTH = 4 * 1024 * 1024

_SPECIAL = re.compile(r"[${}]")


def expand(token: str, lookup: Callable[[str], str]) -> str:
    if "${" not in token:
        return token
    out: list[str] = []  # expanded text so far, one char or chunk per entry
    opens: list[int] = []  # indices in ``out`` of unclosed "${" markers
    pending: list[str] = [token]  # unread input, last element read first
    expansions = 0
    limit = MAX_EXPANSIONS + len(token)  # every reference in the token itself may expand
    length = 0
    while pending:
        chunk = pending.pop()
        position = 0
        while position < len(chunk):
            match = _SPECIAL.search(chunk, position)
            if match is None:
                out.append(chunk[position:])
                break
            if match.start() > position:
                out.append(chunk[position : match.start()])
            char = match.group()
            position = match.end()
            if char == "{" and out and out[-1].endswith("$") and out[-1] != "${":
                # "$" then "{" (possibly across a substitution boundary) opens a reference.
                last = out.pop()
                if len(last) > 1:
                    out.append(last[:-1])
                opens.append(len(out))
                out.append("${")
            elif char == "}" and opens:
                start = opens.pop()
                name = "".join(out[start + 1 :])
                del out[start:]
                value = lookup(name)
                expansions += 1
                length += len(value)
                if expansions > limit or length > MAX_LENGTH:
                    out.append(value)
                    out.append(chunk[position:])
                    out.extend(reversed(pending))
                    return "".join(out)
                rest = chunk[position:]
                pending.append(rest)
                pending.append(value)
                break
            else:
                out.append(char)
    return "".join(out)
