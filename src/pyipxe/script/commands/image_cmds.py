"""imgfetch, kernel, chain, imgargs, imgstat, imgfree, the digest commands (reference §3.2).

Why one family: iPXE builds them all from one "img{single}" routine — acquire (an image
by name, else a download), then name, arguments, AUTOFREE, then an action whose failure
prints ``Could not <verb>: <error>`` — and scripts depend on its exact order and quirks
(``chain`` with nothing selected prints ``No image selected`` and succeeds).
"""

from __future__ import annotations

import binascii
from dataclasses import replace

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.archive import extract
from pyipxe.image.fetch import download
from pyipxe.image.registry import Image
from pyipxe.net.transfer import driver_for
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_string, parse_timeout
from pyipxe.script.registry import command
from pyipxe.settings.types import lookup_type
from pyipxe.uri import Uri, parse_uri, resolve_uri

HEXRAW = lookup_type("hexraw")
assert HEXRAW is not None

# hci/commands/image_cmd.c
ERR_NO_SUCH_IMAGE = ErrorSite(ErrorClass.ENOENT, 0x0AE0)

NAME = Option("name", "n", parse_string)
TIMEOUT = Option("timeout", "t", parse_timeout)
AUTOFREE = Option("autofree", "a")
REPLACE = Option("replace", "r")
SINGLE = (NAME, TIMEOUT, AUTOFREE)

FETCH_SPEC = CommandSpec(options=SINGLE, min_args=1, usage="<uri> [<arguments>...]")
SELECT_SPEC = CommandSpec(options=SINGLE, min_args=1, usage="<uri|image> [<arguments>...]")
EXEC_SPEC = CommandSpec(options=(*SINGLE, REPLACE), usage="[<uri|image> [<arguments>...]]")
MULTI_SPEC = CommandSpec(usage="[<image>...]")


def resolve(ctx: Context, text: str) -> Uri:
    """``text`` as a URI, resolved against the current working URI (reference §4.3)."""
    base = parse_uri(ctx.cwuri) if ctx.cwuri else None
    return resolve_uri(base, parse_uri(text))


async def fetch_image(ctx: Context, text: str, timeout_ms: int | None = None) -> Image:
    """iPXE's imgdownload: download ``text`` (resolved) and register the new image."""
    written = parse_uri(text)
    uri = resolve(ctx, text)
    with ctx.reporting("start download"):
        driver_for(uri.scheme)
    assert ctx.fetch_env is not None, "session has no download environment"
    params = ctx.request_params.get(uri.params) if uri.params is not None else None
    image = await download(
        uri, registry=ctx.images, env=ctx.fetch_env, console=ctx.console, keys=ctx.keys,
        error_text=ctx.error_text, params=params, label=written,
        timeout=(timeout_ms / 1000) if timeout_ms else None,
    )
    ctx.images.register(image)
    return image


async def acquire(ctx: Context, text: str, timeout_ms: int | None = None) -> Image:
    """iPXE's imgacquire: an image of that name if one exists, else a download."""
    existing = ctx.images.find(text)
    if existing is not None:
        return existing
    return await fetch_image(ctx, text, timeout_ms)


def _apply_single_options(image: Image, opts: Parsed) -> None:
    if opts.options["name"] is not None:
        image.name = opts.options["name"]
    if len(opts.args) > 1:
        image.cmdline = " ".join(opts.args[1:])
    if opts.options["autofree"]:
        image.autofree = True


@command("imgfetch", "module", "initrd", spec=FETCH_SPEC)
async def imgfetch(ctx: Context, opts: Parsed) -> None:
    image = await fetch_image(ctx, opts.args[0], opts.options["timeout"])
    _apply_single_options(image, opts)


@command("kernel", "imgselect", "imgload", spec=SELECT_SPEC)
async def imgselect(ctx: Context, opts: Parsed) -> None:
    image = await acquire(ctx, opts.args[0], opts.options["timeout"])
    _apply_single_options(image, opts)
    with ctx.reporting("select"):
        ctx.images.select(image)


@command("imgargs", spec=SELECT_SPEC)
async def imgargs(ctx: Context, opts: Parsed) -> None:
    image = await acquire(ctx, opts.args[0], opts.options["timeout"])
    image.cmdline = None
    _apply_single_options(image, opts)


@command("chain", "imgexec", "boot", spec=EXEC_SPEC)
async def imgexec(ctx: Context, opts: Parsed) -> None:
    if opts.args:
        image = await acquire(ctx, opts.args[0], opts.options["timeout"])
    else:
        selected = ctx.images.selected()
        if selected is None:
            ctx.console.print("No image selected")
            return  # iPXE's quirk: success
        image = selected
    _apply_single_options(image, opts)
    with ctx.reporting("boot"):
        if opts.options["replace"]:
            ctx.images.replace_current(image)
            ctx.run().stop_current_script()
        else:
            await ctx.images.execute(image)


def imgstat_line(ctx: Context, image: Image) -> str:
    parts = [f"{image.name} : {image.length} bytes"]
    if image.type is not None:
        parts.append(f" [{image.type.name}]")
    if image.selected:
        parts.append(" [SELECTED]")
    if image is ctx.images.current:
        parts.append(" [CURRENT]")
    if image.trusted:
        parts.append(" [TRUSTED]")
    if image.autofree:
        parts.append(" [AUTOFREE]")
    if image.hidden:
        parts.append(" [HIDDEN]")
    if image.cmdline is not None:
        parts.append(f' "{image.cmdline}"')
    return "".join(parts)


@command("imgstat", spec=MULTI_SPEC)
async def imgstat(ctx: Context, opts: Parsed) -> None:
    if not opts.args:
        for image in list(ctx.images.images):
            ctx.console.print(imgstat_line(ctx, image))
        return
    for name in opts.args:  # iPXE stops at the first unknown name, after printing the ones before
        found = ctx.images.find(name)
        if found is None:
            ctx.console.print(f'"{name}": no such image')
            raise IpxeError(ERR_NO_SUCH_IMAGE)
        ctx.console.print(imgstat_line(ctx, found))


@command("imgfree", spec=MULTI_SPEC)
async def imgfree(ctx: Context, opts: Parsed) -> None:
    if not opts.args:
        for image in list(ctx.images.images):
            ctx.images.unregister(image)
        return
    for name in opts.args:
        found = ctx.images.find(name)
        if found is None:
            ctx.console.print(f'"{name}": no such image')
            raise IpxeError(ERR_NO_SUCH_IMAGE)
        ctx.images.unregister(found)


# -- imgextract (hci/commands/image_archive_cmd.c) -------------------------------------------

EXTRACT_SPEC = CommandSpec(options=(NAME, Option("keep", "k"), TIMEOUT), min_args=1, max_args=1)


@command("imgextract", spec=EXTRACT_SPEC)
async def imgextract(ctx: Context, opts: Parsed) -> None:
    image = await acquire(ctx, opts.args[0], opts.options["timeout"])
    try:
        with ctx.reporting("extract image"):
            extract(ctx.images, image, opts.options["name"])
    finally:
        if not opts.options["keep"]:
            ctx.images.unregister(image)


# -- digests (hci/commands/digest_cmd.c) -----------------------------------------------

DIGEST_SPEC = CommandSpec(options=(Option("set", "s", parse_string),), min_args=1, usage="<image> [<image>...]")


def _digest_command(name: str, algorithm: str) -> None:
    @command(name, spec=DIGEST_SPEC)
    async def digest(ctx: Context, opts: Parsed) -> None:
        for text in opts.args:
            try:
                image = await acquire(ctx, text)
            except IpxeError:
                continue  # iPXE moves on to the next image; the command still succeeds
            value = image.data.digest(algorithm)
            if opts.options["set"] is not None:
                block, setting = ctx.settings.parse_name(opts.options["set"], create=True)
                if setting.type is None:
                    setting = replace(setting, type=HEXRAW)
                ctx.settings.store(block, setting, value)
            else:
                ctx.console.print(f"{binascii.hexlify(value).decode()}  {image.name}")


for _name, _algorithm in (("md5sum", "md5"), ("sha1sum", "sha1"), ("sha224sum", "sha224"), ("sha256sum", "sha256"),
                          ("sha384sum", "sha384"), ("sha512sum", "sha512")):
    _digest_command(_name, _algorithm)

