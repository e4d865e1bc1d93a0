"""Signed images, the trust policy and the certificate store (reference §8, issue 7).

A root CA, an intermediate and code-signing leaves are made at test time
(tests/fixtures/trust/pki.py); signatures are made by ``openssl cms -sign -binary -noattr
-outform DER`` exactly as iPXE's documentation advises. The end-to-end cases run this
checkout's ``pyipxe run`` on scripts with ``file:`` URIs and compare the whole console
with what iPXE prints, error numbers included (BIOS platform); the finer points run
in-process.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import zlib
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms

from fixtures.trust.pki import Pair, Pki, sign
from pyipxe.console.output import Console
from pyipxe.errors import IpxeError
from pyipxe.runner import apply_preset, run_top_script
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter
from pyipxe.trust import x509 as tx509
from pyipxe.trust.store import session

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = b"#!ipxe\necho the signed script runs\n"


@dataclass
class World:
    dir: Path
    root: Pair
    inter: Pair
    signer: Pair
    nocode: Pair
    expired: Pair
    stranger: Pair
    ec_signer: Pair
    other_root: Pair

    def file(self, name: str) -> str:
        return f"file:{self.dir}/{name}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("trust")
    pki = Pki(directory / "pki")
    root = pki.issue("root", "pyipxe test root", None, ca=True)
    inter = pki.issue("inter", "pyipxe test intermediate", root, ca=True)
    signer = pki.issue("signer", "boot.pyipxe.test", inter)
    nocode = pki.issue("nocode", "web.pyipxe.test", inter, code_signing=False, server=True)
    expired = pki.issue("expired", "old.pyipxe.test", inter, expired=True)
    other_root = pki.issue("other-root", "someone else's root", None, ca=True)
    other_inter = pki.issue("other-inter", "someone else's intermediate", other_root, ca=True)
    stranger = pki.issue("stranger", "boot.pyipxe.test", other_inter)
    ec_signer = pki.issue("ec-signer", "ec.pyipxe.test", inter, ec_key=True, alt_names=("*.sign.pyipxe.test",))

    boot, other = directory / "boot.ipxe", directory / "other.ipxe"
    boot.write_bytes(SCRIPT)
    other.write_bytes(b"#!ipxe\necho some other script\n")
    (directory / "tampered.ipxe").write_bytes(SCRIPT.replace(b"runs", b"RUNS"))
    sign(boot, directory / "boot.sig", signer, inter)
    sign(boot, directory / "boot-attr.sig", signer, inter, attributes=True)
    sign(boot, directory / "boot-ec.sig", ec_signer, inter)
    sign(boot, directory / "boot-full.sig", signer, inter, root)
    sign(boot, directory / "boot-nocode.sig", nocode, inter)
    sign(boot, directory / "boot-expired.sig", expired, inter)
    sign(boot, directory / "boot-stranger.sig", stranger, other_inter)
    sign(boot, directory / "boot-stranger-root.sig", stranger, other_inter, other_root)
    sign(other, directory / "other.sig", signer, inter)
    good = (directory / "boot.sig").read_bytes()
    (directory / "truncated.sig").write_bytes(good[: len(good) // 2])
    (directory / "garbage.sig").write_bytes(os.urandom(3000))
    info = asn1_cms.ContentInfo.load(good)
    info["content"]["signer_infos"] = []
    (directory / "unsigned.sig").write_bytes(info.dump(force=True))
    subprocess.run(["openssl", "cms", "-cmsout", "-inform", "DER", "-outform", "PEM", "-in", str(directory / "boot.sig"),
                    "-out", str(directory / "boot.sig.pem")], check=True, capture_output=True)
    return World(directory, root, inter, signer, nocode, expired, stranger, ec_signer, other_root)


def pyipxe(world: World, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    path = world.dir / "test.ipxe"
    path.write_text(script)
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    return subprocess.run([sys.executable, "-m", "pyipxe", "run", "--platform", "pcbios", "--network", "host",
                           *options, str(path)], capture_output=True, text=True, timeout=60, env=env)


def colons(hex_text: str) -> str:
    """iPXE's hex setting type: bytes separated by colons."""
    return ":".join(hex_text[i:i + 2] for i in range(0, len(hex_text), 2))


def fetched(world: World, *names: str) -> list[str]:
    return [f"{world.file(name)}... ok" for name in names]


# -- end to end: pyipxe run ------------------------------------------------------------------

def test_good_signatures_make_the_image_trusted_and_bootable_under_a_trust_requirement(world: World) -> None:
    run = pyipxe(world, f"""#!ipxe
imgtrust
imgfetch {world.file("boot.ipxe")}
imgstat
chain boot.ipxe || echo refused ${{errno}}
imgverify boot.ipxe {world.file("boot.sig")}
imgstat
imgverify --signer boot.pyipxe.test boot.ipxe {world.file("boot-attr.sig")}
imgverify --signer ec.pyipxe.test boot.ipxe {world.file("boot-ec.sig")}
imgverify --signer x.sign.pyipxe.test --keep boot.ipxe {world.file("boot.sig.pem")} || imgstat
chain boot.ipxe || echo refused again
imgverify -s boot.pyipxe.test boot.ipxe boot.sig.pem
chain boot.ipxe
""", "--trust", str(world.root.pem))
    pem_size = (world.dir / "boot.sig.pem").stat().st_size
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        *fetched(world, "boot.ipxe"),
        f"boot.ipxe : {len(SCRIPT)} bytes [script]",
        "Could not boot: Permission denied (https://ipxe.org/0200813c)",
        "refused 0x200813c",
        *fetched(world, "boot.sig"),
        f"boot.ipxe : {len(SCRIPT)} bytes [script] [TRUSTED]",
        *fetched(world, "boot-attr.sig", "boot-ec.sig", "boot.sig.pem"),
        # --signer matches no signer of boot.sig: "Incorrect certificate name", trust revoked
        "Could not verify: Permission denied (https://ipxe.org/022ae43c)",
        f"boot.ipxe : {len(SCRIPT)} bytes [script]",
        f"boot.sig.pem : {pem_size} bytes [PEM]",
        "Could not boot: Permission denied (https://ipxe.org/0200813c)",
        "refused again",
        "the signed script runs",
    ]
    assert run.returncode == 0


def test_each_bad_signature_is_refused_with_ipxes_error(world: World) -> None:
    cases = [
        ("tampered.ipxe", "boot.sig", "0227e13c"),  # RSA signature incorrect
        ("other.ipxe", "boot.sig", "0227e13c"),  # a signature over another file
        ("boot.ipxe", "boot-nocode.sig", "022ae23c"),  # not a code-signing certificate
        ("boot.ipxe", "boot-expired.sig", "0216e43c"),  # expired (or not yet valid)
        ("boot.ipxe", "boot-stranger.sig", "0216e63c"),  # untrusted root (chain stops short)
        ("boot.ipxe", "boot-stranger-root.sig", "0216e63c"),  # untrusted root (chain ends at it)
        ("boot.ipxe", "truncated.sig", "3c2ae103"),  # not a digital signature
        ("boot.ipxe", "garbage.sig", "3c2ae103"),
        ("boot.ipxe", "unsigned.sig", "022ae53c"),  # no signatures present
        ("boot.ipxe", "boot.ipxe", "3c2ae103"),  # a script is no signature either
    ]
    lines = ["#!ipxe"]
    expected: list[str] = []
    for image, signature, _code in cases:
        lines.append(f"imgverify {world.file(image)} {world.file(signature)} || imgstat")
    lines.append(f"imgverify --signer somebody.else {world.file('boot.ipxe')} {world.file('boot.sig')} || imgstat")
    run = pyipxe(world, "\n".join(lines) + "\n", "--trust", str(world.root.pem))
    registered: list[str] = []
    for image, signature, code in [*cases, ("boot.ipxe", "boot.sig", "022ae43c")]:
        expected += fetched(world, image, signature)
        text = "Operation not supported" if code.startswith("3c") else "Permission denied"
        expected.append(f"Could not verify: {text} (https://ipxe.org/{code})")
        registered.append(image)  # the signature is freed, the image stays (untrusted)
        sizes = {name: (world.dir / name).stat().st_size for name in registered}
        types = {name: "script" for name in registered}
        expected += [f"{name} : {sizes[name]} bytes [{types[name]}]" for name in registered]
    assert run.stdout.splitlines() == expected
    assert run.returncode == 0


def test_permanent_trust_requirement(world: World) -> None:
    run = pyipxe(world, f"""#!ipxe
imgtrust --permanent
imgtrust --permanent
imgtrust --allow || echo allow refused ${{errno}}
chain {world.file("other.ipxe")} || echo chain refused ${{errno}}
imgfetch {world.file("boot.ipxe")}
imgverify boot.ipxe {world.file("other.sig")} || chain boot.ipxe
""", "--trust", str(world.root.pem))
    assert run.stdout.splitlines() == [
        "Could not set image trust requirement: Permission denied (https://ipxe.org/0200823c)",
        "allow refused 0x200823c",
        *fetched(world, "other.ipxe"),
        "Could not boot: Permission denied (https://ipxe.org/0200813c)",
        "chain refused 0x200813c",
        *fetched(world, "boot.ipxe", "other.sig"),
        "Could not verify: Permission denied (https://ipxe.org/0227e13c)",
        "Could not boot: Permission denied (https://ipxe.org/0200813c)",
    ]
    assert run.returncode == 1  # the last line failed: the script fails, as in iPXE
    assert "Could not boot: Permission denied (https://ipxe.org/0200813c)" in run.stderr


def test_without_trust_roots_nothing_verifies_and_the_trust_setting_adds_a_root(world: World) -> None:
    script = f"""#!ipxe
imgfetch {world.file("boot.ipxe")}
imgverify boot.ipxe {world.file("boot-full.sig")} && imgstat
"""
    untrusted = pyipxe(world, script)
    assert untrusted.stdout.splitlines()[-1] == "Could not verify: Permission denied (https://ipxe.org/0216e63c)"
    trusted = pyipxe(world, script, "--set", f"trust={colons(world.other_root.sha256 + world.root.sha256)}")
    assert trusted.stdout.splitlines()[-1] == f"boot.ipxe : {len(SCRIPT)} bytes [script] [TRUSTED]"


def test_certstat_certstore_certfree(world: World) -> None:
    run = pyipxe(world, f"""#!ipxe
certstat
imgverify {world.file("boot.ipxe")} {world.file("boot.sig")}
certstat
certstore --subject boot.pyipxe.test
certstore {world.file("pki/other-root.pem")}
imgstat
certstat --subject boot.pyipxe.test
certfree
certstat
certfree --subject nobody || echo none ${{errno}}
certstore --keep {world.file("boot.ipxe")} || imgstat
""", "--trust", str(world.root.pem))
    root = f"pyipxe test root : {world.root.sha1} [PERMANENT]"
    assert run.stdout.splitlines() == [
        root,
        *fetched(world, "boot.ipxe", "boot.sig"),
        # the signature's certificates are cached, newest first; the chain was validated
        f"boot.pyipxe.test : {world.signer.sha1} [VALIDATED]",
        f"pyipxe test intermediate : {world.inter.sha1} [VALIDATED]",
        root + " [VALIDATED]",
        *fetched(world, "pki/other-root.pem"),
        f"boot.ipxe : {len(SCRIPT)} bytes [script] [TRUSTED]",
        f"boot.pyipxe.test : {world.signer.sha1} [EXPLICIT] [VALIDATED]",
        root + " [VALIDATED]",  # certfree leaves permanent certificates alone
        '"nobody" : no such certificate',
        "none 0x2d4fe03b",
        *fetched(world, "boot.ipxe"),
        "Could not parse certificate: Invalid argument (https://ipxe.org/1c00e302)",
        f"boot.ipxe : {len(SCRIPT)} bytes [script] [TRUSTED]",
        f"boot.ipxe : {len(SCRIPT)} bytes [script]",
    ]


# -- in-process: the finer points ------------------------------------------------------------

def run_in_process(text: str, *, trust: Sequence[Path] = (), presets: tuple[str, ...] = (),
                   before: Callable[[Context], object] | None = None) -> tuple[str, Context]:
    stream = io.BytesIO()
    console = Console(stream, tty=False)  # type: ignore[arg-type]
    ctx = Context(console=console)
    for preset in ("platform=pcbios", *presets):
        apply_preset(ctx, preset)
    assert ctx.fetch_env is not None
    ctx.fetch_env.tls.trust_files.extend(str(path) for path in trust)
    Interpreter(ctx)
    if before is not None:
        before(ctx)
    asyncio.run(run_top_script(ctx, text, "test"))
    console.close()
    return stream.getvalue().decode(), ctx


def test_the_trust_setting_is_read_once_at_start_up(world: World) -> None:
    output, _ = run_in_process(f"""#!ipxe
set trust {colons(world.root.sha256)}
imgverify -s boot.pyipxe.test {world.file("boot.ipxe")} {world.file("boot-full.sig")}
""", before=session)
    assert output.splitlines()[-1] == "Could not verify: Permission denied (https://ipxe.org/0216e63c)"


def test_the_clock_is_unixtime(world: World) -> None:
    """Certificate validity uses the session's clock, which a script can set (as in iPXE)."""
    output, _ = run_in_process(f"""#!ipxe
set unixtime 0
imgverify {world.file("boot.ipxe")} {world.file("boot.sig")} || imgstat
""", trust=[world.root.pem])
    assert output.splitlines()[-2] == "Could not verify: Permission denied (https://ipxe.org/0216e43c)"


def test_cross_signing_certificates_are_fetched_from_crosscert(world: World, tmp_path: Path) -> None:
    """The signature carries only the leaf; the intermediate comes from ``crosscert``."""
    leaf_only = tmp_path / "leaf-only.sig"
    sign(world.dir / "boot.ipxe", leaf_only, world.signer)
    issuer = tx509.parse_certificate(world.signer.cert.public_bytes(_der())).issuer_raw
    crc = zlib.crc32(issuer) ^ 0xFFFFFFFF
    cross = tmp_path / "cross"
    cross.mkdir()
    inter_der = world.inter.cert.public_bytes(_der())
    certificate_set = asn1_cms.CertificateSet([asn1_cms.CertificateChoices.load(inter_der)])
    (cross / f"{crc:08x}.der").write_bytes(certificate_set.dump())
    script = f"#!ipxe\nimgverify {world.file('boot.ipxe')} file:{leaf_only} && imgstat\n"
    without, _ = run_in_process(script, trust=[world.root.pem])
    assert without.splitlines()[-1] == "Could not verify: Permission denied (https://ipxe.org/0216e63c)"
    messages: list[str] = []

    def log(ctx: Context) -> None:
        assert ctx.fetch_env is not None
        ctx.fetch_env.log = messages.append

    with_cross, _ = run_in_process(script, trust=[world.root.pem], presets=(f"crosscert=file:{cross}",), before=log)
    assert with_cross.splitlines()[-1] == f"boot.ipxe : {len(SCRIPT)} bytes [script] [TRUSTED]"
    subject = b64encode(issuer).decode()
    assert f"trust: fetching cross-signing certificates from file:{cross}/{crc:08x}.der?subject={subject}" in messages


def _der() -> object:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


def test_names_match_like_ipxe(world: World) -> None:
    cert = tx509.parse_certificate(world.ec_signer.cert.public_bytes(_der()))  # type: ignore[arg-type]
    for good in ("ec.pyipxe.test", "EC.pyipxe.TEST", "a.sign.pyipxe.test"):
        tx509.check_name(cert, good)
    for bad in ("pyipxe.test", "sign.pyipxe.test", "a.b.sign.pyipxe.test", "ec.pyipxe.test.", ""):
        with pytest.raises(IpxeError):
            tx509.check_name(cert, bad)


def test_client_identity_from_the_cert_and_privkey_settings(world: World) -> None:
    """iPXE takes DER in ``cert``/``privkey``; pyipxe hands ssl private PEM files."""
    from cryptography.hazmat.primitives import serialization

    key_der = world.signer.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
    cert_hex = world.signer.cert.public_bytes(serialization.Encoding.DER).hex()
    _, ctx = run_in_process("#!ipxe\ncertstat\n", presets=(f"cert={colons(cert_hex)}", f"privkey={colons(key_der.hex())}"))
    assert ctx.fetch_env is not None
    tls = ctx.fetch_env.tls
    assert tls.client_cert is not None and tls.client_key is not None
    assert os.stat(tls.client_key).st_mode & 0o777 == 0o600
    assert Path(tls.client_cert).read_bytes() == world.signer.cert.public_bytes(serialization.Encoding.PEM)
    loaded = serialization.load_pem_private_key(Path(tls.client_key).read_bytes(), None)
    assert loaded.private_numbers() == world.signer.key.private_numbers()  # type: ignore[union-attr]
    # a certificate that does not belong to the key is unusable: no identity from settings
    store = session(ctx)
    apply_preset(ctx, f"cert={colons(world.inter.cert.public_bytes(serialization.Encoding.DER).hex())}")
    assert (tls.client_cert, tls.client_key) == (None, None)
    apply_preset(ctx, "cert=")
    apply_preset(ctx, "privkey=")
    assert (tls.client_cert, tls.client_key) == (store.cli_cert, store.cli_key)


def test_chain_validation_order_and_path_length(world: World) -> None:
    """x509_validate_chain: the error is the last standalone attempt's; a cached success stands."""
    def load(*pairs: Pair) -> list[tx509.Certificate]:
        return [tx509.parse_certificate(pair.cert.public_bytes(_der())) for pair in pairs]  # type: ignore[arg-type]

    roots = {load(world.root)[0].sha256}

    def is_root(cert: tx509.Certificate) -> bool:
        return cert.sha256 in roots

    def error(chain: list[tx509.Certificate]) -> int:
        with pytest.raises(IpxeError) as failure:
            tx509.validate_chain(chain, now, is_root)
        return failure.value.code("pcbios")

    now = world.signer.cert.not_valid_before_utc.timestamp() + 86400
    assert error([]) == 0x0216E83C  # empty certificate chain
    assert error(load(world.expired, world.inter, world.root)) == 0x0216E43C  # expired
    assert error(load(world.signer, world.inter)) == 0x0216E63C  # untrusted root
    assert error(load(world.signer, world.root)) == 0x0216E13C  # wrong issuer
    assert error(load(world.signer, world.signer, world.root)) == 0x0216E13C
    leaf, inter, root = load(world.signer, world.inter, world.root)
    tx509.validate_chain([leaf, inter, root], now, is_root)
    assert leaf.valid and inter.valid and root.valid
    tx509.validate_chain([leaf], now, is_root)  # cached, as iPXE's cert->valid
    fresh = load(world.signer)[0]
    tx509.validate_chain([fresh, inter], now, is_root)
    assert fresh.valid
    inter.path_remaining = 0
    fresh = load(world.signer)[0]
    with pytest.raises(IpxeError) as failure:
        tx509.validate(fresh, inter, now, is_root)
    assert failure.value.code("pcbios") == 0x0216E53C  # maximum path length exceeded
    assert not fresh.valid
    leaf_as_issuer = load(world.signer)[0]
    leaf_as_issuer.valid = True
    leaf_as_issuer.path_remaining = 5
    with pytest.raises(IpxeError) as failure:
        tx509.validate(load(world.signer)[0], leaf_as_issuer, now, is_root)
    assert failure.value.code("pcbios") == 0x0216E13C
