"""What a running command can reach: settings, console, keys, the interpreter.

Why one object: iPXE's commands reach these as globals; pyipxe passes them explicitly
so that tests (and several sessions in one process) stay independent. It holds
references only; the behaviour lives in the objects it points to.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyipxe.console.dynui import UiState
from pyipxe.console.keys import KeySource, NoKeys
from pyipxe.console.output import Console
from pyipxe.errors import PLATFORMS, IpxeError, format_error
from pyipxe.image.archive import execute_archive
from pyipxe.image.registry import ImageRegistry
from pyipxe.settings import predefined
from pyipxe.settings.builtin import BuiltinBlock, host_platform, install_platform_blocks
from pyipxe.settings.store import SettingsBlock, SettingsTree

if TYPE_CHECKING:
    from pyipxe.net.devices import NetworkState
    from pyipxe.net.transfer import Address, FetchEnv, RequestParams
    from pyipxe.script.interpreter import Interpreter


@dataclass
class Context:
    console: Console
    keys: KeySource = field(default_factory=NoKeys)
    settings: SettingsTree = field(default_factory=SettingsTree)
    errno: int = 0
    cwuri: str | None = None
    interpreter: Interpreter | None = None
    #: the image registry (reference §7.1); one per session
    images: ImageRegistry = field(default_factory=lambda: ImageRegistry())
    #: what downloads use: resolver, TLS trust, keep-alive pools, -v log
    fetch_env: FetchEnv | None = None
    #: the network devices and who owns their configuration (pyipxe.net.devices)
    network: NetworkState | None = None
    #: request parameter lists built by ``params``/``param``, by name ("" = the default list)
    request_params: dict[str, RequestParams] = field(default_factory=dict)
    #: menus and forms, preset answers, shell history, colours (pyipxe.console.dynui)
    ui: UiState = field(default_factory=UiState)

    def __post_init__(self) -> None:
        self.builtin = BuiltinBlock(errno=lambda: self.errno, cwuri=lambda: self.cwuri)
        install_platform_blocks(self.settings, self.builtin)
        self.images.platform = lambda: self.platform
        self.images.cwuri_get = lambda: self.cwuri
        self.images.cwuri_set = self._set_cwuri
        for archive in ("gzip", "zlib"):
            self.images.executors[archive] = functools.partial(execute_archive, self.images)
        self._cwuri_from_next_server: str | None = None
        self.settings.applicators.append(self._apply_next_server)
        if self.fetch_env is None:
            from pyipxe.net.transfer import FetchEnv

            self.fetch_env = FetchEnv(resolve=self._resolve, setting=self._setting_text)

    async def _resolve(self, host: str) -> list[Address]:
        """Names as iPXE resolves them: the ``dns`` setting's servers, else the host's resolver."""
        from pyipxe.net.resolve import resolve

        return await resolve(host, self.settings)

    def _apply_next_server(self, block: SettingsBlock) -> None:
        """core/cwuri.c: with no working URI, a non-zero next-server gives ``tftp://<it>/``;
        the URI reverts to unset when that next-server goes away."""
        found = self.settings.fetch(predefined.NEXT_SERVER)
        server = found.data if found is not None and len(found.data) == 4 and any(found.data) else None
        if server is not None and self.cwuri is None:
            self.cwuri = self._cwuri_from_next_server = f"tftp://{'.'.join(map(str, server))}/"
        elif server is None and self.cwuri is not None and self.cwuri == self._cwuri_from_next_server:
            self.cwuri = self._cwuri_from_next_server = None

    def _set_cwuri(self, value: str | None) -> None:
        self.cwuri = value

    def _setting_text(self, name: str) -> str | None:
        try:
            return self.settings.fetch_text(name) or None
        except IpxeError:
            return None

    @property
    def platform(self) -> str:
        """The platform pyipxe presents; error numbers are computed for it."""
        found = self.builtin.fetch_local(predefined.PLATFORM)
        value = found[1].decode(errors="replace") if found else host_platform()
        return value if value in PLATFORMS else "pcbios"

    @contextlib.contextmanager
    def reporting(self, action: str) -> Iterator[None]:
        """iPXE's ``printf ( "Could not %s: %s\n", … )``: say what failed, then fail the same way."""
        try:
            yield
        except IpxeError as error:
            self.console.print(f"Could not {action}: {self.error_text(error)}")
            raise

    def code(self, error: IpxeError) -> int:
        return error.code(self.platform)

    def error_text(self, error: IpxeError | int) -> str:
        """``<text> (https://ipxe.org/<code>)``."""
        code = error if isinstance(error, int) else self.code(error)
        return format_error(code, self.platform)

    def run(self) -> Interpreter:
        """The interpreter running commands in this context."""
        assert self.interpreter is not None, "context has no interpreter"
        return self.interpreter
