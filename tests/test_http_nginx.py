"""pyipxe's HTTP(S) driver against a real nginx in a NetLab, plus fault injectors.

The server is Debian's nginx, started by this module in the lab's switch namespace with
tests/fixtures/http/nginx.conf. Its certificates (a test CA, a good certificate, one from
an untrusted CA, an expired one) and its htpasswd are made here at test time. The client
runs in-process: one thread joins the client namespace (``setns``) and runs an event
loop, so every fetch is the real driver on real sockets, and one FetchEnv (hence one
keep-alive pool) lives across tests. Every download is checked by its SHA-256.

Fault injectors (not interop peers): tests/relay_tcp.py cuts connections to nginx, a
second throttled nginx is killed mid-transfer, and tiny scripted servers send garbage,
Digest challenges and Retry-After.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime
import hashlib
import ipaddress
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netlab import NetLab, tool
from pyipxe.errors import IpxeError
from pyipxe.net import http as driver
from pyipxe.net.transfer import Address, FetchEnv, FetchRequest, FetchResult, RequestParams, TlsConfig
from pyipxe.proto import http as proto
from pyipxe.uri import format_uri, parse_uri
from relay_tcp import CuttingRelay

FIXTURES = Path(__file__).parent / "fixtures" / "http"
SERVER = "10.77.0.1"
NAMES = {"pyipxe.test": SERVER, "www.pyipxe.test": SERVER, "wrong.test": SERVER}
T = TypeVar("T")


# -- the client namespace ----------------------------------------------------------------

class NamespaceLoop:
    """An event loop on a thread that lives in another network namespace."""

    def __init__(self, namespace: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._error: BaseException | None = None
        ready = threading.Event()

        def main() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET, this thread only
                    raise OSError(ctypes.get_errno(), "setns")
                os.close(fd)
            except BaseException as error:
                self._error = error
                ready.set()
                return
            asyncio.set_event_loop(self.loop)
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        ready.wait(10)
        if self._error is not None:
            raise self._error

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 90) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class FileSink:
    """Writes at offsets into a file and hashes it at the end (the driver-level sink)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.length: int | None = None
        self.writes = 0

    def set_length(self, length: int) -> None:
        self.length = length

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        self.writes += 1

    def sha256(self) -> str:
        os.close(self.fd)
        digest = hashlib.sha256()
        with open(self.path, "rb") as data:
            while chunk := data.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()


@dataclass
class Site:
    lab: NetLab
    client: NamespaceLoop
    root: Path
    state: Path
    digests: dict[str, str]
    env: FetchEnv
    messages: list[str] = field(default_factory=list)
    serial: int = 0

    def fetch(self, url: str, *, params: RequestParams | None = None, env: FetchEnv | None = None,
              timeout: float = 90) -> tuple[FetchResult, FileSink]:
        self.serial += 1
        sink = FileSink(self.lab.workdir / f"download-{self.serial}")
        result = self.client.run(driver.fetch(FetchRequest(parse_uri(url), params), sink, env or self.env), timeout)
        return result, sink

    def error(self, url: str, **kwargs: Any) -> IpxeError:
        with pytest.raises(IpxeError) as caught:
            self.fetch(url, **kwargs)
        return caught.value

    def log_lines(self) -> list[list[str]]:
        text = (self.state / "access.log").read_text(errors="replace")
        return [line.split("|") for line in text.splitlines()]

    def requests_for(self, path: str) -> list[list[str]]:
        return [line for line in self.log_lines() if line[2] == path]


def code(error: IpxeError) -> str:
    return f"{error.code('pcbios'):08x}"


# -- certificates ------------------------------------------------------------------------------

def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[str], *,
              expired: bool = False) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired \
        else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_pair(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    (directory / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# -- fixtures ----------------------------------------------------------------------------------

def render(template: str, state: Path, root: Path) -> Path:
    text = (FIXTURES / template).read_text()
    text = text.replace("@DIR@", str(state)).replace("@ROOT@", str(root)).replace("@LISTEN@", SERVER)
    path = state / template
    path.write_text(text)
    return path


def start_nginx(lab: NetLab, config: Path, ports: list[int], log: str) -> subprocess.Popen[bytes]:
    process = lab.spawn(lab.server, [tool("nginx"), "-c", str(config), "-p", str(config.parent), "-e", "stderr"],
                        log=log)
    for port in ports:
        lab.wait_listening(lab.server, port)
    return process


async def resolve(name: str) -> list[Address]:
    if name in NAMES:
        return [ipaddress.ip_address(NAMES[name])]
    raise IpxeError(driver.ERR_TCP_RESET)  # never used: the tests only use the names above


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        state = lab.workdir / "nginx"
        root = lab.workdir / "www"
        for directory in (state, root / "files", root / "secret"):
            directory.mkdir(parents=True)
        files = {"files/small.bin": os.urandom(100_000), "files/big.bin": os.urandom(12 << 20),
                 "files/empty.bin": b"", "secret/data.bin": os.urandom(5000)}
        for name, data in files.items():
            (root / name).write_bytes(data)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        ca_key, ca = make_ca("pyipxe test CA")
        other_key, other_ca = make_ca("nobody trusts this CA")
        (state / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        write_pair(state, "good", *make_leaf(ca_key, ca, ["pyipxe.test", "www.pyipxe.test", SERVER]))
        write_pair(state, "untrusted", *make_leaf(other_key, other_ca, ["pyipxe.test"]))
        write_pair(state, "expired", *make_leaf(ca_key, ca, ["pyipxe.test"], expired=True))
        hashed = subprocess.run([tool("openssl"), "passwd", "-apr1", "s3cret pw"], check=True, text=True,
                                capture_output=True).stdout.strip()
        (state / "htpasswd").write_text(f"alice:{hashed}\n")
        os.chmod(lab.workdir, 0o755)  # nginx workers run as www-data
        for path in (lab.workdir, state, root, root / "files", root / "secret", *root.rglob("*")):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        config = render("nginx.conf", state, root)
        start_nginx(lab, config, [80, 443, 8444, 8445], "nginx.log")
        client = NamespaceLoop(lab.hosts["cli"].ns)
        messages: list[str] = []
        env = FetchEnv(resolve=resolve, tls=TlsConfig(trust_files=[str(state / "ca.pem")], system_roots=False),
                       log=messages.append)
        try:
            yield Site(lab, client, root, state, digests, env, messages)
        finally:
            client.close()


def fresh_env(site: Site, **tls: Any) -> FetchEnv:
    """An env with its own (empty) connection pool, so a test sees new connections."""
    settings = {"trust_files": [str(site.state / "ca.pem")], "system_roots": False, **tls}
    return FetchEnv(resolve=resolve, tls=TlsConfig(**settings), log=site.messages.append)


# -- plain HTTP ----------------------------------------------------------------------------------

def test_small_and_big_files(site: Site) -> None:
    for name in ("files/small.bin", "files/big.bin", "files/empty.bin"):
        url = f"http://{SERVER}/{name}"
        result, sink = site.fetch(url)
        assert sink.sha256() == site.digests[name]
        assert result.length == sink.length == (site.root / name).stat().st_size
        assert format_uri(result.uri) == url


def test_request_is_what_ipxe_sends(site: Site) -> None:
    site.fetch(f"http://{SERVER}/files/small.bin?x=1%202")
    site.fetch(f"http://{SERVER}:80/files/small.bin")
    plain, with_port = site.requests_for("/files/small.bin?x=1%202")[-1], site.requests_for("/files/small.bin")[-1]
    assert plain[1] == "GET" and plain[6] == SERVER  # Host without a port when the URI has none
    assert with_port[6] == f"{SERVER}:80"  # … and with it when it has one
    assert plain[7].startswith("iPXE/") and plain[8] == "keep-alive"
    assert plain[9] == "-" and plain[11] == "-"  # no Range, no Authorization


def test_keep_alive_reuses_one_connection(site: Site) -> None:
    env = fresh_env(site)
    for _ in range(3):
        _, sink = site.fetch(f"http://{SERVER}/files/small.bin?keepalive", env=env)
        assert sink.sha256() == site.digests["files/small.bin"]
    lines = site.requests_for("/files/small.bin?keepalive")
    assert len({line[4] for line in lines}) == 1  # one $connection
    assert [line[5] for line in lines] == ["1", "2", "3"]  # $connection_requests


def test_status_errors_have_ipxe_numbers(site: Site) -> None:
    expected = {"/files/missing": ("2d0c613b", "Not found"), "/status/403": ("410c613c", "Operation not permitted"),
                "/status/418": ("1d0c6439", "HTTP 4xx Client Error"), "/status/500": ("1d0c6539", "HTTP 5xx Server Error"),
                "/redirect/nowhere": ("4f0c6001", "Error 0x4f0c6001")}
    for path, (number, text) in expected.items():
        error = site.error(f"http://{SERVER}{path}")
        assert code(error) == number, path
        assert error.message("pcbios") == f"{text} (https://ipxe.org/{number})"


def test_connection_refused_is_a_reset(site: Site) -> None:
    assert code(site.error(f"http://{SERVER}:1/")) == "0f0a6039"


# -- redirects ---------------------------------------------------------------------------------

def test_redirects_relative_absolute_and_chains(site: Site) -> None:
    for path, final in (("/redirect/relative", "/files/small.bin"), ("/redirect/absolute", "/files/small.bin"),
                        ("/redirect/chain1", "/files/big.bin")):
        result, sink = site.fetch(f"http://{SERVER}{path}")
        assert format_uri(result.uri) == f"http://{SERVER}{final}"
        assert sink.sha256() == site.digests[final[1:]]


def test_redirect_loop_stops(site: Site) -> None:
    error = site.error(f"http://{SERVER}/redirect/loop", timeout=120)
    assert error.site == proto.ERR_REDIRECT_LOOP
    assert len(site.requests_for("/redirect/loop")) == proto.MAX_REDIRECTS + 1


# -- authentication --------------------------------------------------------------------------

def test_basic_auth_from_the_uri_only(site: Site) -> None:
    _result, sink = site.fetch(f"http://alice:s3cret%20pw@{SERVER}/secret/data.bin")
    assert sink.sha256() == site.digests["secret/data.bin"]
    tries = site.requests_for("/secret/data.bin")[-2:]
    assert [line[3] for line in tries] == ["401", "200"]  # one challenge, one answer
    assert tries[0][11] == "-" and tries[1][11].startswith("Basic ")
    assert code(site.error(f"http://{SERVER}/secret/data.bin")) == "0243613c"  # no user: httpbasic.c
    assert code(site.error(f"http://alice:wrong@{SERVER}/secret/data.bin")) == "020c613c"  # still 401


# -- HTTPS -----------------------------------------------------------------------------------------

def test_https_verified(site: Site) -> None:
    for url in ("https://pyipxe.test/files/big.bin", f"https://{SERVER}/files/small.bin"):
        _result, sink = site.fetch(url)
        assert sink.sha256() == site.digests[url.split("/", 3)[3]]
    assert any(message.startswith("https: TLSv1.") for message in site.messages)


def test_https_refuses_bad_certificates(site: Site) -> None:
    assert code(site.error("https://wrong.test/files/small.bin")) == "0216ea3c"  # name not in the certificate
    assert code(site.error("https://pyipxe.test:8444/files/small.bin")) == "0216e63c"  # unknown CA
    assert code(site.error("https://pyipxe.test:8445/files/small.bin")) == "0216e43c"  # expired
    untrusting = fresh_env(site, trust_files=[])
    assert code(site.error("https://pyipxe.test/files/small.bin", env=untrusting)) == "0216e63c"


# -- bodies --------------------------------------------------------------------------------------

def test_chunked_body(site: Site) -> None:
    for name in ("small.bin", "big.bin"):
        _result, sink = site.fetch(f"http://{SERVER}/chunked/{name}")
        assert sink.sha256() == site.digests[f"files/{name}"]
        assert sink.length is None
        assert site.requests_for(f"/chunked/{name}")[-1][15] == "chunked"


def test_post_params_and_header(site: Site) -> None:
    params = RequestParams("", fields=[("name", "a b&c"), ("mac", "52:54:00:12:34:56")],
                           headers=[("X-Pyipxe", "hello")])
    _result, sink = site.fetch(f"http://{SERVER}/post", params=params)
    line = site.requests_for("/post")[-1]
    assert line[1] == "POST" and line[3] == "200"
    assert line[12] == "application/x-www-form-urlencoded"
    assert line[13] == "name=a%20b%26c&mac=52%3A54%3A00%3A12%3A34%3A56"
    assert line[14] == "hello"
    assert sink.sha256() == hashlib.sha256(b"posted\n").hexdigest()


# -- breaking connections ------------------------------------------------------------------------

def test_resume_after_cut_connections(site: Site) -> None:
    relay = CuttingRelay(SERVER, 80, cut_after=3_000_000, cuts=3)
    port = site.client.run(relay.start())
    try:
        env = fresh_env(site)
        _result, sink = site.fetch(f"http://127.0.0.1:{port}/files/big.bin", env=env)
        assert sink.sha256() == site.digests["files/big.bin"]
    finally:
        site.client.run(relay.stop())
    assert relay.cut_count == 3 and relay.connections == 4
    ranges = [line[9] for line in site.requests_for("/files/big.bin") if line[6] == f"127.0.0.1:{port}"]
    assert ranges[0] == "-" and all(value.startswith("bytes=") and value.endswith("-") for value in ranges[1:])
    assert len(ranges) == 4


def test_server_killed_mid_transfer_is_a_clean_error(site: Site) -> None:
    config = render("nginx-slow.conf", site.state, site.root)
    slow = start_nginx(site.lab, config, [8081], "nginx-slow.log")
    sink = FileSink(site.lab.workdir / "killed")
    future = asyncio.run_coroutine_threadsafe(
        driver.fetch(FetchRequest(parse_uri(f"http://{SERVER}:8081/files/big.bin")), sink, fresh_env(site)),
        site.client.loop)
    deadline = time.monotonic() + 20
    while sink.writes < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    site.lab.stop(slow, signal.SIGKILL)
    with pytest.raises(IpxeError) as caught:
        future.result(30)
    assert code(caught.value) in ("1d0c6239", "0f0a6039")  # length mismatch (FIN) or reset, as iPXE


# -- fault injectors: scripted servers ----------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _scripted(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _read_request(reader: asyncio.StreamReader) -> list[str]:
    head = await reader.readuntil(b"\r\n\r\n")
    return head.decode().split("\r\n")[:-2]


def scripted(site: Site, responses: list[bytes], url_path: str = "/x", *,
             hold: bool = False) -> tuple[list[list[str]], IpxeError | FileSink]:
    """Serve ``responses`` in order (one per request, keep-alive); the requests and the outcome.

    ``hold`` keeps the connection open (silent) after the last response instead of closing it.
    """
    seen: list[list[str]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while len(seen) < len(responses):
                seen.append(await _read_request(reader))
                writer.write(responses[len(seen) - 1])
                await writer.drain()
            if hold:
                await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server, port = site.client.run(_scripted(handler))
    try:
        try:
            _, sink = site.fetch(f"http://user:pw@127.0.0.1:{port}{url_path}", env=fresh_env(site))
            outcome: IpxeError | FileSink = sink
        except IpxeError as error:
            outcome = error
    finally:
        server.close()
    return seen, outcome


def test_garbage_and_broken_responses(site: Site) -> None:
    cases = {
        b"garbage\r\n\r\n": "1c0c6102",  # "Invalid status line"
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n": "1c0c6102",  # no space after the code
        b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n": "1c0c6202",  # "Invalid header"
        b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n": "1c0c6302",  # "Invalid content length"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n": "3c0c6203",  # "Unsupported transfer encoding"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n": "1c0c6402",  # "Invalid chunk length"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef": "1d0c6239",  # body longer than Content-Length
        b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\nConnection: close\r\n\r\nabc": "1d0c6239",  # shorter
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nab": "420c6001",  # EPIPE
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n": "420c6001",  # closed inside the head
        b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n": "1d0c6139",  # "Unrecognised HTTP response code"
    }
    for response, number in cases.items():
        _, outcome = scripted(site, [response])
        assert isinstance(outcome, IpxeError), response
        assert code(outcome) == number, response


def test_digest_auth_one_retry(site: Site) -> None:
    challenge = (b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="boot", qop="auth", '
                 b'nonce="abc123", opaque="xyz"\r\nContent-Length: 0\r\n\r\n')
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    seen, outcome = scripted(site, [challenge, ok])
    assert isinstance(outcome, FileSink) and outcome.sha256() == hashlib.sha256(b"hello").hexdigest()
    assert not any(line.startswith("Authorization") for line in seen[0])
    header = next(line for line in seen[1] if line.startswith("Authorization: "))[len("Authorization: "):]
    fields = dict(proto.http_tokens(header[len("Digest "):], with_values=True))
    # Check the answer independently of the code under test (RFC 2617 §3.2.2).
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()
    ha1, ha2 = md5("user:boot:pw"), md5("GET:/x")
    assert fields["nc"] == "00000001" and fields["qop"] == "auth" and len(fields["cnonce"] or "") == 8
    assert fields["response"] == md5(f"{ha1}:abc123:00000001:{fields['cnonce']}:auth:{ha2}")
    assert fields["opaque"] == "xyz" and fields["uri"] == "/x" and fields["username"] == "user"
    # A second 401 after answering is final: "Permission denied" from httpcore.c.
    seen, outcome = scripted(site, [challenge, challenge])
    assert isinstance(outcome, IpxeError) and code(outcome) == "020c613c" and len(seen) == 2


def test_retry_after(site: Site) -> None:
    busy = b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    started = time.monotonic()
    seen, outcome = scripted(site, [busy, busy, ok])
    assert isinstance(outcome, FileSink) and outcome.sha256() == hashlib.sha256(b"ok").hexdigest()
    assert len(seen) == 3 and time.monotonic() - started >= 2



def test_idle_timeout(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "IDLE_TIMEOUT", 0.5)  # iPXE's 120 s, shortened
    _, outcome = scripted(site, [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], hold=True)
    assert isinstance(outcome, IpxeError) and code(outcome) == "4c0c6035"

# -- through the CLI -------------------------------------------------------------------------------

def test_cli_imgfetch_and_errors(site: Site) -> None:
    script = site.lab.workdir / "fetch.ipxe"
    script.write_text("#!ipxe\n"
                      f"imgfetch http://alice:s3cret%20pw@{SERVER}/secret/data.bin\n"
                      "sha256sum data.bin\n"
                      f"imgfetch http://{SERVER}/files/missing || echo errno ${{errno}}\n"
                      # The test CA is not in the system's roots, and `run` has no --trust yet.
                      f"imgfetch https://{SERVER}/files/small.bin || echo errno ${{errno}}\n")
    run = site.lab.pyipxe(["run", str(script)])
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stderr
    assert lines[0] == f"http://{SERVER}/secret/data.bin... ok"  # credentials never printed
    assert lines[1] == f"{site.digests['secret/data.bin']}  data.bin"
    assert lines[2] == f"http://{SERVER}/files/missing... Not found (https://ipxe.org/2d0c613b)"
    assert lines[3] == "errno 0x2d0c613b"
    assert lines[4] == f"https://{SERVER}/files/small.bin... Permission denied (https://ipxe.org/0216e63c)"
    assert lines[5] == "errno 0x216e63c"
