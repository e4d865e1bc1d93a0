"""The sans-IO FTP client: iPXE's command script, reply parsing (multi-line, split), errors; fuzz.

The last section runs the asyncio driver on loopback against small scripted servers, for what
real servers cannot be made to do on demand (hang up mid-transfer, stay silent).
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipxe.errors import IpxeError
from pyipxe.net import ftp as ftp_driver
from pyipxe.net import tcp
from pyipxe.net.transfer import FetchEnv, FetchRequest
from pyipxe.proto.ftp import (
    MAX_LINE,
    Done,
    Failed,
    FtpClient,
    OpenData,
    Output,
    Reply,
    ReplyReader,
    Send,
    SizeKnown,
    State,
    parse_pasv,
    parse_size,
)
from pyipxe.uri import parse_uri

EPROTO = 0x430B6001  # ftp.c's EPROTO on BIOS


def sent(outputs: list[Output]) -> list[str]:
    return [output.data.decode() for output in outputs if isinstance(output, Send)]


def login(client: FtpClient) -> list[Output]:
    """Greeting to PASV reply; returns everything the client produced."""
    out = client.receive(b"220 welcome\r\n")
    out += client.receive(b"331 password please\r\n")
    out += client.receive(b"230 ok\r\n")
    out += client.receive(b"200 binary\r\n")
    out += client.receive(b"213 1234\r\n")
    out += client.receive(b"227 Entering Passive Mode (10,77,0,1,117,48).\r\n")
    return out


def failure(outputs: list[Output]) -> int:
    assert isinstance(outputs[-1], Failed), outputs
    return outputs[-1].error.code("pcbios")


def test_ipxes_command_sequence() -> None:
    client = FtpClient("/boot/vmlinuz")
    out = login(client)
    assert sent(out) == ["USER anonymous\r\n", "PASS ipxe@ipxe.org\r\n", "TYPE I\r\n", "SIZE /boot/vmlinuz\r\n",
                         "PASV\r\n", "RETR /boot/vmlinuz\r\n"]
    assert SizeKnown(1234) in out
    assert OpenData("10.77.0.1", 117 * 256 + 48) in out
    assert client.receive(b"150 Opening BINARY mode data connection\r\n") == []
    assert client.data_finished() == []
    assert sent(client.receive(b"226 Transfer complete\r\n")) == ["QUIT\r\n"]
    assert client.receive(b"221 Goodbye\r\n") == [Done()]
    assert client.finished and client.state is State.DONE


def test_transfer_reply_before_data_end() -> None:
    client = FtpClient("/f")
    login(client)
    assert client.receive(b"150 go\r\n226 done\r\n") == []
    assert sent(client.data_finished()) == ["QUIT\r\n"]
    assert client.data_finished() == []  # once only
    assert client.control_closed() == [Done()]  # no 221 before the hang-up: the file is complete


def test_uri_credentials() -> None:
    client = FtpClient("/f", "joe", "s3cret")
    out = client.receive(b"220 hi\r\n331 pw\r\n")
    assert sent(out) == ["USER joe\r\n", "PASS s3cret\r\n"]


def test_user_logged_in_without_password_skips_pass() -> None:
    client = FtpClient("/f")
    assert sent(client.receive(b"220 hi\r\n230 already in\r\n")) == ["USER anonymous\r\n", "TYPE I\r\n"]


def test_multiline_and_split_replies() -> None:
    client = FtpClient("/f")
    stream = (b"220-Welcome\r\n220-  to the\r\n 220 not the end (space first)\r\n220 end\r\n"
              b"331-a\n331 b\n230 in\n200 ok\n")
    out: list[Output] = []
    for byte in stream:
        out += client.receive(bytes([byte]))
    assert sent(out) == ["USER anonymous\r\n", "PASS ipxe@ipxe.org\r\n", "TYPE I\r\n", "SIZE /f\r\n"]
    assert [reply.code for reply in client.replies] == [220, 331, 230, 200]


def test_size_not_supported_goes_on() -> None:
    client = FtpClient("/f")
    out = client.receive(b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n550 no size\r\n")
    assert sent(out)[-1] == "PASV\r\n"
    assert client.size is None


@pytest.mark.parametrize("stream", [
    b"421 busy\r\n",  # greeting refused
    b"220 a\r\n530 anonymous not allowed\r\n",
    b"220 a\r\n331 b\r\n530 wrong password\r\n",
    b"220 a\r\n331 b\r\n230 c\r\n504 no binary\r\n",
    b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n213 12x\r\n",  # invalid size
    b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n450 busy\r\n",  # SIZE: only 5xx is skipped
    b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n213 5\r\n425 no passive\r\n",
    b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n213 5\r\n227 nothing here\r\n",
    b"220 a\r\n331 b\r\n230 c\r\n200 d\r\n213 5\r\n227 (10,0,0,256,1,1)\r\n",
])
def test_refusals_are_eproto(stream: bytes) -> None:
    assert failure(FtpClient("/f").receive(stream)) == EPROTO


def test_missing_file_is_eproto() -> None:
    client = FtpClient("/missing")
    login(client)
    assert failure(client.receive(b"550 Failed to open file.\r\n")) == EPROTO
    assert client.receive(b"221 bye\r\n") == []  # nothing after a failure


def test_closed_before_complete_is_connection_reset() -> None:
    client = FtpClient("/f")
    login(client)
    assert failure(client.control_closed()) == 0x0F0B6039


@pytest.mark.parametrize(("user", "password", "path"), [(None, None, "/a\nb"), ("us\rer", None, "/f"),
                                                       (None, "pä", "/f"), (None, None, "/tab\there")])
def test_unprintable_uri_fields_are_einval(user: str | None, password: str | None, path: str) -> None:
    with pytest.raises(IpxeError) as caught:
        FtpClient(path, user, password)
    assert caught.value.code("pcbios") == 0x1C0B6002


@pytest.mark.parametrize(("text", "address"), [
    ("Entering Passive Mode (192,168,1,2,4,1).", ("192.168.1.2", 1025)),
    ("=192,168,1,2,0,21", ("192.168.1.2", 21)),
    ("Entering Passive Mode 10,0,0,1,255,255", ("10.0.0.1", 65535)),
    ("Entering Passive Mode (1,2,3)", None),
    ("(1,2,3,4,5,999)", None),
])
def test_parse_pasv(text: str, address: tuple[str, int] | None) -> None:
    assert parse_pasv(text) == address


@pytest.mark.parametrize(("text", "size"), [("1234", 1234), ("File size 99", 99), ("", None), ("12 x", None),
                                            ("-5", None), ("١٢", None)])
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_reply_lines_are_bounded() -> None:
    reader = ReplyReader()
    assert reader.feed(b"220 " + b"x" * (MAX_LINE * 10)) == []
    (reply,) = reader.feed(b"\r\n")
    assert reply.code == 220 and len(reply.text) == MAX_LINE - 4


def test_malformed_lines_are_ignored() -> None:
    assert ReplyReader().feed(b"hello\r\n22 x\r\n2200 y\r\nabc def\r\n250 ok\r\n") == [Reply(250, "ok")]


# ---- fuzz ----------------------------------------------------------------------------------------


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_random_control_bytes_never_crash(stream: bytes, cuts: list[int]) -> None:
    client = FtpClient("/f")
    previous = 0
    outputs: list[Output] = []
    for cut in [*sorted(cuts), len(stream)]:
        outputs += client.receive(stream[previous:max(cut, previous)])
        previous = max(previous, cut)
    outputs += client.data_finished() + client.control_closed()
    assert all(isinstance(output, Send | SizeKnown | OpenData | Done | Failed) for output in outputs)
    assert client.finished


@given(st.lists(st.tuples(st.integers(100, 599), st.text(max_size=30)), max_size=12), st.integers(1, 50))
def test_reply_splitting_does_not_matter(replies: list[tuple[int, str]], step: int) -> None:
    stream = b"".join(f"{code} {text}".encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
                      for code, text in replies)
    whole = ReplyReader().feed(stream)
    reader = ReplyReader()
    pieces = [reply for start in range(0, len(stream), step) for reply in reader.feed(stream[start:start + step])]
    assert pieces == whole
    assert [reply.code for reply in whole] == [code for code, _ in replies]


# ---- the asyncio driver on loopback, against scripted servers ---------------------------------------


class MemorySink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.length: int | None = None

    def set_length(self, length: int) -> None:
        self.length = length

    def write(self, offset: int, data: bytes | memoryview) -> None:
        assert offset == len(self.data)  # the data connection is one stream at increasing offsets
        self.data += data


async def _resolve(host: str) -> list[IPv4Address | IPv6Address]:
    return [ip_address(host)]


async def scripted_server(content: bytes, *, hang_up_after_150: bool = False, silent: bool = False) -> int:
    """An FTP server on 127.0.0.1 speaking just enough of RFC 959; returns its port."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if silent:
            await reader.read()
            return
        writer.write(b"220-multi\r\n220 line greeting\r\n")
        data_server: asyncio.Server | None = None
        while line := await reader.readline():
            command = line.decode().strip()
            if command.startswith("USER"):
                writer.write(b"331 pw\r\n")
            elif command.startswith("PASS"):
                writer.write(b"230 in\r\n")
            elif command == "TYPE I":
                writer.write(b"200 binary\r\n")
            elif command.startswith("SIZE"):
                writer.write(f"213 {len(content)}\r\n".encode())
            elif command == "PASV":
                async def send(data_reader: asyncio.StreamReader, data_writer: asyncio.StreamWriter) -> None:
                    data_writer.write(content)
                    await data_writer.drain()
                    data_writer.close()
                data_server = await asyncio.start_server(send, "127.0.0.1", 0)
                port = data_server.sockets[0].getsockname()[1]
                writer.write(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})\r\n".encode())
            elif command.startswith("RETR"):
                writer.write(b"150 here it comes\r\n")
                if hang_up_after_150:
                    break
                await asyncio.sleep(0.05)
                writer.write(b"226 done\r\n")
            elif command == "QUIT":
                writer.write(b"221 bye\r\n")
                break
            await writer.drain()
        writer.close()
        if data_server is not None:
            data_server.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return port


def test_driver_streams_the_data_connection() -> None:
    content = bytes(range(256)) * 5000

    async def main() -> MemorySink:
        port = await scripted_server(content)
        sink = MemorySink()
        result = await ftp_driver.fetch(FetchRequest(parse_uri(f"ftp://127.0.0.1:{port}/f")), sink,
                                        FetchEnv(resolve=_resolve))
        assert result.length == len(content)
        return sink

    sink = asyncio.run(main())
    assert sink.data == content and sink.length == len(content)


def test_driver_hang_up_before_the_end_is_an_error() -> None:
    async def main() -> int:
        port = await scripted_server(b"x" * 10, hang_up_after_150=True)
        with pytest.raises(IpxeError) as caught:
            await ftp_driver.fetch(FetchRequest(parse_uri(f"ftp://127.0.0.1:{port}/f")), MemorySink(),
                                   FetchEnv(resolve=_resolve))
        return caught.value.code("pcbios")

    assert asyncio.run(main()) == 0x0F0B6039


def test_driver_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "IDLE_TIMEOUT", 0.3)

    async def main() -> int:
        port = await scripted_server(b"", silent=True)
        with pytest.raises(IpxeError) as caught:
            await ftp_driver.fetch(FetchRequest(parse_uri(f"ftp://127.0.0.1:{port}/f")), MemorySink(),
                                   FetchEnv(resolve=_resolve))
        return caught.value.code("pcbios")

    assert asyncio.run(main()) == 0x4C0A6035  # TCP's "Connection timed out"


def test_driver_bad_uris() -> None:
    for text, code in (("ftp://127.0.0.1", 0x1C0B6002), ("ftp:///x", 0x1C0B6002), ("ftp://127.0.0.1/a%0Ab", 0x1C0B6002)):
        with pytest.raises(IpxeError) as caught:
            asyncio.run(ftp_driver.fetch(FetchRequest(parse_uri(text)), MemorySink(), FetchEnv(resolve=_resolve)))
        assert caught.value.code("pcbios") == code, text
