"""Every command iPXE knows, with its options and argument counts, for ``pyipxe check``.

Why a second table: ``pyipxe check`` must judge scripts that use commands pyipxe does not
implement yet (``sanboot``, ``imgtrust``...), and commands that exist in iPXE but are left
out of its default build (``ping``, ``nslookup``, ``imgverify``...). Those are *known*:
calling them is not a typo, only a build choice. So this table lists all of iPXE's
commands (reference §3, plus the ``help`` list of the Debian build in the oracle README).

Rules:
- A command registered in pyipxe's real command table (:func:`registry.load_commands`)
  is checked against its real spec; this table only fills the gaps. When a command is
  implemented its entry here simply stops mattering.
- Where iPXE versions disagree on a command's options, the table takes the union: a
  checker that cries "unknown option" over a valid script is worse than one that misses
  a rare mistake.
- Values iPXE parses as integers use :func:`options.parse_integer`, so ``--timeout 5s``
  is reported exactly as iPXE would reject it; everything else takes any text.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyipxe.script.options import (
    MANY,
    CommandSpec,
    Option,
    parse_integer,
    parse_key,
    parse_string,
    parse_timeout,
)
from pyipxe.script.registry import load_commands

# -- option building blocks ----------------------------------------------------------


def _flag(long: str, short: str) -> Option:
    return Option(long, short)


def _text(long: str, short: str) -> Option:
    return Option(long, short, parse_string)


def _int(long: str, short: str) -> Option:
    return Option(long, short, parse_integer)


_TIMEOUT = Option("timeout", "t", parse_timeout)
_QUIET = _flag("quiet", "q")
_KEEP = _flag("keep", "k")
_NAME = _text("name", "n")

# Options shared by the image commands (reference §3 "IMG").
_IMG = (_NAME, _TIMEOUT, _flag("autofree", "a"), _QUIET)


def _spec(*options: Option, min_args: int = 0, max_args: int = MANY, usage: str = "") -> CommandSpec:
    return CommandSpec(options=options, min_args=min_args, max_args=max_args, usage=usage)


def _aliases(spec: CommandSpec, *names: str) -> dict[str, CommandSpec]:
    return dict.fromkeys(names, spec)


_INTERFACES = "[<interface>...]"

# -- the table -------------------------------------------------------------------------

TABLE: dict[str, CommandSpec] = {
    # Network (reference §3.1)
    **_aliases(_spec(usage=_INTERFACES), "ifstat", "ifopen", "ifclose", "iwstat", "iwlist", "autoboot"),
    **_aliases(_spec(_text("configurator", "c"), _TIMEOUT, usage=_INTERFACES), "ifconf", "dhcp"),
    "iflinkwait": _spec(_TIMEOUT, usage=_INTERFACES),
    **_aliases(_spec(max_args=0), "route", "nstat", "ipstat", "ibstat", "fcstat"),
    "vcreate": _spec(_int("tag", "t"), _int("priority", "p"), min_args=1, max_args=1,
                     usage="<trunk interface>"),
    "vdestroy": _spec(min_args=1, max_args=1, usage="<interface>"),
    "nslookup": _spec(min_args=2, max_args=2, usage="<setting> <name>"),
    "ping": _spec(_int("size", "s"), _TIMEOUT, _int("count", "c"), _QUIET, min_args=1, max_args=1,
                  usage="<host>"),
    "ntp": _spec(min_args=1, max_args=1, usage="<server>"),
    "pxebs": _spec(min_args=2, max_args=2, usage="<interface> <server type>"),
    "lotest": _spec(_int("mtu", "m"), _flag("broadcast", "b"), min_args=2, max_args=2,
                    usage="<sending interface> <receiving interface>"),
    "fcels": _spec(_text("port", "p"), _text("id", "i"), min_args=1, max_args=1, usage="<request>"),
    # Images (reference §3.2)
    **_aliases(_spec(*_IMG, min_args=1, usage="<uri|image> [<arguments>...]"),
               "imgfetch", "module", "initrd", "kernel", "imgselect", "imgload", "imgargs"),
    **_aliases(_spec(*_IMG, _flag("replace", "r"), usage="[<uri|image> [<arguments>...]]"),
               "chain", "imgexec", "boot"),
    **_aliases(_spec(usage="[<image>...]"), "imgstat", "imgfree"),
    "imgextract": _spec(_NAME, _KEEP, _TIMEOUT, _QUIET, min_args=1, max_args=1, usage="<uri|image>"),
    "imgverify": _spec(_text("signer", "s"), _KEEP, _TIMEOUT, _QUIET, min_args=2, max_args=2,
                       usage="<uri|image> <signature uri|image>"),
    "imgtrust": _spec(_flag("allow", "a"), _flag("permanent", "p"), max_args=0),
    "imgdecrypt": _spec(_NAME, _KEEP, _TIMEOUT, _QUIET, min_args=2, max_args=2,
                        usage="<uri|image> <envelope uri|image>"),
    "imgset": _spec(_KEEP, _TIMEOUT, _QUIET, min_args=2, max_args=2, usage="<setting> <uri|image>"),
    "imgmem": _spec(_NAME, min_args=2, max_args=2, usage="<address> <length>"),
    **_aliases(_spec(_text("set", "s"), min_args=1, usage="<uri|image> [<uri|image>...]"),
               "md4sum", "md5sum", "sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum"),
    "shim": _spec(_TIMEOUT, _QUIET, _flag("require-loader", "l"), _flag("allow-pxe", "p"),
                  _flag("allow-sbat", "s"), max_args=1, usage="[<uri|image>]"),
    "fdt": _spec(_TIMEOUT, _QUIET, max_args=1, usage="[<uri|image>]"),
    # SAN (reference §3.3)
    "sanhook": _spec(_int("drive", "d"), _flag("no-describe", "n"), min_args=1, usage="<root-path>..."),
    "sanboot": _spec(_int("drive", "d"), _flag("no-describe", "n"), _KEEP, _text("filename", "f"),
                     _text("extra", "e"), _text("label", "l"), _text("uuid", "u"), usage="[<root-path>...]"),
    "sanunhook": _spec(_int("drive", "d"), max_args=0),
    # Settings (reference §2.3); pyipxe implements these, so the registry's specs win.
    "set": _spec(min_args=1, usage="<setting> [<value>...]"),
    "clear": _spec(min_args=1, max_args=1, usage="<setting>"),
    "show": _spec(_QUIET, min_args=1, max_args=1, usage="<setting>"),
    "read": _spec(_TIMEOUT, min_args=1, max_args=1, usage="<setting>"),
    "inc": _spec(min_args=1, max_args=2, usage="<setting> [<increment>]"),
    # User interface and miscellany (reference §3.4)
    "config": _spec(max_args=1, usage="[<scope>]"),
    "login": _spec(max_args=0),
    **_aliases(_spec(_NAME, _flag("delete", "d"), usage="[<title>]"), "menu", "form"),
    "item": _spec(_text("menu", "m"), _text("form", "f"), Option("key", "k", parse_key),
                  _flag("default", "d"), _flag("secret", "s"), _flag("gap", "g"),
                  usage="[<name> [<text>]]"),
    "choose": _spec(_text("menu", "m"), _text("default", "d"), _TIMEOUT,
                    Option("retimeout", "r", parse_timeout), _KEEP, min_args=1, max_args=1,
                    usage="<setting>"),
    "present": _spec(_text("form", "f"), _KEEP, max_args=0),
    "params": _spec(_NAME, _text("method", "m"), _flag("delete", "d"), max_args=0),
    "param": _spec(_text("params", "p"), _flag("header", "H"), min_args=1, usage="<key> [<value>]"),
    "prompt": _spec(Option("key", "k", parse_key), _TIMEOUT, usage="[<text>]"),
    "echo": _spec(_flag("n", "n"), usage="[...]"),
    "isset": _spec(min_args=1, max_args=1, usage="<value>"),
    "iseq": _spec(min_args=2, max_args=2, usage="<value1> <value2>"),
    "goto": _spec(min_args=1, max_args=1, usage="<label>"),
    "exit": _spec(max_args=1, usage="[<status>]"),
    "sleep": _spec(min_args=1, max_args=1, usage="<seconds>"),
    "shell": _spec(max_args=0),
    "help": _spec(max_args=0),
    "time": _spec(min_args=1, usage="<command>"),
    "cpuid": _spec(_flag("ext", "e"), _flag("amd", "a"), _flag("ecx", "c"), min_args=1, max_args=1,
                   usage="<bit>"),
    **_aliases(_spec(min_args=1, max_args=1, usage="<setting>"), "pciscan", "usbscan"),
    "console": _spec(_int("x", "x"), _int("y", "y"), _int("left", "l"), _int("right", "r"),
                     _int("top", "t"), _int("bottom", "b"), _int("depth", "d"), _text("picture", "p"),
                     _KEEP, max_args=0),
    "colour": _spec(_int("basic", "b"), _int("rgb", "r"), min_args=1, max_args=1, usage="<colour>"),
    "cpair": _spec(_int("foreground", "f"), _int("background", "b"), min_args=1, max_args=1,
                   usage="<pair>"),
    "certstat": _spec(_text("subject", "s"), max_args=0),
    "certstore": _spec(_text("subject", "s"), _KEEP, max_args=1, usage="[<uri|image>]"),
    "certfree": _spec(_text("subject", "s"), max_args=0),
    "reboot": _spec(_flag("warm", "w"), _flag("setup", "s"), max_args=0),
    "poweroff": _spec(max_args=0),
    "sync": _spec(_TIMEOUT, max_args=0),
    # Debugging and the BIOS PXE API
    "profstat": _spec(max_args=0),
    "gdbstub": _spec(min_args=1, usage="<transport> [<options>...]"),
    "startpxe": _spec(max_args=1, usage="[<interface>]"),
    "stoppxe": _spec(max_args=0),
}


def known_commands() -> Mapping[str, CommandSpec]:
    """The specs ``check`` judges by: pyipxe's real ones first, this table for the rest.

    Read from the registry on every call rather than cached, because command modules can
    be registered after this module is imported (tests, plug-ins).
    """
    specs = dict(TABLE)
    specs.update({name: entry.spec for name, entry in load_commands().items()})
    return specs
