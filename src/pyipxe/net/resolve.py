"""Name resolution the way iPXE's does it, with iPXE's errors.

Why: every URI host, ``nslookup`` and ``ping`` go through one resolver, and scripts see
its failures as iPXE error numbers (``${errno}`` after a failed ``chain``). iPXE asks the
DNS server from the ``dns`` setting (DHCP option 6, or ``set dns …``); so does pyipxe
whenever that setting exists — own mode, or after ``dhcp`` in host mode. Without it,
pyipxe falls back to the host's resolver (``getaddrinfo``: /etc/hosts, resolv.conf,
systemd-resolved), which is what a host-mode session on a workstation wants.

Rules (net/udp/dns.c): IP literals are answered at once; names without a dot get the
search suffixes (``dnssl``, else ``domain``); an IPv4 server is asked for A records, an
IPv6 server (``dns6``) for AAAA then A. Failures: no such name → ``Error 0x3e11613b``
(ENXIO "DNS name does not exist"), no answer in time → ``Connection timed out``.
dnspython does the wire work; it is imported only when a name needs a DNS query.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.settings import predefined as p
from pyipxe.settings.store import Fetched, Setting

# net/udp/dns.c
ERR_NO_RECORD = ErrorSite(ErrorClass.ENXIO, 0x1161)
ERR_NO_NAMESERVER = ErrorSite(ErrorClass.ENXIO, 0x1162)
ERR_TIMEOUT = ErrorSite(ErrorClass.ETIMEDOUT, 0x1160)
ERR_INVALID_NAME = ErrorSite(ErrorClass.EINVAL, 0x1160)

Address = IPv4Address | IPv6Address

# dns.c retransmits from 1/4 s doubling up to 10 s: about 15 s before ETIMEDOUT.
LIFETIME = 15.0


class SettingsSource(Protocol):
    def fetch(self, setting: Setting) -> Fetched | None: ...


def literal(host: str) -> Address | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _servers(settings: SettingsSource) -> list[str]:
    servers: list[str] = []
    found6 = settings.fetch(p.DNS6)
    if found6 is not None:
        data = found6.data
        servers += [str(IPv6Address(data[i:i + 16])) for i in range(0, len(data) - 15, 16)]
    found = settings.fetch(p.DNS)
    if found is not None:
        data = found.data
        servers += [str(IPv4Address(data[i:i + 4])) for i in range(0, len(data) - 3, 4) if any(data[i:i + 4])]
    return servers


def _search(settings: SettingsSource, host: str) -> list[str]:
    if "." in host:
        return []
    found = settings.fetch(p.DNSSL)
    if found is not None:
        try:
            return [name for name in p.DNSSL.type.format(found.data).split() if name] if p.DNSSL.type else []
        except (ValueError, IpxeError):
            return []
    domain = settings.fetch(p.DOMAIN)
    if domain is not None and domain.data:
        return [domain.data.decode(errors="replace").rstrip(".")]
    return []


async def _ask_dns(host: str, servers: list[str], search: list[str]) -> list[Address]:
    import dns.asyncresolver
    import dns.exception
    import dns.name
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = servers
    resolver.timeout = 2.0
    resolver.lifetime = LIFETIME
    types = ["AAAA", "A"] if ":" in servers[0] else ["A"]
    names = [f"{host}.{suffix}" for suffix in search] + [host]
    answered = False  # iPXE ignores the rcode: any reply without records means "no such name"
    try:
        for name in names:
            for rdtype in types:
                try:
                    answer = await resolver.resolve(name, rdtype, search=False, raise_on_no_answer=True)
                except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                    answered = True
                    continue
                except dns.resolver.NoNameservers as error:  # REFUSED, SERVFAIL… or unreachable
                    errors = error.kwargs.get("errors") or []
                    answered = answered or any(entry[4] is not None for entry in errors)
                    continue
                return [ipaddress.ip_address(record.address) for record in answer]
    except dns.exception.Timeout:
        raise IpxeError(ERR_TIMEOUT) from None
    except (dns.name.NameTooLong, dns.name.EmptyLabel, dns.name.LabelTooLong):
        raise IpxeError(ERR_INVALID_NAME) from None
    raise IpxeError(ERR_NO_RECORD if answered else ERR_TIMEOUT)


async def _ask_system(host: str) -> list[Address]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), LIFETIME)
    except TimeoutError:
        raise IpxeError(ERR_TIMEOUT) from None
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise IpxeError(ERR_TIMEOUT) from None
        raise IpxeError(ERR_NO_RECORD) from None
    except (UnicodeError, ValueError):
        raise IpxeError(ERR_INVALID_NAME) from None
    found: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
    if not found:
        raise IpxeError(ERR_NO_RECORD)
    return found


async def resolve(host: str, settings: SettingsSource) -> list[IPv4Address | IPv6Address]:
    """Addresses of ``host``: a literal, else the ``dns`` servers' answer, else the host's resolver."""
    address = literal(host)
    if address is not None:
        return [address]
    if not host or len(host) > 253:
        raise IpxeError(ERR_INVALID_NAME)
    servers = _servers(settings)
    if servers:
        return await _ask_dns(host, servers, _search(settings, host))
    return await _ask_system(host)
