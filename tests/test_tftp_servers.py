"""``tftp://`` downloads against real servers, through a faulty relay, and against a scripted peer.

The servers are the ones boot networks run, nobody's here: tftpd-hpa, dnsmasq's TFTP and
atftpd (which also speaks RFC 7440 windowsize), each on its own address of a NetLab
bridge. pyipxe's driver runs in-process, in a thread inside the lab's client namespace
(:func:`relay_udp.call_in_netns`), so every byte and every log line can be checked.

Faults come from a real transfer too: tests/relay_udp.py between client and tftpd-hpa
loses, duplicates and reorders 10% of the datagrams each way, and another tftpd-hpa is
killed mid-transfer. A small scripted peer on loopback covers what no real server does on
demand (refusing our options, being cancelled).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from netlab import NetLab, tool
from pyipxe.errors import IpxeError, format_error
from pyipxe.net import tftp
from pyipxe.net.transfer import FetchEnv, FetchRequest, FetchResult
from pyipxe.uri import parse_uri
from relay_udp import call_in_netns

HPA, DNSMASQ, ATFTPD = "10.77.0.11", "10.77.0.12", "10.77.0.13"
ATFTPD_PORT = 1069  # not 69, so the URI's port is exercised too
HPA_FAST = "10.77.0.14"  # tftpd-hpa retransmitting after 20 ms, behind the relay
HPA_DOOMED = "10.77.0.15"  # tftpd-hpa that a test kills
ATFTPD_FAST = "10.77.0.16"  # atftpd retransmitting after 1 s (not 5), behind the window relay
RELAY = ("10.77.0.1", 6969)  # to HPA_FAST
WINDOW_RELAY = ("10.77.0.1", 6970)  # to ATFTPD_FAST, which then sends windows of 16
BASES = {"tftpd-hpa": f"tftp://{HPA}", "dnsmasq": f"tftp://{DNSMASQ}", "atftpd": f"tftp://{ATFTPD}:{ATFTPD_PORT}"}

NOT_FOUND = 0x2D12613B  # TFTP error 1, as current iPXE numbers it (pcbios)
TIMED_OUT = 0x4C126035
ROLLOVER_BLKSIZE = 48  # 70000 blocks of 48 bytes roll the block number past 65535 in ~3 MB


def _content(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


FILES = {
    "small": _content(1000, 1),
    "exact512": _content(512 * 40, 2),  # a 512 multiple (not of 1432)
    "exact1432": _content(1432 * 8, 3),  # a multiple of the negotiated blksize: ends with an empty block
    "empty": b"",
    "big": _content((5 << 20) + 123, 4),
    "relayed": _content(150_000, 5),  # ~105 blocks
    "relayed-windows": _content(60_000, 8),  # ~42 blocks: three windows of 16
    "rollover": _content(ROLLOVER_BLKSIZE * 70_000 + 7, 6),
    "doomed": _content(24 << 20, 7),
}


# ---- running a download -------------------------------------------------------------------


class MemorySink:
    def __init__(self, on_write: Callable[[int], None] | None = None) -> None:
        self.data = bytearray()
        self.length: int | None = None
        self.on_write = on_write

    def set_length(self, length: int) -> None:
        self.length = length

    def write(self, offset: int, data: bytes | memoryview) -> None:
        end = offset + len(data)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data
        if self.on_write is not None:
            self.on_write(end)


@dataclass
class Outcome:
    result: FetchResult | None
    error: IpxeError | None
    sink: MemorySink
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(self.log)


async def _resolve(host: str) -> list[IPv4Address | IPv6Address]:
    return [ip_address(host)]


async def _fetch(url: str, settings: dict[str, str] | None, sink: MemorySink) -> Outcome:
    log: list[str] = []
    env = FetchEnv(resolve=_resolve, setting=(settings or {}).get, log=log.append)
    started = time.monotonic()
    try:
        result: FetchResult | None = await tftp.fetch(FetchRequest(parse_uri(url)), sink, env)
        error = None
    except IpxeError as exc:
        result, error = None, exc
    return Outcome(result, error, sink, log, time.monotonic() - started)


def download(lab: NetLab, url: str, settings: dict[str, str] | None = None,
             sink: MemorySink | None = None) -> Outcome:
    """Fetch ``url`` with pyipxe's driver from the lab's client namespace."""
    return call_in_netns(lab.client, lambda: asyncio.run(_fetch(url, settings, sink or MemorySink())))


def sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the lab ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    with NetLab() as lab:
        lab.add_host("cli", "10.77.0.2")
        for address in (HPA, DNSMASQ, ATFTPD, HPA_FAST, HPA_DOOMED, ATFTPD_FAST):
            lab.ns_run(lab.server, ["ip", "addr", "add", f"{address}/24", "dev", "br0"])
        root = lab.workdir / "root"
        (root / "dir").mkdir(parents=True)
        lab.workdir.chmod(0o755)
        for directory in (root, root / "dir"):
            directory.chmod(0o755)
        for name, content in {**FILES, "dir/inner": FILES["small"]}.items():
            (root / name).write_bytes(content)
            (root / name).chmod(0o644)
        hpa = [tool("in.tftpd"), "-L", "-s", "-v", "-v", "-v"]
        lab.spawn(lab.server, [*hpa, "-a", f"{HPA}:69", str(root)], log="tftpd-hpa.log")
        lab.spawn(lab.server, [*hpa, "-T", "20000", "-a", f"{HPA_FAST}:69", str(root)], log="tftpd-hpa-fast.log")
        lab.spawn(lab.server, [tool("dnsmasq"), "--keep-in-foreground", "--port=0", "--enable-tftp",
                               f"--tftp-root={root}", "--no-daemon", f"--listen-address={DNSMASQ}",
                               "--bind-interfaces", "--user=root", "--log-facility=-", "--conf-file=/dev/null",
                               "--pid-file="], log="dnsmasq.log")
        atftpd = [tool("atftpd"), "--daemon", "--no-fork", "--user", "root.root", "--logfile", "-", "--verbose=7"]
        lab.spawn(lab.server, [*atftpd, "--port", str(ATFTPD_PORT), "--bind-address", ATFTPD, str(root)],
                  log="atftpd.log")
        # atftpd ignores a repeated ACK and waits for its own timeout (5 s unless told) to resend a window
        lab.spawn(lab.server, [*atftpd, "--retry-timeout", "1", "--port", "69", "--bind-address", ATFTPD_FAST,
                               str(root)], log="atftpd-fast.log")
        faults = ["--loss", "0.1", "--dup", "0.1", "--reorder", "0.1", "--seed", "7"]
        relay = [sys.executable, str(Path(__file__).with_name("relay_udp.py")), *faults]
        lab.spawn(lab.server, [*relay, "--listen", f"{RELAY[0]}:{RELAY[1]}", "--server", f"{HPA_FAST}:69"],
                  log="relay.log")
        lab.spawn(lab.server, [*relay, "--listen", f"{WINDOW_RELAY[0]}:{WINDOW_RELAY[1]}",
                               "--server", f"{ATFTPD_FAST}:69"], log="window-relay.log")
        for port in (69, ATFTPD_PORT, RELAY[1], WINDOW_RELAY[1]):
            lab.wait_listening(lab.server, port, "udp")
        time.sleep(0.2)  # three servers share port 69; ss cannot tell which one listens yet
        yield lab


# ---- the files arrive intact -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["small", "exact512", "exact1432", "empty", "big"])
@pytest.mark.parametrize("server", list(BASES))
def test_files_arrive_intact(lab: NetLab, server: str, name: str) -> None:
    outcome = download(lab, f"{BASES[server]}/{name}")
    assert outcome.error is None, outcome.text
    assert outcome.result is not None and outcome.result.length == len(FILES[name])
    assert sha256(outcome.sink.data) == sha256(FILES[name])
    assert outcome.sink.length == len(FILES[name])  # tsize presized the image
    assert f"tsize {len(FILES[name])}" in oack_line(outcome) and "blksize 1432" in oack_line(outcome)


def oack_line(outcome: Outcome) -> str:
    return next(line for line in outcome.log if "OACK" in line)


@pytest.mark.parametrize("server", list(BASES))
def test_block_numbers_roll_over_past_65535(lab: NetLab, server: str) -> None:
    outcome = download(lab, f"{BASES[server]}/rollover", {"tftp-blksize": str(ROLLOVER_BLKSIZE)})
    assert outcome.error is None, outcome.text
    assert sha256(outcome.sink.data) == sha256(FILES["rollover"])
    assert f"{len(FILES['rollover'])} bytes" in outcome.text and "70001 blocks" in outcome.text


@pytest.mark.parametrize("server", list(BASES))
def test_missing_file_is_ipxes_not_found(lab: NetLab, server: str) -> None:
    outcome = download(lab, f"{BASES[server]}/no/such/file")
    assert outcome.result is None and outcome.error is not None
    assert outcome.error.code("pcbios") == NOT_FOUND
    assert format_error(outcome.error.code("pcbios"), "pcbios") == "Not found (https://ipxe.org/2d12613b)"
    assert outcome.sink.data == b""


def test_double_slash_asks_for_an_absolute_path(lab: NetLab) -> None:
    outcome = download(lab, f"tftp://{HPA}//dir/inner")
    assert outcome.error is None and bytes(outcome.sink.data) == FILES["small"]
    assert "RRQ '/dir/inner'" in outcome.text  # tftpd-hpa -s serves it from its root either way
    outcome = download(lab, f"tftp://{HPA}/dir/inner")
    assert outcome.error is None and "RRQ 'dir/inner'" in outcome.text


# ---- windowsize (RFC 7440) -----------------------------------------------------------------------


def test_windowsize_is_negotiated_with_atftpd(lab: NetLab) -> None:
    outcome = download(lab, f"{BASES['atftpd']}/big")
    assert outcome.error is None and sha256(outcome.sink.data) == sha256(FILES["big"])
    assert "windowsize 16" in oack_line(outcome)
    assert "windowsize option -> 16" in lab.log("atftpd.log")
    blocks = len(FILES["big"]) // 1432 + 1
    assert f"{blocks} blocks, {-(-blocks // 16) + 1} ACKs" in outcome.text  # ACK 0, then one per window


def test_servers_without_windowsize_get_lock_step(lab: NetLab) -> None:
    for server in ("tftpd-hpa", "dnsmasq"):
        outcome = download(lab, f"{BASES[server]}/exact512")
        assert outcome.error is None
        assert "windowsize 16)" in outcome.text  # we asked
        assert "windowsize" not in oack_line(outcome) and "15 blocks, 16 ACKs" in outcome.text


def test_settings_choose_ipxes_exact_request(lab: NetLab) -> None:
    before = lab.log("atftpd.log").count("windowsize option")
    outcome = download(lab, f"{BASES['atftpd']}/exact512", {"tftp-windowsize": "1", "tftp-blksize": "512"})
    assert outcome.error is None and bytes(outcome.sink.data) == FILES["exact512"]
    assert "RRQ 'exact512' to 10.77.0.13:1069 (blksize 512 tsize 0)" in outcome.text
    assert lab.log("atftpd.log").count("windowsize option") == before
    assert "41 blocks, 42 ACKs" in outcome.text


# ---- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("relay", "name", "log"),
                         [(RELAY, "relayed", "relay.log"), (WINDOW_RELAY, "relayed-windows", "window-relay.log")] * 2,
                         ids=["lock-step", "window", "lock-step-again", "window-again"])
def test_lossy_duplicating_reordering_relay_still_gives_the_right_bytes(
        lab: NetLab, relay: tuple[str, int], name: str, log: str) -> None:
    outcome = download(lab, f"tftp://{relay[0]}:{relay[1]}/{name}")
    assert outcome.error is None, outcome.text
    assert sha256(outcome.sink.data) == sha256(FILES[name])
    assert "TFTP: OACK from 10.77.0.1:" in outcome.text  # the relay's port for the server's TID
    summary = next(line for line in outcome.log if " bytes in " in line)
    recoveries = [int(n) for n in re.findall(r"(\d+) (?:retransmissions|duplicates|out of order)", summary)]
    assert sum(recoveries) > 0, summary  # the channel really was broken
    deadline = time.monotonic() + 2
    while not re.search(r"lost [1-9]\d* duplicated [1-9]\d* reordered [1-9]", lab.log(log)):
        assert time.monotonic() < deadline, lab.log(log)[-300:]
        time.sleep(0.1)


def test_server_killed_mid_transfer_fails_cleanly_within_the_timeout(lab: NetLab) -> None:
    root = lab.workdir / "root"
    server = lab.spawn(lab.server, [tool("in.tftpd"), "-L", "-s", "-a", f"{HPA_DOOMED}:69", str(root)],
                       log="tftpd-hpa-doomed.log")
    lab.wait_listening(lab.server, 69, "udp")
    time.sleep(0.2)
    killed: list[float] = []

    def kill_after_a_megabyte(end: int) -> None:
        if end >= 1 << 20 and not killed:
            killed.append(time.monotonic())
            lab.stop(server, signal.SIGKILL)

    outcome = download(lab, f"tftp://{HPA_DOOMED}/doomed", sink=MemorySink(kill_after_a_megabyte))
    assert killed, outcome.text
    assert outcome.result is None and outcome.error is not None, outcome.text
    assert outcome.error.code("pcbios") == TIMED_OUT
    assert format_error(TIMED_OUT, "pcbios") == "Connection timed out (https://ipxe.org/4c126035)"
    silent = time.monotonic() - killed[0]
    assert 14 <= silent <= 20  # iPXE's patience: about 15 s of silence
    assert "resending ACK" in outcome.text


def test_no_route_is_network_unreachable(lab: NetLab) -> None:
    outcome = download(lab, "tftp://192.0.2.1/x")
    assert outcome.error is not None and outcome.error.code("pcbios") == 0x28056011
    assert outcome.seconds < 2


# ---- a scripted peer on loopback: what real servers will not do on demand -------------------------


class ScriptedPeer(asyncio.DatagramProtocol):
    """Answers RRQs by ``respond(request) -> datagrams`` from a fresh port, like a forking server."""

    def __init__(self, respond: Callable[[bytes], list[bytes]], stranger: bytes = b"") -> None:
        self.respond = respond
        self.stranger = stranger  # sent from another port just before the last block
        self.stranger_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.requests: list[bytes] = []
        self.received: list[bytes] = []  # everything sent to the transfer ports
        self.transport: asyncio.DatagramTransport | None = None
        self.children: list[asyncio.DatagramTransport] = []
        self.tasks: list[asyncio.Future[None]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.requests.append(data)
        self.tasks.append(asyncio.ensure_future(self._serve(data, (str(addr[0]), int(addr[1])))))

    async def _serve(self, request: bytes, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        peer = self

        class Child(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                peer.received.append(data)
                if data[:4] == b"\x00\x04\x00\x01":  # ACK 1 (of a 512-byte block 1): the end
                    if peer.stranger:
                        peer.stranger_socket.sendto(peer.stranger, client)  # another port, first
                    transport.sendto(b"\x00\x03\x00\x02done", client)

        transport, _ = await loop.create_datagram_endpoint(Child, local_addr=("127.0.0.1", 0))
        self.children.append(transport)
        for datagram in self.respond(request):
            transport.sendto(datagram, client)

    def close(self) -> None:
        self.stranger_socket.close()
        for transport in [self.transport, *self.children]:
            if transport is not None:
                transport.close()


async def _with_peer(respond: Callable[[bytes], list[bytes]], url_path: str,
                     settings: dict[str, str] | None = None, cancel_after: float | None = None,
                     stranger: bytes = b"") -> tuple[Outcome | None, ScriptedPeer]:
    loop = asyncio.get_running_loop()
    peer = ScriptedPeer(respond, stranger)
    await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
    assert peer.transport is not None
    port = peer.transport.get_extra_info("sockname")[1]
    try:
        task = asyncio.ensure_future(_fetch(f"tftp://127.0.0.1:{port}{url_path}", settings, MemorySink()))
        if cancel_after is None:
            return await task, peer
        await asyncio.sleep(cancel_after)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        return None, peer
    finally:
        peer.close()


def _refuses_windowsize(request: bytes) -> list[bytes]:
    if b"windowsize" in request:
        return [b"\x00\x05\x00\x08Unsupported option(s) requested\x00"]
    return [b"\x00\x03\x00\x01" + b"x" * 512]  # no OACK: an RFC 1350 server


def test_error_8_to_windowsize_retries_with_ipxes_request() -> None:
    outcome, peer = asyncio.run(_with_peer(_refuses_windowsize, "/f"))
    assert outcome is not None and outcome.error is None, outcome and outcome.text
    assert bytes(outcome.sink.data) == b"x" * 512 + b"done"
    assert peer.requests == [b"\x00\x01f\x00octet\x00blksize\x001432\x00tsize\x000\x00windowsize\x0016\x00",
                             b"\x00\x01f\x00octet\x00blksize\x001432\x00tsize\x000\x00"]
    assert "retrying with iPXE's request" in outcome.text and "ignores options" in outcome.text


@pytest.mark.parametrize(("settings", "requests"), [(None, 2), ({"tftp-windowsize": "1"}, 1)])
def test_error_8_to_ipxes_own_request_is_an_error(settings: dict[str, str] | None, requests: int) -> None:
    outcome, peer = asyncio.run(_with_peer(lambda request: [b"\x00\x05\x00\x08no\x00"], "/f", settings))
    assert outcome is not None and outcome.error is not None and len(peer.requests) == requests
    assert outcome.error.code("pcbios") == 0x3C126003  # any other TFTP error: "Operation not supported"


def test_strangers_cannot_inject_data() -> None:
    def answer(request: bytes) -> list[bytes]:
        return [b"\x00\x03\x00\x01" + b"x" * 512]

    async def run() -> tuple[Outcome | None, ScriptedPeer]:
        return await _with_peer(answer, "/f", stranger=b"\x00\x03\x00\x02evil")

    outcome, _ = asyncio.run(run())
    assert outcome is not None and outcome.error is None and bytes(outcome.sink.data) == b"x" * 512 + b"done"


def test_cancelling_tells_the_server() -> None:
    def stalls_after_oack(request: bytes) -> list[bytes]:
        return [b"\x00\x06blksize\x001432\x00tsize\x00999999\x00"]

    _, peer = asyncio.run(_with_peer(stalls_after_oack, "/f", cancel_after=0.2))
    assert peer.received == [b"\x00\x04\x00\x00", b"\x00\x05\x00\x00TFTP Aborted\x00"]


@pytest.mark.parametrize(
    ("url", "settings"),
    [
        ("tftp://127.0.0.1", None),  # no path: iPXE's tftp_core_open refuses it
        ("tftp:///file", None),  # no host
        ("tftp://127.0.0.1/f", {"tftp-windowsize": "lots"}),
        ("tftp://127.0.0.1/f", {"tftp-blksize": "7"}),
        ("tftp://127.0.0.1/f", {"tftp-windowsize": "65536"}),
    ],
)
def test_bad_requests_are_invalid_argument(url: str, settings: dict[str, str] | None) -> None:
    outcome = asyncio.run(_fetch(url, settings, MemorySink()))
    assert outcome.error is not None and outcome.error.code("pcbios") == 0x1C126002


def test_settings_accept_ipxe_numbers() -> None:
    def plain(request: bytes) -> list[bytes]:
        return [b"\x00\x03\x00\x01hi"]

    outcome, peer = asyncio.run(_with_peer(plain, "/f", {"tftp-windowsize": "0x20", "tftp-blksize": " 1024 "}))
    assert outcome is not None and outcome.error is None and bytes(outcome.sink.data) == b"hi"
    assert peer.requests[0].endswith(b"blksize\x001024\x00tsize\x000\x00windowsize\x0032\x00")


# ---- the whole CLI ----------------------------------------------------------------------------


def test_pyipxe_run_imgfetch_over_tftp(lab: NetLab) -> None:
    script = lab.workdir / "tftp.ipxe"
    script.write_text(
        "#!ipxe\n"
        f"imgfetch tftp://{HPA}/small\n"
        "sha256sum small\n"
        f"imgfetch tftp://{DNSMASQ}/no/such/file || echo errno ${{errno}}\n"
        "set tftp-windowsize 1\n"
        f"imgfetch -n lockstep tftp://{ATFTPD}:{ATFTPD_PORT}/exact1432\n"
        "imgstat lockstep\n"
    )
    result = lab.pyipxe(["run", "--platform", "pcbios", "-v", str(script)])
    assert result.returncode == 0, result.stdout + result.stderr
    *lines, imgstat = result.stdout.splitlines()
    assert lines == [
        f"tftp://{HPA}/small... ok",
        f"{sha256(FILES['small'])}  small",
        f"tftp://{DNSMASQ}/no/such/file... Not found (https://ipxe.org/2d12613b)",
        "errno 0x2d12613b",
        f"tftp://{ATFTPD}:{ATFTPD_PORT}/exact1432... ok",
    ]
    assert imgstat.startswith(f"lockstep : {len(FILES['exact1432'])} bytes")  # (the type is image detection's)
    assert "RRQ 'small' to 10.77.0.11:69 (blksize 1432 tsize 0 windowsize 16)" in result.stderr
    assert f"RRQ 'exact1432' to {ATFTPD}:{ATFTPD_PORT} (blksize 1432 tsize 0)" in result.stderr  # the setting
