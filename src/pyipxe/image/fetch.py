"""Downloading an image: iPXE's imgdownload + monojob, with pyipxe's spool and watchdog.

Why here: every image command downloads the same way — print ``<uri>...``, show
progress once a second, honour ``--timeout`` (time since the last progress, not total
time) and Ctrl-C, and on any failure leave no image and no temporary file behind. The
protocol is the driver's business (``pyipxe.net.transfer``); this is the job around it.
"""

from __future__ import annotations

from collections.abc import Callable

from pyipxe.console.job import monojob
from pyipxe.console.keys import KeySource
from pyipxe.console.output import Console
from pyipxe.errors import IpxeError
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.image.spool import SpoolFile
from pyipxe.net.transfer import FetchEnv, FetchRequest, RequestParams, driver_for
from pyipxe.uri import Uri, format_uri


class _CountingSink:
    """Passes writes to the spool and remembers when the transfer last moved."""

    def __init__(self, spool: SpoolFile) -> None:
        self.spool = spool
        self.completed = 0
        self.total: int | None = None

    def set_length(self, length: int) -> None:
        self.total = length
        self.spool.set_length(length)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self.spool.write(offset, data)
        self.completed += len(data)


async def download(
    uri: Uri,
    *,
    registry: ImageRegistry,
    env: FetchEnv,
    console: Console,
    keys: KeySource,
    error_text: Callable[[IpxeError], str],
    params: RequestParams | None = None,
    name: str | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    label: Uri | None = None,
) -> Image:
    """Download ``uri`` into a new, not yet registered image; print iPXE's progress line.

    The line shows ``label`` (default ``uri``) redacted: iPXE prints the URI as the script
    wrote it, before resolution against the working URI, without user, password, query
    or fragment (``chain sibling.txt`` shows ``sibling.txt...``).
    """
    driver = driver_for(uri.scheme)  # an unknown scheme fails before anything is printed
    spool = SpoolFile()
    sink = _CountingSink(spool)
    try:
        result = await monojob(
            driver(FetchRequest(uri, params), sink, env), console=console, keys=keys, error_text=error_text,
            label=None if quiet else format_uri(label or uri, for_display=True), timeout=timeout,
            progress=lambda: (sink.completed, sink.total),
        )
    except BaseException:
        spool.close()
        raise
    image = registry.new_image(uri, spool, name=name)
    image.uri = result.uri
    return image
