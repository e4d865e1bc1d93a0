"""X.509 error numbers (crypto/x509.c), in a module that loads no cryptography.

Why separate: the HTTPS driver reports certificate failures with these numbers too, and
must not pull in the certificate machinery (cryptography, asn1crypto) to do so.
"""

from __future__ import annotations

from pyipxe.errors import ErrorClass, ErrorSite

C = ErrorClass

# crypto/x509.c (ERRFILE_x509 = other-category file 0x16): its EINFO_* uniqifiers
ERR_UNSUPPORTED_EXTENSION = ErrorSite(C.ENOTSUP, 0x16E2)  # "Unsupported extension" (a critical one)
ERR_ALGORITHM_MISMATCH = ErrorSite(C.EINVAL, 0x16E4)  # "Signature algorithm mismatch"
ERR_INVALID_PATH_LEN = ErrorSite(C.EINVAL, 0x16E5)  # "Invalid pathLenConstraint"
ERR_INVALID_VERSION = ErrorSite(C.EINVAL, 0x16E6)  # "Invalid version"
ERR_WRONG_ISSUER = ErrorSite(C.EACCES, 0x16E1)  # "Wrong issuer"
ERR_NOT_CA = ErrorSite(C.EACCES, 0x16E2)  # "Not a CA certificate"
ERR_KEY_USAGE = ErrorSite(C.EACCES, 0x16E3)  # "Incorrect key usage" (issuer without keyCertSign)
ERR_EXPIRED = ErrorSite(C.EACCES, 0x16E4)  # "Expired (or not yet valid)"
ERR_PATH_LEN = ErrorSite(C.EACCES, 0x16E5)  # "Maximum path length exceeded"
ERR_UNTRUSTED = ErrorSite(C.EACCES, 0x16E6)  # "Untrusted root certificate"
ERR_EMPTY_CHAIN = ErrorSite(C.EACCES, 0x16E8)  # "Empty certificate chain"
ERR_WRONG_NAME = ErrorSite(C.EACCES, 0x16EA)  # "Incorrect certificate name"
# No certificate in the chain could be used at all (x509.c: EACCES_USELESS)
ERR_USELESS = ErrorSite(C.EACCES, 0x16EB)  # "No usable certificates"
