"""Detached CMS (PKCS #7) signatures as iPXE's crypto/cms.c and usr/imgtrust.c check them.

Why asn1crypto here: cryptography can make PKCS #7 signatures and list the certificates
in one, but it cannot verify a SignedData's signer infos; asn1crypto parses the structure
(RFC 5652) and cryptography does every cryptographic step.

The rules are iPXE's (reference §8.1), in iPXE's order, because scripts see which error
comes first:
1. parse: not a SignedData → "Not a digital signature"; every certificate in it joins the
   session's store (iPXE's certstore caches them); each signer's certificate is found by
   issuer and serial number (pyipxe also accepts a subjectKeyIdentifier);
2. every signer's chain is completed and validated (x509.validate_chain; cross-signing
   certificates fetched when the chain stops short and ``crosscert`` is set);
3. signers whose certificate does not match ``--signer`` are skipped; each remaining one
   needs keyUsage digitalSignature, extendedKeyUsage codeSigning and a signature that
   verifies over the whole image (directly, or through signed attributes whose
   messageDigest is the image's digest — iPXE 2019 supports only the former, as made by
   ``openssl cms -sign -binary -noattr``);
4. at least one signer must have been checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]
from asn1crypto import core as asn1_core
from asn1crypto import pem as asn1_pem
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, utils

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.trust.x509 import (
    ERR_ASN1,
    ERR_BAD_SIGNATURE,
    ERR_UNSUPPORTED_ALGORITHM,
    Certificate,
    auto_append,
    check_name,
    parse_certificate,
    validate_chain,
)

C = ErrorClass

# crypto/cms.c (ERRFILE_cms = other-category file 0x2a)
ERR_NOT_SIGNING = ErrorSite(C.EACCES, 0x2AE1)  # "Not a signing certificate"
ERR_NOT_CODE_SIGNING = ErrorSite(C.EACCES, 0x2AE2)  # "Not a code-signing certificate"
ERR_WRONG_SIGNER = ErrorSite(C.EACCES, 0x2AE4)  # "Incorrect certificate name"
ERR_NO_SIGNATURES = ErrorSite(C.EACCES, 0x2AE5)  # "No signatures present"
ERR_NOT_PUBKEY = ErrorSite(C.EINVAL, 0x2AE2)  # "Not a public-key algorithm" (key and algorithm disagree)
ERR_NOT_SIGNED_DATA = ErrorSite(C.ENOTSUP, 0x2AE1)  # "Not a digital signature"
ERR_NO_SIGNER_CERT = ErrorSite(C.ENOENT, 0x2AE0)  # plain -ENOENT: signer's certificate not in the message
# net/validator.c (ERRFILE_validator = other-category file 0x2e): a cross-signing download
# that added nothing to the chain (plain -EACCES)
ERR_NO_PROGRESS = ErrorSite(C.EACCES, 0x2EE0)

SIGNED_DATA = "1.2.840.113549.1.7.2"

#: digests a signer may use (MD5 and SHA-1's relatives in name only are refused)
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class CertificatePool(Protocol):
    """The session's certificate store as a signature needs it (trust.store.TrustStore)."""

    def cache(self, cert: Certificate) -> Certificate: ...

    def candidates(self) -> Sequence[Certificate]: ...

    def is_root(self, cert: Certificate) -> bool: ...


class Content(Protocol):
    """The signed image: its digest by algorithm name, or (EdDSA only) all of it."""

    def digest(self, algorithm: str) -> bytes: ...

    def read(self, offset: int = 0, size: int | None = None) -> bytes: ...


#: fetches the cross-signing certificates for an issuer DN (raw DER); None = not configured
CrossFetch = Callable[[bytes], Awaitable[list[Certificate]]]


@dataclass
class Signer:
    cert: Certificate
    digest: str
    algorithm: str
    pss: tuple[str, int] | None
    signature: bytes
    signed_attrs: bytes | None
    message_digest: bytes | None
    content_type_data: bool
    chain: list[Certificate]


@dataclass
class Signature:
    certificates: list[Certificate]
    signers: list[Signer]


# -- parsing ---------------------------------------------------------------------------------

def _unarmor(data: bytes) -> bytes:
    """PEM ("-----BEGIN PKCS7-----", "CMS") to DER; DER passes through."""
    if not data.lstrip().startswith(b"-----BEGIN"):
        return data
    try:
        _kind, _headers, der = asn1_pem.unarmor(data)
    except Exception:  # broken armour is not a signature at all
        raise IpxeError(ERR_NOT_SIGNED_DATA) from None
    return bytes(der)


def parse_signature(data: bytes, pool: CertificatePool) -> Signature:
    """Parse a detached SignedData; its certificates are cached in ``pool`` as they are read."""
    der = _unarmor(data)
    try:
        info = asn1_cms.ContentInfo.load(der)
        content_type = info["content_type"].dotted
    except Exception:  # untrusted bytes: whatever asn1crypto rejects is "not a signature"
        raise IpxeError(ERR_NOT_SIGNED_DATA) from None
    if content_type != SIGNED_DATA:
        raise IpxeError(ERR_NOT_SIGNED_DATA)
    try:
        signed = info["content"]
        listed = signed["certificates"]
        cert_ders = [] if isinstance(listed, asn1_core.Void) else [
            choice.chosen.dump() for choice in listed if choice.name == "certificate"
        ]
        signer_infos = list(signed["signer_infos"])
    except Exception:
        raise IpxeError(ERR_ASN1) from None
    certificates = [pool.cache(parse_certificate(cert_der)) for cert_der in cert_ders]
    signers = [_parse_signer(signer_info, certificates) for signer_info in signer_infos]
    return Signature(certificates, signers)


def _parse_signer(info: Any, certificates: list[Certificate]) -> Signer:
    try:
        sid = info["sid"]
        if sid.name == "issuer_and_serial_number":
            issuer, serial = sid.chosen["issuer"].dump(), sid.chosen["serial_number"].dump()
            cert = next((c for c in certificates if c.issuer_raw == issuer and c.serial_raw == serial), None)
        else:
            key_id = bytes(sid.chosen.native)
            cert = next((c for c in certificates if c.subject_key_id == key_id), None)
        digest = info["digest_algorithm"]["algorithm"].native
        algorithm_field = info["signature_algorithm"]
        signature = bytes(info["signature"].native)
        attrs = info["signed_attrs"]
        signed_attrs: bytes | None = None
        message_digest: bytes | None = None
        content_type_data = True
        if not isinstance(attrs, asn1_core.Void):
            signed_attrs = attrs.untag().dump()  # signed as a SET OF, not as the [0] it is sent as
            found = {attr["type"].native: attr["values"] for attr in attrs}
            if "message_digest" in found and len(found["message_digest"]) == 1:
                message_digest = bytes(found["message_digest"][0].native)
            content_type_data = "content_type" in found and [v.native for v in found["content_type"]] == ["data"]
    except Exception:
        raise IpxeError(ERR_ASN1) from None
    if cert is None:
        raise IpxeError(ERR_NO_SIGNER_CERT)
    if digest not in HASHES:
        raise IpxeError(ERR_UNSUPPORTED_ALGORITHM)
    try:
        algorithm = algorithm_field.signature_algo
        pss = _pss_parameters(algorithm_field) if algorithm == "rsassa_pss" else None
    except (ValueError, KeyError, TypeError):
        raise IpxeError(ERR_UNSUPPORTED_ALGORITHM) from None
    return Signer(cert, digest, algorithm, pss, signature, signed_attrs, message_digest, content_type_data, [cert])


def _pss_parameters(field: Any) -> tuple[str, int]:
    params = field["parameters"]
    mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
    if params["hash_algorithm"]["algorithm"].native != mgf_hash or mgf_hash not in HASHES:
        raise ValueError("PSS with a mask hash other than the message hash")
    return str(mgf_hash), int(params["salt_length"].native)


# -- verification ----------------------------------------------------------------------------

async def complete_and_validate(chain: list[Certificate], now: float, pool: CertificatePool,
                                cross_fetch: CrossFetch | None) -> None:
    """net/validator.c: validate; when the chain stops short of any root, fetch cross-signers."""
    while True:
        auto_append(chain, pool.candidates())
        try:
            validate_chain(chain, now, pool.is_root)
            return
        except IpxeError:
            # a certificate whose issuer is valid failed on its own merits: no download helps
            if any(chain[i + 1].valid for i in range(len(chain) - 1)) or chain[-1].self_issued or cross_fetch is None:
                raise
        before = len(chain)
        auto_append(chain, await cross_fetch(chain[-1].issuer_raw))
        if len(chain) == before:
            raise IpxeError(ERR_NO_PROGRESS)


async def verify(signature: Signature, content: Content, name: str | None, now: float, pool: CertificatePool,
                 cross_fetch: CrossFetch | None = None) -> None:
    """usr/imgtrust.c's imgverify after parsing: chains first, then cms_verify."""
    for signer in signature.signers:
        await complete_and_validate(signer.chain, now, pool, cross_fetch)
    digests: dict[str, bytes] = {}
    count = 0
    for signer in signature.signers:
        if name is not None:
            try:
                check_name(signer.cert, name)
            except IpxeError:
                continue
        validate_chain(signer.chain, now, pool.is_root)
        if not signer.cert.digital_signature:
            raise IpxeError(ERR_NOT_SIGNING)
        if not signer.cert.code_signing:
            raise IpxeError(ERR_NOT_CODE_SIGNING)
        if signer.digest not in digests:
            digests[signer.digest] = await asyncio.to_thread(content.digest, signer.digest)
        await _verify_signer(signer, content, digests[signer.digest])
        count += 1
    if count == 0:
        raise IpxeError(ERR_WRONG_SIGNER if name is not None else ERR_NO_SIGNATURES)


async def _verify_signer(signer: Signer, content: Content, image_digest: bytes) -> None:
    hash_type = HASHES[signer.digest]
    if signer.signed_attrs is not None:
        if signer.message_digest != image_digest or not signer.content_type_data:
            raise IpxeError(ERR_BAD_SIGNATURE)  # pyipxe's choice: the attributes do not describe this image
        message: bytes = signer.signed_attrs
        prehashed = False
    else:
        message, prehashed = image_digest, True
    key = signer.cert.crypto.public_key()
    try:
        if signer.algorithm in ("rsassa_pkcs1v15", "rsassa_pss") and isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = padding.PKCS1v15()
            if signer.pss is not None:
                pad = padding.PSS(padding.MGF1(HASHES[signer.pss[0]]()), signer.pss[1])
            key.verify(signer.signature, message, pad, utils.Prehashed(hash_type()) if prehashed else hash_type())
        elif signer.algorithm == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, message,
                       ec.ECDSA(utils.Prehashed(hash_type()) if prehashed else hash_type()))
        elif signer.algorithm in ("ed25519", "ed448") and isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            whole = message if not prehashed else await asyncio.to_thread(content.read)  # EdDSA signs the data itself
            key.verify(signer.signature, whole)
        else:
            raise IpxeError(ERR_NOT_PUBKEY)
    except InvalidSignature:
        raise IpxeError(ERR_BAD_SIGNATURE) from None
    except (ValueError, TypeError, UnsupportedAlgorithm):  # e.g. a digest length the key cannot carry
        raise IpxeError(ERR_BAD_SIGNATURE) from None
