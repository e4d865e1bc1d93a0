"""The settings tree: named blocks, iPXE's lookup order, and setting names.

Why a tree and not a dict: iPXE scripts depend on *where* a value comes from. ``${ip}``
searches the root first and then every interface; ``set net0/ip`` shadows the DHCP
value in ``net0.dhcp`` until ``clear net0/ip``; ``show`` prints the origin. All of that
falls out of one rule (reference §2.1): fetch from a block if the setting applies there,
else depth-first through its children, ordered by descending priority then age.

Rules of this module:
- Values are raw bytes; :mod:`pyipxe.settings.types` turns text into bytes and back.
- A block decides which settings apply to it and how it stores them; the tree
  functions below never look inside a block.
- Failures are :class:`~pyipxe.errors.IpxeError` with the numbers iPXE's settings.c uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.settings import types as stypes
from pyipxe.settings.types import SettingType

# Errors raised by iPXE's core/settings.c.
ERR_NOT_FOUND = ErrorSite(ErrorClass.ENOENT, 0x0C20)
ERR_NOT_APPLICABLE = ErrorSite(ErrorClass.ENOTTY, 0x0C20)
ERR_NOT_NUMERIC = ErrorSite(ErrorClass.ENOTSUP, 0x0C20)
ERR_NO_SUCH_BLOCK = ErrorSite(ErrorClass.ENODEV, 0x0C20)
ERR_NO_SUCH_TYPE = ErrorSite(ErrorClass.ENOTSUP, 0x0C20)


@dataclass(frozen=True)
class Setting:
    """What a name like ``net0/175.8:int8`` denotes, minus the block.

    ``tag`` is the DHCP option number (0 for none); ``scope`` separates tag namespaces
    (``None`` = DHCPv4 options; builtin, SMBIOS, IPv6 … settings have their own).
    ``type`` is ``None`` when nothing fixed it, so the stored type can show through.
    """

    name: str
    type: SettingType | None = None
    tag: int = 0
    scope: str | None = None
    description: str = ""

    def same_as(self, other: Setting) -> bool:
        """iPXE's setting comparison: equal tags in one scope, else equal names."""
        if self.tag and self.tag == other.tag and self.scope == other.scope:
            return True
        return bool(self.name) and self.name == other.name


# Predefined settings register here (see predefined.py); looked up by name or by tag on
# every expansion, so both are indexed (first registration wins, as a list scan would).
_PREDEFINED: list[Setting] = []
_BY_NAME: dict[str, int] = {}
_BY_TAG: dict[tuple[int, str | None], int] = {}


def predefine(setting: Setting) -> Setting:
    index = len(_PREDEFINED)
    _PREDEFINED.append(setting)
    if setting.name:
        _BY_NAME.setdefault(setting.name, index)
    if setting.tag:
        _BY_TAG.setdefault((setting.tag, setting.scope), index)
    return setting


def predefined_settings() -> tuple[Setting, ...]:
    return tuple(_PREDEFINED)


def find_predefined(candidate: Setting) -> Setting | None:
    """The first predefined setting that :meth:`Setting.same_as` ``candidate``."""
    matches = [_BY_NAME.get(candidate.name) if candidate.name else None,
               _BY_TAG.get((candidate.tag, candidate.scope)) if candidate.tag else None]
    found = [index for index in matches if index is not None]
    return _PREDEFINED[min(found)] if found else None


def parse_tag(text: str) -> int:
    """``175.8`` → 0xaf08: dot-separated C integers, each shifted in a byte; 0 if not numeric."""
    tag = 0
    for part in text.split("."):
        value = stypes.parse_c_integer(part)
        if value is None:
            return 0
        tag = ((tag << 8) | value) & 0xFFFFFFFF
    return tag


class SettingsBlock:
    """A node of the tree. Subclasses decide applicability and storage.

    The base class is iPXE's *generic* store: any setting, kept by name with the type
    and tag it was stored with.
    """

    default_scope: str | None = None

    def __init__(self, name: str, *, priority: int = 0) -> None:
        self.name = name
        self.priority = priority
        self.parent: SettingsBlock | None = None
        self.children: list[SettingsBlock] = []
        self._values: dict[str, tuple[Setting, bytes]] = {}

    # -- tree ---------------------------------------------------------------
    def register(self, child: SettingsBlock) -> SettingsBlock:
        """Attach ``child``: higher priority first, then older first (iPXE's order)."""
        child.parent = self
        position = len(self.children)
        for index, existing in enumerate(self.children):
            if child.priority > existing.priority:
                position = index
                break
        self.children.insert(position, child)
        return child

    def unregister(self, child: SettingsBlock) -> None:
        self.children.remove(child)
        child.parent = None

    def redirect(self) -> SettingsBlock | None:
        """The block this one stands for, if it is an alias (iPXE's ``netX``), else None.

        An alias is found by name like any block, but lookups and stores go to its target,
        so values show their real origin (``net0.dhcp/ip``); searches from above skip it.
        """
        return None

    def child(self, name: str) -> SettingsBlock | None:
        for candidate in self.children:
            if candidate.name == name:
                return candidate
        return None

    def path(self) -> str:
        """Full dotted name (``net0.dhcp``); the root is ``""``."""
        if self.parent is None:
            return ""
        parent_path = self.parent.path()
        return f"{parent_path}.{self.name}" if parent_path else self.name

    def root(self) -> SettingsBlock:
        block = self
        while block.parent is not None:
            block = block.parent
        return block

    # -- storage (override in special blocks) -------------------------------
    def applies(self, setting: Setting) -> bool:
        return True

    def fetch_local(self, setting: Setting) -> tuple[Setting, bytes] | None:
        """The stored setting (for its type) and raw value, or None if absent here."""
        for stored, data in self._values.values():
            if stored.same_as(setting):
                return stored, data
        return None

    def store_local(self, setting: Setting, data: bytes | None) -> None:
        for key, (stored, _) in list(self._values.items()):
            if stored.same_as(setting):
                del self._values[key]
        if data:
            self._values[setting.name] = (setting, data)

    def local_settings(self) -> Iterator[Setting]:
        """Settings with a value in this block (for ``config`` and completion)."""
        for stored, _ in self._values.values():
            yield stored


@dataclass(frozen=True)
class Fetched:
    """A fetched value: the block it came from and the setting as stored there."""

    origin: SettingsBlock
    setting: Setting
    data: bytes

    @property
    def type(self) -> SettingType:
        return self.setting.type or stypes.STRING

    def display_name(self) -> str:
        """``origin/name:type`` as ``show`` prints it, cut to 31 characters like iPXE's buffer."""
        origin = self.origin.path()
        text = f"{origin}{'/' if origin else ''}{self.setting.name}:{self.type.name}"
        return text[:31]


def fetch(block: SettingsBlock, setting: Setting) -> Fetched | None:
    """Depth-first search from ``block``: itself first, then children in order."""
    if block.redirect() is not None:
        return None  # an alias: its target is searched in its own place in the tree
    if block.applies(setting):
        found = block.fetch_local(setting)
        if found is not None:
            stored, data = found
            # An explicit or predefined type wins; else the stored one; else string.
            setting_type = setting.type or stored.type or stypes.STRING
            return Fetched(block, replace(setting, type=setting_type, name=setting.name or stored.name), data)
    for child in block.children:
        result = fetch(child, setting)
        if result is not None:
            return result
    return None


Applicator = Callable[[SettingsBlock], None]


class SettingsTree:
    """The root block plus the hooks that re-run after every successful store.

    Applicators are how later layers react to settings (routes, DNS, cwuri from
    next-server) without the store knowing about them.
    """

    def __init__(self) -> None:
        self.root = SettingsBlock("")
        self.applicators: list[Applicator] = []

    def find_block(self, path: str, *, create: bool = False) -> SettingsBlock | None:
        block = self.root
        if not path:
            return block
        for part in path.split("."):
            found = block.child(part)
            if found is None:
                if not create:
                    return None
                found = block.register(SettingsBlock(part))
            block = found.redirect() or found
        return block

    def parse_name(self, text: str, *, create: bool = False) -> tuple[SettingsBlock, Setting]:
        """``[scope/]name[:type]`` → (block, setting), as iPXE's parse_setting_name.

        Raises IpxeError when the scope does not exist (and ``create`` is false) or the
        type is unknown.
        """
        scope_name, slash, rest = text.partition("/")
        if not slash:
            scope_name, rest = "", text
        name, colon, type_name = rest.partition(":")
        block = self.find_block(scope_name, create=create)
        if block is None:
            raise IpxeError(ERR_NO_SUCH_BLOCK)
        candidate = Setting(name=name, tag=parse_tag(name), scope=block.default_scope)
        known = find_predefined(candidate)
        setting = known if known is not None else candidate
        if colon:
            setting_type = stypes.lookup_type(type_name)
            if setting_type is None:
                raise IpxeError(ERR_NO_SUCH_TYPE)
            setting = replace(setting, type=setting_type)
        return block, setting

    def store(self, block: SettingsBlock, setting: Setting, data: bytes | None) -> None:
        if not block.applies(setting):
            raise IpxeError(ERR_NOT_APPLICABLE)
        block.store_local(setting, data or None)
        for apply in self.applicators:
            apply(block)

    def store_text(self, block: SettingsBlock, setting: Setting, text: str) -> None:
        """Parse with the setting's type (string by default) and store; empty deletes."""
        if not text:
            self.store(block, setting, None)
            return
        setting_type = setting.type or stypes.STRING
        self.store(block, replace(setting, type=setting_type), setting_type.parse(text))

    def fetch(self, setting: Setting, block: SettingsBlock | None = None) -> Fetched | None:
        return fetch(block or self.root, setting)

    def fetch_text(self, name: str) -> str:
        """Expansion semantics: the formatted value, or "" for anything that goes wrong."""
        try:
            block, setting = self.parse_name(name)
        except IpxeError:
            return ""
        found = fetch(block, setting)
        if found is None:
            return ""
        try:
            return found.type.format(found.data)
        except (ValueError, IpxeError):
            return ""
