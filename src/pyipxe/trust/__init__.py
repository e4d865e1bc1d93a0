"""Trust: certificates, their store, chain validation, CMS signatures (reference §8).

Why a package of its own: ``imgverify``, the certificate commands and HTTPS client
authentication all lean on the same session state (iPXE's certificate store and root
fingerprints), and none of it belongs to the image or network layers.

Rules of this package:
- No hand-written cryptography and no hand-written ASN.1: asn1crypto parses (CMS, the raw
  bytes of names), cryptography verifies signatures and loads keys.
- Every failure is an :class:`pyipxe.errors.IpxeError` with the number iPXE's crypto code
  (x509.c, cms.c, asn1.c, rsa.c) would give; untrusted input never raises anything else.
- ``x509`` knows certificates and chains, ``cms`` signatures, ``store`` the per-session
  store and client identity; nothing here prints.
"""
