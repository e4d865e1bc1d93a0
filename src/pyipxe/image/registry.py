"""The image registry: iPXE's ordered list of images and their execution (reference §7.1).

Why it mirrors iPXE closely: scripts observe every detail of it — ``imgstat`` order and
flags, first-match lookups of duplicate names, ``img0`` default names, the running image
vanishing from the list while it runs and coming back afterwards, ``--autofree`` and
``--replace``. Executing an image is delegated to an *executor* chosen by image type
(the script layer registers one for scripts; the boot layer for kernels), so this module
knows nothing about what runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.formats import HEAD, ImageType, detect
from pyipxe.image.spool import SpoolFile
from pyipxe.uri import Uri, uri_decode

# core/image.c
ERR_NOT_EXECUTABLE = ErrorSite(ErrorClass.ENOEXEC, 0x0080)
ERR_UNTRUSTED = ErrorSite(ErrorClass.EACCES, 0x0081)  # EACCES_UNTRUSTED (EUNIQ 1)
ERR_TRUST_PERMANENT = ErrorSite(ErrorClass.EACCES, 0x0082)  # EACCES_PERMANENT (EUNIQ 2)
ERR_NO_CURRENT_IMAGE = ErrorSite(ErrorClass.ENOTTY, 0x0080)

Executor = Callable[["Image"], Awaitable[None]]


@dataclass(eq=False)
class Image:
    """One image: its bytes (spooled), where it came from, and iPXE's flags."""

    name: str
    data: SpoolFile
    uri: Uri | None = None
    cmdline: str | None = None
    type: ImageType | None = None
    selected: bool = False
    trusted: bool = False
    autofree: bool = False
    hidden: bool = False
    registered: bool = False
    replacement: Image | None = None

    @property
    def length(self) -> int:
        return self.data.length

    def head(self) -> bytes:
        return self.data.read(0, HEAD)

    def free(self) -> None:
        """Release the spooled bytes (only once no list refers to the image)."""
        self.data.close()


def default_name(uri: Uri | None, counter: int) -> str | None:
    """Last segment of the decoded path (or of the opaque part); None means ``img<N>``."""
    if uri is None:
        return f"img{counter}"
    if uri.path is not None:
        text = uri.path
    elif uri.opaque is not None:
        text = uri.opaque
    else:
        return None
    decoded = uri_decode(text).decode("utf-8", "surrogateescape")
    return decoded.rsplit("/", 1)[-1]


@dataclass
class ImageRegistry:
    """The images of one session, in registration order."""

    images: list[Image] = field(default_factory=list)
    #: executors by image type name ("script", "bzImage", …)
    executors: dict[str, Executor] = field(default_factory=dict)
    current: Image | None = None
    require_trusted: bool = False
    trust_permanent: bool = False
    platform: Callable[[], str] = lambda: "pcbios"
    #: what changes the current working URI while an image runs (set by the session)
    cwuri_get: Callable[[], str | None] = lambda: None
    cwuri_set: Callable[[str | None], None] = lambda value: None
    _anonymous: int = 0

    # -- creation and registration -------------------------------------------------------
    def new_image(self, uri: Uri | None, data: SpoolFile | None = None, *, name: str | None = None) -> Image:
        if name is None:
            name = default_name(uri, self._anonymous)
            if name is None or (uri is not None and uri.path is None and uri.opaque is None):
                name = f"img{self._anonymous}"
                self._anonymous += 1
        return Image(name=name, data=data if data is not None else SpoolFile(), uri=uri)

    def register(self, image: Image) -> None:
        """Add ``image`` at the end; its type is detected now, once."""
        if image.registered:
            return
        if image.type is None:
            image.type = detect(image.head(), image.length, self.platform())
        image.registered = True
        self.images.append(image)

    def unregister(self, image: Image) -> None:
        if not image.registered:
            return
        self.images.remove(image)
        image.registered = False
        image.selected = False
        if image is not self.current and not self._referenced(image):
            image.free()

    def _referenced(self, image: Image) -> bool:
        """Still needed: running (a parent in the execution chain) or a pending replacement."""
        return any(other.replacement is image for other in self.images) or image is self.current

    def find(self, name: str) -> Image | None:
        """The first image called ``name`` (names need not be unique)."""
        return next((image for image in self.images if image.name == name), None)

    def selected(self) -> Image | None:
        return next((image for image in self.images if image.selected), None)

    def select(self, image: Image) -> None:
        for other in self.images:
            other.selected = False
        if image.type is None or not image.type.executable:
            raise IpxeError(ERR_NOT_EXECUTABLE)
        image.selected = True

    def visible(self) -> list[Image]:
        """Images a kernel receives as initrds/modules: registered and not hidden."""
        return [image for image in self.images if not image.hidden]

    # -- trust ---------------------------------------------------------------------------
    def set_trust(self, require: bool, permanent: bool) -> None:
        if not self.trust_permanent:
            self.require_trusted, self.trust_permanent = require, permanent
        if self.require_trusted != require:
            raise IpxeError(ERR_TRUST_PERMANENT)

    # -- execution -----------------------------------------------------------------------
    def replace_current(self, replacement: Image) -> None:
        """``chain --replace``: run ``replacement`` once the current image returns."""
        if self.current is None:
            raise IpxeError(ERR_NO_CURRENT_IMAGE)
        if replacement.type is None or not replacement.type.executable:
            raise IpxeError(ERR_NOT_EXECUTABLE)
        self.current.replacement = replacement

    async def execute(self, image: Image) -> None:
        """iPXE's image_exec: cwuri, CURRENT, checks, run unregistered, AUTOFREE, replacement."""
        from pyipxe.uri import format_uri

        saved_cwuri = self.cwuri_get()
        if image.uri is not None:
            self.cwuri_set(format_uri(image.uri))
        saved_current = self.current
        self.current = image
        replacement: Image | None = None
        was_registered = image.registered
        try:
            if image.type is None or not image.type.executable:
                raise IpxeError(ERR_NOT_EXECUTABLE)
            if self.require_trusted and not image.trusted:
                raise IpxeError(ERR_UNTRUSTED)
            executor = self.executors.get(image.type.name)
            if executor is None:
                raise IpxeError(ERR_NOT_EXECUTABLE)
            # The running image leaves the list (a "boot" inside it cannot loop into it).
            if image.registered:
                self.images.remove(image)
                image.registered = False
            try:
                await executor(image)
            finally:
                replacement, image.replacement = image.replacement, None
                if replacement is None and was_registered and not image.autofree:
                    image.registered = True
                    self.images.append(image)
        finally:
            self.current = saved_current
            self.cwuri_set(saved_cwuri)
            if image.autofree and image.registered:
                self.unregister(image)
            elif not image.registered and not self._referenced(image):
                image.free()
        if replacement is not None:
            await self.execute(replacement)
