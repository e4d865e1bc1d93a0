"""iPXE's lenient Base64 decoder, shared by the ``base64`` setting type and ``data:`` URIs.

Why not just :func:`base64.b64decode`: iPXE's core/base64.c skips whitespace, accepts at
most two ``=`` (each taking two bits off), requires whole bytes and does not check the
unused bits (``QR==`` is ``A``). Scripts and URIs that real iPXE accepts must decode the same.
"""

from __future__ import annotations

import base64
import re

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

ERR_BASE64_INVALID = ErrorSite(ErrorClass.EINVAL, 0x1020)  # core/base64.c

_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
_SHAPE = re.compile(r"([A-Za-z0-9+/]*)(={0,2})")


def base64_decode(text: str) -> bytes:
    shape = _SHAPE.fullmatch(_WHITESPACE.sub("", text))
    if shape is None:
        raise IpxeError(ERR_BASE64_INVALID)
    body, pads = shape.groups()
    bits = 6 * len(body) - 2 * len(pads)
    if bits % 8:
        raise IpxeError(ERR_BASE64_INVALID)
    return base64.b64decode(body + "A" * (-len(body) % 4))[: bits // 8]
