"""The Python an image carries: the interpreter, its libraries, and the modules pyipxe imports.

Why not modulefinder: it fails on namespace packages (``pyipxe.net`` is one) and it follows
``if TYPE_CHECKING:`` imports, which exist for mypy only. This finder reads each module's
source with :mod:`ast`, follows every ``import`` (also those inside functions: pyipxe imports
heavy modules lazily, and they must be in the image all the same) except typing-only ones
and the :data:`EXCLUDED` families nothing at run time reaches, and locates modules with
``importlib.machinery.PathFinder`` without importing them. The result is deterministic (a
sorted set), so images are reproducible.

Layout in the image: everything importable is flattened into ``/usr/lib/python3.X`` (the
stdlib directory the interpreter finds from its own path ``/usr/bin/python3``), extension
modules keep their place relative to the path entry they came from, and Python files are
shipped as sourceless ``.pyc`` compiled with unchecked hashes (no timestamps inside).
Shared libraries go where ``ldd`` found them, so the dynamic loader and the interpreter's
RUNPATH find them unchanged.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyipxe.build.kernel import BuildError

#: module families nothing in pyipxe reaches at run time, though some stdlib module mentions them
EXCLUDED = frozenset({
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "test", "doctest", "pdb", "pydoc",
    "pydoc_data", "lib2to3", "ensurepip", "venv", "distutils", "setuptools", "pkg_resources", "pip", "_pytest",
    "pytest", "hypothesis", "mypy", "xmlrpc", "curses", "_curses",
    "dbm", "tomllib", "wsgiref", "http.server", "xml.dom", "xml.sax", "email.mime", "lzma", "_lzma", "bz2",
    "_bz2", "readline", "rlcompleter", "cProfile", "profile", "pstats", "trace", "tracemalloc", "timeit",
    "code", "codeop", "py_compile", "compileall", "pickletools", "webbrowser", "mailbox", "smtplib", "imaplib",
    "poplib", "ftplib", "nntplib", "telnetlib", "getpass", "pty", "tabnanny", "zipapp", "IPython", "numpy",
    "pandas", "matplotlib", "rich", "pygments", "yaml", "_yaml", "trio", "curio", "sniffio", "anyio", "idna",
    "httpx", "httpcore", "requests", "urllib3", "aioquic", "h2", "brotli", "_overlapped", "_winapi", "winreg",
    "msvcrt", "nt", "_winreg", "java", "org", "_frozen_importlib_external", "win32api", "win32con", "pywintypes",
    "_scproxy", "_osx_support", "ntpath_ext", "vms_lib", "_aix_support", "_bootsubprocess", "psutil", "mitogen",
    "graphviz", "_pydecimal", "_pyio",
})
#: modules loaded by name (no import statement the finder follows names them): what the
#: interpreter loads at start-up, and hashlib's built-in algorithms, imported inside a function
STARTUP = ("encodings", "encodings.aliases", "encodings.utf_8", "encodings.utf_8_sig", "encodings.ascii",
           "encodings.latin_1", "encodings.idna", "encodings.cp437", "codecs", "io", "abc", "os", "stat",
           "posixpath", "genericpath", "_collections_abc", "_sitebuiltins", "site",
           "_md5", "_sha1", "_sha256", "_sha512", "_sha3", "_blake2")

#: what extension modules import from their C (or Rust) code, where no source shows it
EXTENSION_IMPORTS = {"cryptography.hazmat.bindings._rust": ("_cffi_backend",)}


def _excluded(name: str, excluded: frozenset[str] = EXCLUDED) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in excluded for i in range(1, len(parts) + 1))


@dataclass
class Module:
    name: str
    path: Path | None  # None: built into the interpreter
    root: Path | None  # the search-path entry it was found under
    package: bool = False
    search: list[str] = field(default_factory=list)  # a package's submodule locations

    @property
    def is_source(self) -> bool:
        return self.path is not None and self.path.suffix == ".py"


def _typing_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names ``source`` may import: ``a.b`` and, for ``from a import b``, ``a.b`` too."""
    tree = ast.parse(source)
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _typing_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - node.level + 1] if node.level > 1 else base
                prefix = ".".join(parent + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if prefix:
                found.add(prefix)
                found.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    return found


class ModuleFinder:
    """Follows imports from entry modules over ``path``, without importing anything."""

    def __init__(self, path: list[str], *, exclude: Iterable[str] = ()) -> None:
        self.path = path
        self.excluded = EXCLUDED | frozenset(exclude)
        self.modules: dict[str, Module] = {}
        self.missing: set[str] = set()

    def _root_of(self, file: Path) -> Path | None:
        best: Path | None = None
        for entry in self.path:
            entry_path = Path(entry)
            if file.is_relative_to(entry_path) and (best is None or len(entry_path.parts) > len(best.parts)):
                best = entry_path
        return best

    def find(self, name: str) -> Module | None:
        if name in self.modules:
            return self.modules[name]
        if name in self.missing or _excluded(name, self.excluded):
            return None
        parent, _, last = name.rpartition(".")
        if parent:
            owner = self.find(parent)
            if owner is None or not owner.package:
                self.missing.add(name)
                return None
            spec = importlib.machinery.PathFinder.find_spec(last, owner.search)
        elif name in sys.builtin_module_names:
            module = self.modules[name] = Module(name, None, None)
            return module
        else:
            spec = importlib.machinery.PathFinder.find_spec(name, self.path)
        if spec is None:
            self.missing.add(name)
            return None
        search = list(spec.submodule_search_locations or [])
        origin = Path(spec.origin) if spec.origin and spec.has_location else None
        module = Module(name, origin, self._root_of(origin) if origin else None, package=bool(search), search=search)
        self.modules[name] = module
        for imported in EXTENSION_IMPORTS.get(name, ()):
            self.find(imported)
        if module.is_source and origin is not None:
            source = origin.read_text(encoding="utf-8")
            for imported in sorted(imports_of(source, name, module.package)):
                self.find(imported)
        return module

    def run(self, entries: Iterable[str], optional: Iterable[str] = ()) -> list[Module]:
        """The closure of ``entries`` (each must exist) and ``optional`` (names that may be
        attributes, as ``from os import path`` gives)."""
        for entry in entries:
            if self.find(entry) is None and not _excluded(entry, self.excluded):
                raise BuildError(f"module {entry} not found")
        for entry in optional:
            self.find(entry)
        return [self.modules[name] for name in sorted(self.modules)]


def package_modules(package_dir: Path, package: str) -> list[str]:
    """Every module of a source package (entry points: commands and backends load lazily)."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def search_path(extra: Iterable[Path]) -> list[str]:
    """Where modules come from: ``extra`` (pyipxe's own tree) first, then this interpreter's path."""
    path = [str(entry) for entry in extra]
    for entry in sys.path:
        if entry and os.path.isdir(entry) and entry not in path and not entry.startswith(os.getcwd() + "/tests"):
            path.append(entry)
    return path


def python_lib() -> str:
    return f"usr/lib/python{sys.version_info.major}.{sys.version_info.minor}"


def image_path(module: Module) -> str:
    """Where ``module`` goes in the image (a relative path)."""
    assert module.path is not None and module.root is not None
    relative = module.path.relative_to(module.root)
    dynload = sysconfig.get_path("platstdlib")
    if module.root == Path(dynload) / "lib-dynload":
        return f"{python_lib()}/lib-dynload/{relative}"
    if module.is_source:
        relative = relative.with_suffix(".pyc")
    return f"{python_lib()}/{relative}"


LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(binaries: Iterable[Path]) -> list[str]:
    """Absolute paths of the libraries ``binaries`` need (``ldd``), the dynamic loader included."""
    found: set[str] = set()
    for binary in binaries:
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60,
                                 check=False).stdout
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BuildError(f"ldd {binary}: {error}") from None
        for line in out.splitlines():
            match = LDD_LINE.match(line)
            if match:
                found.add(match.group(1))
            elif "not found" in line:
                raise BuildError(f"{binary} needs {line.split()[0]}, which ldd cannot find")
    return sorted(found)


def stripped(path: Path) -> bytes:
    """An ELF file's bytes without its symbol tables and debug sections (``strip --strip-unneeded``,
    deterministic); unchanged when binutils is missing. Python's own build keeps its debug
    information, which is most of libpython's size."""
    strip = shutil.which("strip")
    data = path.read_bytes()
    if strip is None:
        return data
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(data)
        result = subprocess.run([strip, "--strip-unneeded", str(copy)], capture_output=True, timeout=120, check=False)
        return copy.read_bytes() if result.returncode == 0 else data


COMPILER = """
import json, py_compile, sys
for source, target, shown in json.load(sys.stdin):
    py_compile.compile(source, cfile=target, dfile=shown, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def compile_modules(jobs: list[tuple[str, str, str]]) -> None:
    """Compile (source, target, name shown in tracebacks) in a fresh interpreter with a fixed
    hash seed: marshal's output depends on the process's state, not only on the source."""
    import json

    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-S", "-c", COMPILER], input=json.dumps(jobs), text=True,
                            capture_output=True, env=env, timeout=600, check=False)
    if result.returncode:
        raise BuildError(f"compiling the image's modules failed: {result.stderr.strip()[-500:]}")
