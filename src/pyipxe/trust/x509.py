"""X.509 certificates as iPXE's crypto/x509.c judges them: names, usages, validity, chains.

Why not OpenSSL's (or cryptography's) path validation: iPXE's rules are its own and
scripts see their results — a chain is good when *some* certificate in it is a trusted
root by **SHA-256 fingerprint** (not by name), each certificate below is checked against
the one above it in order, and every failure has its own error number ("Expired (or not
yet valid)" 0216e43c, "Untrusted root certificate" 0216e63c, …). So the walk is written
here, and the cryptography is cryptography's: it loads keys and verifies signatures;
asn1crypto gives the exact bytes of issuer and subject names (iPXE compares names as raw
DER, never by meaning).

Rules: a :class:`Certificate` is immutable apart from iPXE's per-certificate validation
cache (``valid``, ``path_remaining``) and the store's flags; parsing never raises anything
but :class:`IpxeError`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.trust.errors import (
    ERR_ALGORITHM_MISMATCH,
    ERR_EMPTY_CHAIN,
    ERR_EXPIRED,
    ERR_INVALID_PATH_LEN,
    ERR_INVALID_VERSION,
    ERR_KEY_USAGE,
    ERR_NOT_CA,
    ERR_PATH_LEN,
    ERR_UNSUPPORTED_EXTENSION,
    ERR_UNTRUSTED,
    ERR_WRONG_ISSUER,
    ERR_WRONG_NAME,
)

C = ErrorClass


# crypto/asn1.c (ERRFILE_asn1 = other-category file 0x00). pyipxe's parser is not iPXE's
# cursor walk, so malformed DER is reported as iPXE's most common parse failure, "Field
# overruns cursor" (a choice: iPXE's exact number depends on where its cursor stops).
ERR_ASN1 = ErrorSite(C.EINVAL, 0x00E3)
ERR_UNSUPPORTED_ALGORITHM = ErrorSite(C.ENOTSUP, 0x00E1)  # "Unsupported algorithm"
# crypto/rsa.c (ERRFILE_rsa = other-category file 0x27): "RSA signature incorrect". iPXE
# 2019 knows only RSA; a bad ECDSA/EdDSA signature gets the same number (pyipxe's choice).
ERR_BAD_SIGNATURE = ErrorSite(C.EACCES, 0x27E1)

#: x509.h X509_ERROR_MARGIN_TIME: clocks may be wrong by this much either way
ERROR_MARGIN = 12 * 60 * 60
#: "unlimited" path length, as large as any real chain can use
UNLIMITED = 1 << 30

#: extensions iPXE understands; any other one marked critical makes the certificate unusable
_KNOWN_EXTENSIONS = {
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
}


@dataclass(eq=False)
class Certificate:
    """One parsed certificate: what iPXE's checks read, plus the loaded public key's owner."""

    der: bytes
    crypto: cx509.Certificate
    issuer_raw: bytes
    subject_raw: bytes
    serial_raw: bytes
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    subject_key_id: bytes | None
    not_before: float
    not_after: float
    ca: bool
    path_len: int
    key_usage_present: bool
    digital_signature: bool
    key_cert_sign: bool
    code_signing: bool
    # iPXE's validation cache (cert->valid, cert->path_remaining) and the store's flags
    valid: bool = False
    path_remaining: int = 0
    permanent: bool = False
    explicit: bool = False
    sha256: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.der).digest()

    @property
    def sha1_hex(self) -> str:
        return hashlib.sha1(self.der).hexdigest()

    @property
    def name(self) -> str:
        """iPXE's x509_name: the commonName, else the SHA-1 fingerprint."""
        return self.common_name if self.common_name is not None else self.sha1_hex

    @property
    def self_issued(self) -> bool:
        return self.issuer_raw == self.subject_raw


def parse_certificate(der: bytes) -> Certificate:
    """Parse one DER certificate (trailing bytes are an error here: callers split lists)."""
    try:
        parsed = asn1_x509.Certificate.load(der, strict=True)
        tbs = parsed["tbs_certificate"]
        issuer_raw, subject_raw = tbs["issuer"].dump(), tbs["subject"].dump()
        serial_raw = tbs["serial_number"].dump()
        version = tbs["version"].native
        with warnings.catch_warnings():  # e.g. a non-positive serial: iPXE accepts it, so do we
            warnings.simplefilter("ignore")
            crypto = cx509.load_der_x509_certificate(der)
        not_before = crypto.not_valid_before_utc.timestamp()
        not_after = crypto.not_valid_after_utc.timestamp()
        common_names = crypto.subject.get_attributes_for_oid(cx509.NameOID.COMMON_NAME)
        common_name = str(common_names[0].value) if common_names else None
        extensions = list(crypto.extensions)
    except IpxeError:
        raise
    except Exception:  # untrusted bytes: any parser complaint is a malformed certificate
        raise IpxeError(ERR_ASN1) from None
    if version not in ("v1", "v2", "v3"):
        raise IpxeError(ERR_INVALID_VERSION)
    cert = Certificate(
        der=der, crypto=crypto, issuer_raw=issuer_raw, subject_raw=subject_raw, serial_raw=serial_raw,
        common_name=common_name, dns_names=(), ip_addresses=(), subject_key_id=None,
        not_before=not_before, not_after=not_after, ca=False, path_len=0, key_usage_present=False,
        digital_signature=False, key_cert_sign=False, code_signing=False,
    )
    for extension in extensions:
        _apply_extension(cert, extension)
    return cert


def _apply_extension(cert: Certificate, extension: cx509.Extension[cx509.ExtensionType]) -> None:
    value = extension.value
    if isinstance(value, cx509.BasicConstraints):
        cert.ca = value.ca
        if value.ca:
            if value.path_length is not None and value.path_length < 0:
                raise IpxeError(ERR_INVALID_PATH_LEN)
            cert.path_len = UNLIMITED if value.path_length is None else value.path_length
    elif isinstance(value, cx509.KeyUsage):
        cert.key_usage_present = True
        cert.digital_signature = value.digital_signature
        cert.key_cert_sign = value.key_cert_sign
    elif isinstance(value, cx509.ExtendedKeyUsage):
        cert.code_signing = ExtendedKeyUsageOID.CODE_SIGNING in value
    elif isinstance(value, cx509.SubjectAlternativeName):
        cert.dns_names = tuple(value.get_values_for_type(cx509.DNSName))
        cert.ip_addresses = tuple(
            address for address in value.get_values_for_type(cx509.IPAddress)
            if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        )
    elif isinstance(value, cx509.SubjectKeyIdentifier):
        cert.subject_key_id = value.digest
    elif extension.critical and extension.oid not in _KNOWN_EXTENSIONS:
        raise IpxeError(ERR_UNSUPPORTED_EXTENSION)


def split_pem(data: bytes) -> list[bytes]:
    """The DER of every CERTIFICATE block in PEM text (other blocks are skipped)."""
    from asn1crypto import pem

    try:
        blocks = pem.unarmor(data, multiple=True)
        return [bytes(der) for kind, _headers, der in blocks if kind in ("CERTIFICATE", "X509 CERTIFICATE")]
    except Exception:  # malformed armour or Base64
        raise IpxeError(ERR_ASN1) from None


def certificates_in(data: bytes) -> list[Certificate]:
    """All certificates in an image: PEM (any number) or one DER certificate."""
    if b"-----BEGIN" in data:
        return [parse_certificate(der) for der in split_pem(data)]
    return [parse_certificate(data)]


# -- checks (x509_check_*) ----------------------------------------------------------------

def check_time(cert: Certificate, now: float) -> None:
    if cert.not_before > now + ERROR_MARGIN or cert.not_after < now - ERROR_MARGIN:
        raise IpxeError(ERR_EXPIRED)


def check_issuer(cert: Certificate, issuer: Certificate) -> None:
    """x509_check_issuer: names as raw DER, issuer a CA allowed to sign, then the signature."""
    if cert.issuer_raw != issuer.subject_raw:
        raise IpxeError(ERR_WRONG_ISSUER)
    if not issuer.ca:
        raise IpxeError(ERR_NOT_CA)
    if issuer.key_usage_present and not issuer.key_cert_sign:
        raise IpxeError(ERR_KEY_USAGE)
    try:
        cert.crypto.verify_directly_issued_by(issuer.crypto)
    except InvalidSignature:
        raise IpxeError(ERR_BAD_SIGNATURE) from None
    except (ValueError, TypeError, UnsupportedAlgorithm):  # key type and signature algorithm disagree
        raise IpxeError(ERR_ALGORITHM_MISMATCH) from None


def _dns_match(pattern: str, name: str) -> bool:
    """x509_check_dnsname: case-insensitive, a ``*.`` wildcard covers exactly one label."""
    pattern, name = pattern.lower(), name.lower()
    if pattern.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and rest == pattern[2:]
    return pattern == name


def check_name(cert: Certificate, name: str) -> None:
    """x509_check_name: the commonName, then subjectAltName DNS names and IP addresses."""
    if cert.common_name is not None and _dns_match(cert.common_name, name):
        return
    if any(_dns_match(dns, name) for dns in cert.dns_names):
        return
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None and address in cert.ip_addresses:
        return
    raise IpxeError(ERR_WRONG_NAME)


# -- chains (x509_auto_append, x509_validate, x509_validate_chain) -------------------------

def auto_append(chain: list[Certificate], candidates: Iterable[Certificate]) -> None:
    """Extend ``chain`` upwards with the issuers found (by raw subject) among ``candidates``."""
    pool = list(candidates)
    while chain:
        last = chain[-1]
        if last.self_issued:
            return
        issuer = next((cert for cert in pool if cert.subject_raw == last.issuer_raw and cert not in chain), None)
        if issuer is None:
            return
        chain.append(issuer)


def validate(cert: Certificate, issuer: Certificate | None, now: float, is_root: Callable[[Certificate], bool]) -> None:
    """x509_validate: a cached success stands; else time, then root, then the issuer's word."""
    if cert.valid:
        return
    check_time(cert, now)
    if is_root(cert):
        cert.valid = True
        cert.path_remaining = min(cert.path_len + 1, UNLIMITED)
        return
    if issuer is None:
        raise IpxeError(ERR_UNTRUSTED)
    check_issuer(cert, issuer)
    if issuer.path_remaining == 0:
        raise IpxeError(ERR_PATH_LEN)
    cert.path_remaining = min(issuer.path_remaining - 1, cert.path_len + 1)
    cert.valid = True


def validate_chain(chain: list[Certificate], now: float, is_root: Callable[[Certificate], bool]) -> None:
    """x509_validate_chain: the first certificate that stands alone anchors the ones below it.

    The error, when nothing anchors, is the last standalone attempt's (so an expired leaf
    under a good root says "Expired", a chain to an unknown root "Untrusted root").
    """
    error = IpxeError(ERR_EMPTY_CHAIN)
    for index, cert in enumerate(chain):
        try:
            validate(cert, None, now, is_root)
        except IpxeError as failure:
            error = failure
            continue
        for below in range(index - 1, -1, -1):
            validate(chain[below], chain[below + 1], now, is_root)
        return
    raise error
