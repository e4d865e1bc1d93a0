"""imgtrust, imgverify, certstat, certstore, certfree (reference §3.2, §3.4, §8).

Why here and not in image_cmds: these are iPXE's image_trust_cmd.c and cert_cmd.c, built
only when trust is wanted; the work is done by ``pyipxe.trust`` (parse, validate, verify)
and the image registry (the trust flag and the "require trusted images" policy, which
``ImageRegistry.execute`` enforces for every backend and every chained script).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.registry import Image
from pyipxe.script.commands.image_cmds import TIMEOUT, acquire
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_string
from pyipxe.script.registry import command
from pyipxe.trust.store import TrustStore, session

if TYPE_CHECKING:
    from pyipxe.trust.x509 import Certificate

# hci/commands/cert_cmd.c (ERRFILE_cert_cmd = other-category file 0x4f): plain -ENOENT
ERR_NO_SUCH_CERTIFICATE = ErrorSite(ErrorClass.ENOENT, 0x4FE0)
# usr/imgtrust.c (ERRFILE_imgtrust = other-category file 0x2b): iPXE copies the signature into
# memory and fails with -ENOMEM when it cannot; pyipxe refuses anything this big the same way
ERR_TOO_BIG = ErrorSite(ErrorClass.ENOMEM, 0x2BE0)
#: no signature or certificate bundle is this large; the cap keeps a hostile one out of RAM
MAX_PARSED = 16 << 20

KEEP = Option("keep", "k")

IMGTRUST_SPEC = CommandSpec(options=(Option("allow", "a"), Option("permanent", "p")), max_args=0)
IMGVERIFY_SPEC = CommandSpec(options=(Option("signer", "s", parse_string), KEEP, TIMEOUT), min_args=2, max_args=2,
                             usage="<uri|image> <signature uri|image>")


@command("imgtrust", spec=IMGTRUST_SPEC)
async def imgtrust(ctx: Context, opts: Parsed) -> None:
    with ctx.reporting("set image trust requirement"):
        ctx.images.set_trust(not opts.options["allow"], bool(opts.options["permanent"]))


@command("imgverify", spec=IMGVERIFY_SPEC)
async def imgverify(ctx: Context, opts: Parsed) -> None:
    image = await acquire(ctx, opts.args[0], opts.options["timeout"])
    signature = await acquire(ctx, opts.args[1], opts.options["timeout"])
    try:
        with ctx.reporting("verify"):
            await verify_image(ctx, image, signature, opts.options["signer"])
    finally:
        if not opts.options["keep"]:
            ctx.images.unregister(signature)


async def verify_image(ctx: Context, image: Image, signature: Image, signer: str | None) -> None:
    """usr/imgtrust.c: untrusted first (a failed verify revokes trust), TRUSTED on success."""
    from pyipxe.trust import cms

    image.trusted = False
    store = session(ctx)
    parsed = cms.parse_signature(_contents(signature), store)
    cross = store.fetch_cross if store.cross_source() is not None else None
    await cms.verify(parsed, image.data, signer, store.now(), store, cross)
    image.trusted = True


def _contents(image: Image) -> bytes:
    if image.length > MAX_PARSED:
        raise IpxeError(ERR_TOO_BIG)
    return image.data.read()


# -- certstat, certstore, certfree (hci/commands/cert_cmd.c, usr/certmgmt.c) -----------------

SUBJECT = Option("subject", "s", parse_string)
CERTSTAT_SPEC = CommandSpec(options=(SUBJECT,), max_args=0)
CERTSTORE_SPEC = CommandSpec(options=(SUBJECT, KEEP), max_args=1, usage="[<uri|image>]")
CERTFREE_SPEC = CommandSpec(options=(SUBJECT,), max_args=0)

#: what a cert<xxx> command does to each (matching) certificate
Payload = Callable[[Context, TrustStore, "Certificate"], None]


def _certstat_line(cert: Certificate) -> str:
    flags = "".join((" [PERMANENT]" if cert.permanent else "", " [EXPLICIT]" if cert.explicit else "",
                     " [VALIDATED]" if cert.valid else ""))
    return f"{cert.name} : {cert.sha1_hex}{flags}"


async def _cert_command(ctx: Context, opts: Parsed, payload: Payload) -> None:
    """cert_exec: certificates from the image (if one is named) or from the store."""
    from pyipxe.trust.x509 import certificates_in, check_name

    store = session(ctx)
    image = await acquire(ctx, opts.args[0]) if opts.args else None
    name: str | None = opts.options["subject"]
    try:
        if image is not None:
            with ctx.reporting("parse certificate"):
                certs = [store.cache(cert) for cert in certificates_in(_contents(image))]
        else:
            certs = store.listed()
        count = 0
        for cert in certs:
            if name is not None:
                try:
                    check_name(cert, name)
                except IpxeError:
                    continue
            payload(ctx, store, cert)
            count += 1
        if name is not None and count == 0:
            ctx.console.print(f'"{name}" : no such certificate')
            raise IpxeError(ERR_NO_SUCH_CERTIFICATE)
    finally:
        if image is not None and not opts.options.get("keep"):
            ctx.images.unregister(image)


def _stat(ctx: Context, store: TrustStore, cert: Certificate) -> None:
    ctx.console.print(_certstat_line(cert))


def _store(ctx: Context, store: TrustStore, cert: Certificate) -> None:
    cert.explicit = True


def _free(ctx: Context, store: TrustStore, cert: Certificate) -> None:
    store.remove(cert)


@command("certstat", spec=CERTSTAT_SPEC)
async def certstat(ctx: Context, opts: Parsed) -> None:
    await _cert_command(ctx, opts, _stat)


@command("certstore", spec=CERTSTORE_SPEC)
async def certstore(ctx: Context, opts: Parsed) -> None:
    await _cert_command(ctx, opts, _store)


@command("certfree", spec=CERTFREE_SPEC)
async def certfree(ctx: Context, opts: Parsed) -> None:
    await _cert_command(ctx, opts, _free)
