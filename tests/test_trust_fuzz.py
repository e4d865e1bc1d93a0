"""Untrusted DER never escapes as anything but an iPXE error (hypothesis on CMS and X.509).

A signature and its certificates arrive from the network before anything is trusted, so
every parser on that path must turn any byte string — truncated, bit-flipped, spliced —
into an :class:`IpxeError` (or, for the unharmed input, success).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.trust.pki import Pki, sign
from pyipxe.errors import IpxeError
from pyipxe.trust import cms
from pyipxe.trust.x509 import Certificate, certificates_in, parse_certificate

IMAGE = b"#!ipxe\necho fuzz\n"


class Pool:
    """A minimal store: caches certificates, trusts one root by fingerprint."""

    def __init__(self, root: bytes) -> None:
        self.certs: list[Certificate] = []
        self.root = root

    def cache(self, cert: Certificate) -> Certificate:
        self.certs.append(cert)
        return cert

    def candidates(self) -> Sequence[Certificate]:
        return self.certs

    def is_root(self, cert: Certificate) -> bool:
        return cert.der == self.root


class Content:
    def digest(self, algorithm: str) -> bytes:
        import hashlib

        return hashlib.new(algorithm, IMAGE).digest()

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        return IMAGE[offset:] if size is None else IMAGE[offset:offset + size]


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("trust-fuzz")
    pki = Pki(directory)
    root = pki.issue("root", "fuzz root", None, ca=True)
    signer = pki.issue("signer", "fuzz signer", root, ec_key=True)
    image = directory / "image"
    image.write_bytes(IMAGE)
    from cryptography.hazmat.primitives.serialization import Encoding

    return {
        "noattr": sign(image, directory / "noattr.sig", signer, root).read_bytes(),
        "attr": sign(image, directory / "attr.sig", signer, root, attributes=True).read_bytes(),
        "cert": signer.cert.public_bytes(Encoding.DER),
        "pem": signer.pem.read_bytes() + root.pem.read_bytes(),
        "root": root.cert.public_bytes(Encoding.DER),
    }


def check_signature(data: bytes, root: bytes) -> None:
    """Parse and verify; only IpxeError may come out."""
    pool = Pool(root)
    try:
        parsed = cms.parse_signature(data, pool)
        asyncio.run(cms.verify(parsed, Content(), None, 2_000_000_000 - 10**8, pool))
    except IpxeError:
        pass


def test_the_unharmed_signatures_verify(material: dict[str, bytes]) -> None:
    for kind in ("noattr", "attr"):
        pool = Pool(material["root"])
        parsed = cms.parse_signature(material[kind], pool)
        asyncio.run(cms.verify(parsed, Content(), "fuzz signer", parsed.signers[0].cert.not_before + 3600, pool))


def test_every_truncation_of_a_signature_is_refused(material: dict[str, bytes]) -> None:
    data = material["noattr"]
    for length in range(len(data)):
        with pytest.raises(IpxeError):
            cms.parse_signature(data[:length], Pool(material["root"]))


def test_every_truncation_of_a_certificate_is_refused(material: dict[str, bytes]) -> None:
    data = material["cert"]
    for length in range(len(data)):
        with pytest.raises(IpxeError):
            parse_certificate(data[:length])


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    for position, xor in changes:
        buffer[position % len(buffer)] ^= xor
    return bytes(buffer)


@FUZZ
@given(changes=st.lists(mutation, min_size=1, max_size=4), kind=st.sampled_from(["noattr", "attr"]))
def test_mutated_signatures_never_raise_anything_else(material: dict[str, bytes], changes: list[tuple[int, int]],
                                                      kind: str) -> None:
    check_signature(mutate(material[kind], changes), material["root"])


@FUZZ
@given(cut=st.integers(min_value=0), insert=st.binary(max_size=40))
def test_spliced_signatures_never_raise_anything_else(material: dict[str, bytes], cut: int, insert: bytes) -> None:
    data = material["attr"]
    cut %= len(data)
    check_signature(data[:cut] + insert + data[cut:], material["root"])


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_are_not_signatures(material: dict[str, bytes], data: bytes) -> None:
    check_signature(data, material["root"])
    check_signature(b"\x30\x82" + len(data).to_bytes(2, "big") + data, material["root"])


@FUZZ
@given(changes=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_certificates_never_raise_anything_else(material: dict[str, bytes],
                                                        changes: list[tuple[int, int]]) -> None:
    for data in (mutate(material["cert"], changes), mutate(material["pem"], changes)):
        with contextlib.suppress(IpxeError):
            certificates_in(data)


def test_pem_signature_armour_that_is_broken(tmp_path: Path) -> None:
    for text in (b"-----BEGIN PKCS7-----\n!!!!\n-----END PKCS7-----\n", b"-----BEGIN PKCS7-----\nAAAA\n"):
        with pytest.raises(IpxeError) as failure:
            cms.parse_signature(text, Pool(b""))
        assert failure.value.code("pcbios") == 0x3C2AE103
