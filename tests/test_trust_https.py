"""HTTPS client certificates against a real nginx that requires one (issue 7).

Debian's nginx runs in a NetLab switch namespace with tests/fixtures/trust/nginx.conf
(``ssl_verify_client on``); this checkout's ``pyipxe run`` runs in the client namespace.
With ``--client-cert``/``--client-key``, or with the ``cert``/``privkey`` settings in DER
as iPXE takes them, the download works; without, nginx answers 400 and pyipxe fails the
way iPXE does for any other 4xx. The same server then delivers a signed script that is
verified and chained under ``imgtrust``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from fixtures.trust.pki import Pair, Pki, sign
from netlab import NetLab, tool

FIXTURES = Path(__file__).parent / "fixtures" / "trust"
SERVER = "10.77.0.1"
SCRIPT = b"#!ipxe\necho fetched over mutual TLS\n"


@dataclass
class Site:
    lab: NetLab
    state: Path
    root: Pair
    client: Pair
    stranger: Pair

    def run(self, script: str, *options: str) -> subprocess.CompletedProcess[str]:
        path = self.lab.workdir / "test.ipxe"
        path.write_text(script)
        return self.lab.pyipxe(["run", "--platform", "pcbios", "--no-system-trust", "--trust", str(self.root.pem),
                                *options, str(path)], timeout=60)

    def access_log(self) -> list[str]:
        return (self.state / "access.log").read_text().splitlines()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        state, www = lab.workdir / "nginx", lab.workdir / "www"
        state.mkdir()
        www.mkdir()
        pki = Pki(lab.workdir / "pki")
        root = pki.issue("root", "pyipxe mTLS root", None, ca=True)
        pki.issue("server", SERVER, root, code_signing=False, server=True, alt_names=(SERVER,))
        client = pki.issue("client", "client.pyipxe.test", root, code_signing=False, client=True)
        other_root = pki.issue("other-root", "not the client CA", None, ca=True)
        stranger = pki.issue("stranger", "stranger.pyipxe.test", other_root, code_signing=False, client=True)
        signer = pki.issue("signer", "boot.pyipxe.test", root)
        for name in ("server.pem", "server.key"):
            (state / name).write_bytes((pki.dir / name).read_bytes())
        (state / "clientca.pem").write_bytes(root.pem.read_bytes())
        (www / "boot.ipxe").write_bytes(SCRIPT)
        sign(www / "boot.ipxe", www / "boot.sig", signer)
        os.chmod(lab.workdir, 0o755)  # nginx workers run as www-data
        for path in (state, www, *www.iterdir()):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        text = (FIXTURES / "nginx.conf").read_text()
        config = state / "nginx.conf"
        config.write_text(text.replace("@DIR@", str(state)).replace("@ROOT@", str(www)).replace("@LISTEN@", SERVER))
        lab.spawn(lab.server, [tool("nginx"), "-c", str(config), "-p", str(state), "-e", "stderr"], log="nginx.log")
        lab.wait_listening(lab.server, 443)
        yield Site(lab, state, root, client, stranger)


def colons(data: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in data)


def test_a_client_certificate_opens_the_door(site: Site) -> None:
    run = site.run(f"#!ipxe\nchain https://{SERVER}/boot.ipxe\n", "-v",
                   "--client-cert", str(site.client.pem), "--client-key", str(site.client.key_pem))
    assert run.stdout.splitlines() == [f"https://{SERVER}/boot.ipxe... ok", "fetched over mutual TLS"]
    assert run.returncode == 0
    assert "TLSv1.3" in run.stderr  # -v shows the negotiated version and cipher (the HTTP driver's log)
    assert site.access_log()[-1] == "/boot.ipxe|200|TLSv1.3|SUCCESS|CN=client.pyipxe.test"


def test_without_a_client_certificate_nginx_says_400(site: Site) -> None:
    for options in ((), ("--client-cert", str(site.stranger.pem), "--client-key", str(site.stranger.key_pem))):
        run = site.run(f"#!ipxe\nimgfetch https://{SERVER}/boot.ipxe || echo refused ${{errno}}\n", *options)
        assert run.stdout.splitlines() == [
            f"https://{SERVER}/boot.ipxe... HTTP 4xx Client Error (https://ipxe.org/1d0c6439)",
            "refused 0x1d0c6439",
        ]
    log = site.access_log()
    assert log[-2].startswith("/boot.ipxe|400|TLSv1.3|NONE|")
    assert log[-1].startswith("/boot.ipxe|400|TLSv1.3|FAILED:")


def test_the_cert_and_privkey_settings_as_ipxe_names_them(site: Site) -> None:
    key_der = site.client.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    cert_der = site.client.cert.public_bytes(serialization.Encoding.DER)
    run = site.run(f"#!ipxe\nchain https://{SERVER}/boot.ipxe\n",
                   "--set", f"cert={colons(cert_der)}", "--set", f"privkey={colons(key_der)}")
    assert run.stdout.splitlines() == [f"https://{SERVER}/boot.ipxe... ok", "fetched over mutual TLS"]
    # the settings can also arrive later, from the script itself (iPXE re-applies them)
    run = site.run(f"#!ipxe\nset cert {colons(cert_der)}\nset privkey {colons(key_der)}\n"
                   f"imgfetch https://{SERVER}/boot.ipxe\nimgstat\n")
    assert run.stdout.splitlines() == [f"https://{SERVER}/boot.ipxe... ok", f"boot.ipxe : {len(SCRIPT)} bytes [script]"]


def test_a_signed_script_over_mutual_tls_under_a_trust_requirement(site: Site) -> None:
    run = site.run(f"#!ipxe\nimgtrust --permanent\nimgverify https://{SERVER}/boot.ipxe https://{SERVER}/boot.sig\n"
                   "chain boot.ipxe\n",
                   "--client-cert", str(site.client.pem), "--client-key", str(site.client.key_pem))
    assert run.stdout.splitlines() == [f"https://{SERVER}/boot.ipxe... ok", f"https://{SERVER}/boot.sig... ok",
                                       "fetched over mutual TLS"]
    assert run.returncode == 0
