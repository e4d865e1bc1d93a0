"""Downloading an image: iPXE's imgdownload + monojob, with pyipxe's spool and watchdog.

Why here: every image command downloads the same way — print ``<uri>...``, show
progress once a second, honour ``--timeout`` (time since the last progress, not total
time) and Ctrl-C, and on any failure leave no image and no temporary file behind. The
protocol is the driver's business (``pyipxe.net.transfer``); this is the job around it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pyipxe.console.keys import CTRL_C, KeySource
from pyipxe.console.output import Console
from pyipxe.console.progress import Progress
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.registry import Image, ImageRegistry
from pyipxe.image.spool import SpoolFile
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult, RequestParams, driver_for
from pyipxe.uri import Uri, format_uri

# core/monojob.c
ERR_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x0720)
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x0720)

TICK = 1.0


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
    progress = Progress(console, None if quiet else format_uri(label or uri, for_display=True))
    progress.begin()
    task = asyncio.ensure_future(driver(FetchRequest(uri, params), sink, env))
    try:
        result = await _wait(task, sink, progress, keys, timeout)
    except IpxeError as error:
        spool.close()
        progress.end(error_text(error))
        raise
    except BaseException:
        spool.close()
        progress.end(None if task.done() and not task.cancelled() else "")
        raise
    progress.end(None)
    image = registry.new_image(uri, spool, name=name)
    image.uri = result.uri
    return image


async def _wait(task: asyncio.Future[FetchResult], sink: _CountingSink, progress: Progress, keys: KeySource,
                timeout: float | None) -> FetchResult:
    """monojob_wait: tick once a second; Ctrl-C cancels; ``timeout`` without progress fails."""
    loop = asyncio.get_running_loop()
    last_completed = sink.completed
    last_progress = last_display = loop.time()
    try:
        while True:
            wake = last_display + TICK
            if timeout:
                wake = min(wake, last_progress + timeout)
            done, _ = await asyncio.wait({task}, timeout=max(0.0, wake - loop.time()))
            if task in done:
                return task.result()
            now = loop.time()
            if keys.interactive and CTRL_C in keys.pending():
                raise IpxeError(ERR_CANCELED)
            if sink.completed != last_completed:
                last_completed, last_progress = sink.completed, now
            elif timeout and now - last_progress >= timeout:
                raise IpxeError(ERR_TIMED_OUT)
            if now - last_display >= TICK:
                progress.tick(sink.completed, sink.total)
                last_display = now
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):  # the job is abandoned; its own error is moot
                await task
