"""A session's trust: iPXE's certificate store, its root fingerprints, the HTTPS client identity.

Why one object per session: iPXE keeps these as globals (crypto/certstore.c,
crypto/rootcert.c, crypto/privkey.c); pyipxe keeps them in the session's download
environment (``env.state["pyipxe.trust"]``), so two sessions in one process never share
trust. :func:`install` runs at start-up, after ``--set`` presets; :func:`session` finds
(or, for contexts built without the runner, creates) the store.

Trusted roots, by SHA-256 fingerprint as iPXE checks them:
- the ``trust`` setting (concatenated 32-byte fingerprints), read **once, at start-up**
  as iPXE reads it — a downloaded script cannot widen trust by setting it; when unset,
  iPXE's own root CA (which pyipxe does not ship, so it only matters if a chain carries it);
- every certificate in the ``--trust FILE`` PEM files (also stored, [PERMANENT], so a
  signature need not carry the root);
- the system's TLS roots only when asked (``install(system_for_signatures=True)``): a
  public CA's code-signing certificate is not a reason to boot something.

The client identity for HTTPS is ``--client-cert``/``--client-key`` unless the ``cert``
and ``privkey`` settings (DER, as iPXE takes them) say otherwise; those are written as PEM
to private temporary files, because Python's ssl loads keys only from files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import sys
import time
import weakref
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyipxe.errors import ErrorSite, IpxeError
from pyipxe.settings import predefined

if TYPE_CHECKING:
    from pyipxe.net.transfer import FetchEnv
    from pyipxe.script.context import Context
    from pyipxe.settings.store import SettingsBlock, SettingsTree
    from pyipxe.trust.x509 import Certificate

STATE_KEY = "pyipxe.trust"
#: crypto/rootcert.c: the iPXE root CA ("ca.ipxe.org"), trusted when ``trust`` is unset
IPXE_ROOT = bytes.fromhex("9faf717b7f8ca2f93c256c79f8ac5591895d66d1ff3bee6397a70d29c65eed1a")
#: cached (neither permanent nor explicit) certificates kept, least recently used dropped first
CACHE_LIMIT = 64
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


class TrustStore:
    def __init__(self, settings: SettingsTree, env: FetchEnv, *, system_for_signatures: bool = False) -> None:
        self.settings = settings
        self.env = env
        self.system_for_signatures = system_for_signatures
        #: iPXE's certstore: most recently used first
        self.certs: list[Certificate] = []
        found = settings.fetch(predefined.TRUST)
        raw = found.data if found is not None else b""
        self.fingerprints: set[bytes] = {raw[i:i + 32] for i in range(0, len(raw) - 31, 32)} if raw else {IPXE_ROOT}
        self._roots_loaded = False
        self._system: list[Certificate] | None = None
        self.cli_cert, self.cli_key = env.tls.client_cert, env.tls.client_key
        self._identity_seen: tuple[bytes | None, bytes | None] = (None, None)
        self._private_dir: str | None = None

    # -- the certificate store ---------------------------------------------------------------
    def _load_roots(self) -> None:
        """The ``--trust`` files, parsed on first use (their paths never change in a session)."""
        if self._roots_loaded:
            return
        self._roots_loaded = True
        from pyipxe.trust.x509 import certificates_in

        for path in self.env.tls.trust_files:
            try:
                roots = certificates_in(Path(path).read_bytes())
            except (OSError, IpxeError) as error:
                print(f"pyipxe: --trust {path}: no certificates read ({error})", file=sys.stderr)
                continue
            for root in roots:
                stored = self.cache(root)
                stored.permanent = True
                self.fingerprints.add(stored.sha256)

    def cache(self, cert: Certificate) -> Certificate:
        """certstore_add/certstore_find: one object per certificate, moved to the front."""
        for index, stored in enumerate(self.certs):
            if stored.der == cert.der:
                self.certs.insert(0, self.certs.pop(index))
                return stored
        self.certs.insert(0, cert)
        disposable = [c for c in self.certs if not (c.permanent or c.explicit)]
        for old in disposable[CACHE_LIMIT:]:
            self.certs.remove(old)
        return cert

    def remove(self, cert: Certificate) -> None:
        """certstore_del: permanent certificates stay."""
        if not cert.permanent and cert in self.certs:
            self.certs.remove(cert)

    def listed(self) -> list[Certificate]:
        self._load_roots()
        return list(self.certs)

    def candidates(self) -> Sequence[Certificate]:
        """Where chains are completed from: the store, then (if asked) the system's roots."""
        self._load_roots()
        return [*self.certs, *self._system_roots()]

    def is_root(self, cert: Certificate) -> bool:
        self._load_roots()
        return cert.sha256 in self.fingerprints or any(cert.der == root.der for root in self._system_roots())

    def _system_roots(self) -> list[Certificate]:
        if not self.system_for_signatures:
            return []
        if self._system is None:
            import ssl

            from pyipxe.trust.x509 import parse_certificate, split_pem

            paths = ssl.get_default_verify_paths()
            self._system = []
            for bundle in (paths.cafile, paths.openssl_cafile, *_SYSTEM_BUNDLES):
                if bundle and os.path.isfile(bundle):
                    for der in split_pem(Path(bundle).read_bytes()):
                        with contextlib.suppress(IpxeError):
                            self._system.append(parse_certificate(der))
                    break
        return self._system

    def now(self) -> float:
        """The session's clock: ``unixtime`` (a script may set it, as in iPXE)."""
        found = self.settings.fetch(predefined.UNIXTIME)
        if found is not None and len(found.data) == 4:
            return float(int.from_bytes(found.data, "big"))
        return time.time()

    # -- cross-signing certificates (net/validator.c) -----------------------------------------
    def cross_source(self) -> str | None:
        """The ``crosscert`` base URI. Unlike iPXE, nothing is fetched from ca.ipxe.org unless
        ``crosscert`` is set: a Linux tool should not phone a third party by default."""
        found = self.settings.fetch(predefined.CROSSCERT)
        text = found.data.decode("utf-8", "replace") if found is not None else ""
        return text or None

    async def fetch_cross(self, issuer_raw: bytes) -> list[Certificate]:
        """``<crosscert>/<crc32 of issuer DN>.der?subject=<base64 issuer DN>`` → certificateSet."""
        from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]

        from pyipxe.net.transfer import FetchRequest, fetch
        from pyipxe.trust.x509 import ERR_ASN1, parse_certificate
        from pyipxe.uri import parse_uri

        base = self.cross_source()
        assert base is not None
        crc = zlib.crc32(issuer_raw) ^ 0xFFFFFFFF  # iPXE's crc32_le(~0, …) has no final inversion
        uri = f"{base}/{crc:08x}.der?subject={base64.b64encode(issuer_raw).decode()}"
        self.env.log(f"trust: fetching cross-signing certificates from {uri}")
        sink = _BytesSink()
        await fetch(FetchRequest(parse_uri(uri)), sink, self.env)
        try:
            ders = [choice.chosen.dump() for choice in asn1_cms.CertificateSet.load(bytes(sink.data))
                    if choice.name == "certificate"]
        except Exception:  # untrusted download
            raise IpxeError(ERR_ASN1) from None
        return [self.cache(parse_certificate(der)) for der in ders]

    # -- the HTTPS client identity (crypto/privkey.c, certstore.c's "cert" setting) -----------
    def apply_settings(self, block: SettingsBlock | None = None) -> None:
        """Settings applicator: re-derive the client identity when ``cert``/``privkey`` change."""
        seen = (_raw(self.settings, predefined.CERT), _raw(self.settings, predefined.PRIVKEY))
        if seen == self._identity_seen:
            return
        self._identity_seen = seen
        tls = self.env.tls
        if seen == (None, None):
            tls.client_cert, tls.client_key = self.cli_cert, self.cli_key
            return
        try:
            tls.client_cert, tls.client_key = self._identity_files(*seen)
        except (ValueError, TypeError, OSError, IpxeError) as error:  # iPXE: "leave as an unusable certificate"
            self.env.log(f"tls: cert/privkey settings unusable ({error}); using the command line's identity")
            tls.client_cert, tls.client_key = self.cli_cert, self.cli_key

    def _identity_files(self, cert_der: bytes | None, key_der: bytes | None) -> tuple[str, str]:
        from cryptography import x509 as cx509
        from cryptography.hazmat.primitives import serialization as ser

        key: Any
        if key_der is not None:
            key = ser.load_der_private_key(key_der, password=None)
        else:
            key_path = self.cli_key or self.cli_cert
            if key_path is None:
                raise ValueError("a cert setting but no private key")
            key = ser.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        spki = key.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
        offered: list[cx509.Certificate] = []
        if cert_der is not None:
            offered.append(cx509.load_der_x509_certificate(cert_der))
        if self.cli_cert is not None:
            offered.extend(cx509.load_pem_x509_certificates(Path(self.cli_cert).read_bytes()))
        offered.extend(stored.crypto for stored in self.certs if stored.explicit)
        # certstore_find_key: the certificate presented is one whose public key is the key's
        matching = [c for c in offered
                    if c.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo) == spki]
        if not matching:
            raise ValueError("no certificate matches the private key")
        chain = [matching[0], *(c for c in offered if c is not matching[0])]
        cert_pem = b"".join(c.public_bytes(ser.Encoding.PEM) for c in chain)
        key_pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        return self._private_file(cert_pem, ".crt"), self._private_file(key_pem, ".key")

    def _private_file(self, data: bytes, suffix: str) -> str:
        """A 0600 file in a 0700 directory removed when the session goes; named by content,
        so an unchanged identity keeps its path (and the HTTP driver its TLS context)."""
        if self._private_dir is None:
            import tempfile

            self._private_dir = tempfile.mkdtemp(prefix="pyipxe-tls-")
            weakref.finalize(self, _remove_tree, self._private_dir)
        path = os.path.join(self._private_dir, hashlib.sha256(data).hexdigest()[:32] + suffix)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        return path


class _BytesSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def set_length(self, length: int) -> None:
        if length > 1 << 20:  # a certificate set, not an image
            raise IpxeError(_malformed())

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if offset + len(data) > 1 << 20:
            raise IpxeError(_malformed())
        if len(self.data) < offset + len(data):
            self.data.extend(bytes(offset + len(data) - len(self.data)))
        self.data[offset:offset + len(data)] = data


def _malformed() -> ErrorSite:
    """A cross-signing answer too big to be a certificate set is as bad as a malformed one."""
    from pyipxe.trust.x509 import ERR_ASN1

    return ERR_ASN1


def _raw(settings: SettingsTree, setting: Any) -> bytes | None:
    found = settings.fetch(setting)
    return bytes(found.data) if found is not None and found.data else None


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def install(ctx: Context, *, system_for_signatures: bool = False) -> TrustStore:
    """Start-up: snapshot ``trust``, remember the command line's identity, watch ``cert``/``privkey``."""
    env = ctx.fetch_env
    assert env is not None, "session has no download environment"
    store = TrustStore(ctx.settings, env, system_for_signatures=system_for_signatures)
    env.state[STATE_KEY] = store
    ctx.settings.applicators.append(store.apply_settings)
    store.apply_settings()
    return store


def session(ctx: Context) -> TrustStore:
    env = ctx.fetch_env
    assert env is not None, "session has no download environment"
    store = env.state.get(STATE_KEY)
    if isinstance(store, TrustStore):
        return store
    return install(ctx)
