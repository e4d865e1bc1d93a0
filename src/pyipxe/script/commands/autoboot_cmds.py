"""``autoboot``: iPXE's netboot on each interface (reference §3.1, §6.2; usr/autoboot.c).

Why a command (not only ``pyipxe boot``): iPXE scripts call ``autoboot`` themselves, and
the same function serves ``pyipxe boot`` and the bootable image's init, as iPXE's one
``netboot()`` serves its shell, scripts and start-up. Per interface: close the others, open
it and show ``ifstat``, configure it (DHCP), show the routes, then boot the DHCP filename
(as a URI, §4.6) — printed, fetched, its ``imgstat`` line shown, AUTOFREE, executed. A
kernel that boots never returns (see pyipxe.boot); an image that returns does not stop
autoboot, which goes on to the next interface and fails with the last status.

Not yet: the PXE boot menu (§5.6) and SAN boot of a root path (the SAN issue); a root path
alone fails with "Operation not supported" after printing it.
"""

from __future__ import annotations

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.fetch import download
from pyipxe.net.devices import NetDevice
from pyipxe.script.commands.image_cmds import imgstat_line
from pyipxe.script.commands.net_cmds import IF_SPEC, for_interfaces, ifconf, ifstat_text, network
from pyipxe.script.context import Context
from pyipxe.script.expand import expand
from pyipxe.script.options import Parsed
from pyipxe.script.registry import command
from pyipxe.uri import pxe_filename_uri

# usr/autoboot.c (ERRFILE_autoboot = other | 0x00030000): ENOENT_BOOT, "Nothing to boot"
ERR_NOTHING_TO_BOOT = ErrorSite(ErrorClass.ENOENT, 0x03E1)
# pyipxe's own: SAN boot from a root path is not there yet (the SAN issue)
ERR_NO_SAN = ErrorSite(ErrorClass.ENOTSUP, 0x03E0)


def _setting(ctx: Context, name: str) -> str:
    try:
        return ctx.settings.fetch_text(name)
    except IpxeError:
        return ""


async def netboot(ctx: Context, device: NetDevice) -> None:
    """iPXE's netboot(netdev); raises IpxeError on failure, returns when a booted image returns."""
    state = network(ctx)
    for other in list(state.devices):
        if other is not device and other.is_open:
            state.close(other)
    state.open(device)
    ctx.console.print(ifstat_text(ctx, device))
    await ifconf(ctx, device, None, 0)
    await ctx.run().execute(["route"])
    filename = pxe_filename_uri(_setting(ctx, "next-server") or None, _setting(ctx, "filename"))
    root_path = expand(_setting(ctx, "root-path"), ctx.settings.fetch_text) if _setting(ctx, "root-path") else ""
    if root_path:
        ctx.console.print(f"Root path: {root_path}")
    if filename is None and not root_path:
        ctx.console.print(f"Nothing to boot: {ctx.error_text(IpxeError(ERR_NOTHING_TO_BOOT))}")
        raise IpxeError(ERR_NOTHING_TO_BOOT)
    if filename is None:
        raise IpxeError(ERR_NO_SAN)
    if root_path:
        ctx.console.print("Ignoring unsupported root path")
    assert ctx.fetch_env is not None
    image = await download(filename, registry=ctx.images, env=ctx.fetch_env, console=ctx.console, keys=ctx.keys,
                           error_text=ctx.error_text)
    ctx.images.register(image)
    ctx.console.print(imgstat_line(ctx, image))
    image.autofree = True
    with ctx.reporting("boot image"):
        await ctx.images.execute(image)
    ctx.console.print()


@command("autoboot", spec=IF_SPEC)
async def autoboot(ctx: Context, opts: Parsed) -> None:
    """netboot on each listed interface (default: all); a success does not stop it; the last status wins."""
    last: IpxeError | None = None

    async def payload(device: NetDevice) -> None:
        nonlocal last
        try:
            await netboot(ctx, device)
            last = None
        except IpxeError as error:
            last = error

    await for_interfaces(ctx, opts.args, payload, stop_on_success=False)
    if last is not None:
        raise last

