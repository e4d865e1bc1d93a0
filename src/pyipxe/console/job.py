"""iPXE's monojob: one foreground job, its progress line, Ctrl-C and an inactivity timeout.

Why one function: downloads (``imgfetch``), DHCP (``Configuring (net0 …)``) and every other
job iPXE waits for in the foreground share one display and one set of rules
(core/monojob.c): ``<label>...``, then once a second a dot (size unknown) or a percentage
(erased again), then `` ok`` or `` <error>``; Ctrl-C cancels with ECANCELED; ``timeout``
fails the job once that long has passed without progress (the job's own error if it has
one in hand, else ETIMEDOUT). A job that reports no progress times out after ``timeout``
in total, as DHCP does on iPXE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pyipxe.console.keys import CTRL_C, KeySource
from pyipxe.console.output import Console
from pyipxe.console.progress import Progress
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError

# core/monojob.c
ERR_CANCELED = ErrorSite(ErrorClass.ECANCELED, 0x0720)
ERR_TIMED_OUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x0720)

TICK = 1.0
T = TypeVar("T")
#: (bytes or units completed, total if known)
ProgressSource = Callable[[], tuple[int, int | None]]


async def monojob(
    job: Awaitable[T],
    *,
    console: Console,
    keys: KeySource,
    error_text: Callable[[IpxeError], str],
    label: str | None,
    timeout: float | None = None,
    progress: ProgressSource | None = None,
    ongoing: Callable[[], IpxeError | None] | None = None,
) -> T:
    """Run ``job`` in the foreground as iPXE's monojob_wait does; ``label=None`` is silent."""
    display = Progress(console, label)
    display.begin()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(job)
    completed, total = progress() if progress is not None else (0, None)
    last_progress = last_display = loop.time()
    try:
        while True:
            wake = last_display + TICK
            if timeout:
                wake = min(wake, last_progress + timeout)
            done, _ = await asyncio.wait({task}, timeout=max(0.0, wake - loop.time()))
            if task in done:
                result = task.result()
                break
            now = loop.time()
            if keys.interactive and CTRL_C in keys.pending():
                raise IpxeError(ERR_CANCELED)
            if progress is not None:
                now_completed, total = progress()
                if now_completed != completed:
                    completed, last_progress = now_completed, now
            if timeout and now - last_progress >= timeout:
                raise (ongoing() if ongoing is not None else None) or IpxeError(ERR_TIMED_OUT)
            if now - last_display >= TICK:
                display.tick(completed, total)
                last_display = now
    except IpxeError as error:
        display.end(error_text(error))
        raise
    except BaseException:
        display.end("")
        raise
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):  # the job is abandoned; its own outcome is moot
                await task
    display.end(None)
    return result
