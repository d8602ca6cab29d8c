"""The agencies' HTTP/1.1 transport (connectors/pool.py): connections kept and reused, never
one the agency closed or left half-read, httpx's timeouts and errors, and its limits."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.pool import AgencyPool
from connectors.transport import AgencyTransport, build_client

TIMEOUT_S = 10
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Agency:
    """A loopback server whose connections each run `handler`; counts the connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Agency]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> Agency:
        agency = Agency(handler)
        server = await asyncio.start_server(agency._handle, "127.0.0.1", 0)
        servers.append(server)
        agency.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        return agency

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def answer(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(line + b"\r\n" for line in extra) + b"\r\n" + body


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers "ok" to every request on the connection until the client leaves."""
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(answer(b"ok"))
        await writer.drain()


def client(**limits: float | int | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AgencyPool(limits=httpx.Limits(**limits)),  # type: ignore[arg-type]
        timeout=httpx.Timeout(TIMEOUT_S),
    )


def test_the_shared_client_uses_the_pool_and_a_proxied_one_httpx_transport() -> None:
    direct = build_client(max_response_bytes=1024, timeout=httpx.Timeout(1.0))
    assert isinstance(direct._transport, AgencyTransport)
    assert isinstance(direct._transport._inner, AgencyPool)
    proxied = build_client(
        max_response_bytes=1024, timeout=httpx.Timeout(1.0), proxy="http://127.0.0.1:9"
    )
    assert isinstance(proxied._transport, AgencyTransport)
    assert isinstance(proxied._transport._inner, httpx.AsyncHTTPTransport)


async def test_one_connection_serves_call_after_call(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    agency = await serve(keep_answering)
    async with client(max_connections=10, max_keepalive_connections=5) as http:
        for _ in range(5):
            response = await http.post(agency.url, content=b"<x/>")
            assert response.status_code == 200
            assert response.text == "ok"
    assert agency.connections == 1


async def test_calls_in_flight_each_have_a_connection_and_keep_it(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    agency = await serve(keep_answering)
    async with client(max_connections=10, max_keepalive_connections=10) as http:
        for _ in range(3):
            answers = await asyncio.gather(*(http.get(agency.url) for _ in range(4)))
            assert [a.text for a in answers] == ["ok"] * 4
        assert http._transport.idle_connections == 4  # type: ignore[attr-defined]
    assert agency.connections == 4


async def test_a_connection_the_agency_closed_while_idle_is_not_reused(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    close_now = asyncio.Event()
    closed = asyncio.Event()

    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"ok"))
        await writer.drain()
        # Keep-alive was not refused, but the agency drops the connection once idle.
        await close_now.wait()
        writer.close()
        await writer.wait_closed()
        closed.set()

    agency = await serve(answer_then_close)
    async with client() as http:
        assert (await http.get(agency.url)).text == "ok"
        pool = http._transport
        assert isinstance(pool, AgencyPool)
        (connection,) = pool._idle[("http", "127.0.0.1", int(agency.url.split(":")[2][:-1]))]
        assert connection.usable()
        close_now.set()
        await asyncio.wait_for(closed.wait(), TIMEOUT_S)
        # The event loop reads the close off the socket: the pool sees it with no system call.
        for _ in range(1000):
            if not connection.usable():
                break
            await asyncio.sleep(0.005)
        assert not connection.usable()
        assert (await http.get(agency.url)).text == "ok"
    assert agency.connections == 2


async def test_a_connection_the_agency_wrote_to_while_idle_is_not_reused(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def answer_then_chatter(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"ok") + b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        await writer.drain()
        await reader.read()

    agency = await serve(answer_then_chatter)
    async with client() as http:
        assert (await http.get(agency.url)).text == "ok"
        # Whatever else arrived sits in the reader: the next call must not read it as its answer.
        assert (await http.get(agency.url)).text == "ok"
    assert agency.connections == 2


@pytest.mark.parametrize(
    "limits",
    [
        {"max_keepalive_connections": 0},
        {"keepalive_expiry": 0},
    ],
    ids=["no-keepalive", "expired"],
)
async def test_limits_on_idle_connections(
    serve: Callable[..., Awaitable[Agency]], limits: dict[str, float]
) -> None:
    agency = await serve(keep_answering)
    async with client(**limits) as http:
        for _ in range(3):
            assert (await http.get(agency.url)).text == "ok"
    assert agency.connections == 3


async def test_an_answer_asking_to_close_is_not_kept(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"ok", b"Connection: close"))
        await writer.drain()

    agency = await serve(close_after)
    async with client() as http:
        for _ in range(2):
            assert (await http.get(agency.url)).text == "ok"
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]
    assert agency.connections == 2


async def test_an_answer_left_half_read_closes_its_connection(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"4\r\nabcd\r\n" * 4 + b"0\r\n\r\n")
            await writer.drain()

    agency = await serve(chunked)
    async with client() as http:
        assert (await http.get(agency.url)).text == "abcd" * 4
        async with http.stream("GET", agency.url) as response:
            async for _ in response.aiter_raw():
                break
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]
        assert (await http.get(agency.url)).text == "abcd" * 4
    assert agency.connections == 2


async def test_a_silent_agency_times_out_as_httpx_says(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    agency = await serve(silent)
    async with httpx.AsyncClient(transport=AgencyPool(), timeout=httpx.Timeout(0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(agency.url)
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]


async def test_an_agency_that_hangs_up_without_answering(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    agency = await serve(hang_up)
    async with client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(agency.url)


async def test_nobody_listening_is_a_connect_error() -> None:
    server = await asyncio.start_server(keep_answering, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_calls_beyond_max_connections_wait_for_a_free_one(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        await release.wait()
        writer.write(answer(b"ok"))
        await writer.drain()
        await keep_answering(reader, writer)

    agency = await serve(held)
    pool = AgencyPool(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(TIMEOUT_S)) as http:
        first = asyncio.create_task(http.get(agency.url))
        await asyncio.wait_for(arrived.wait(), TIMEOUT_S)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(agency.url, timeout=httpx.Timeout(TIMEOUT_S, pool=0.05))
        second = asyncio.create_task(http.get(agency.url))
        release.set()
        assert (await first).text == "ok"
        assert (await second).text == "ok"
    assert agency.connections == 1


async def test_header_values_cannot_split_a_header(serve: Callable[..., Awaitable[Agency]]) -> None:
    agency = await serve(keep_answering)
    async with client() as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(agency.url, headers={"X-Evil": "a\r\nX-Admin: yes"})
        assert (await http.get(agency.url)).text == "ok"


async def test_a_closed_pool_refuses_calls(serve: Callable[..., Awaitable[Agency]]) -> None:
    agency = await serve(keep_answering)
    pool = AgencyPool()
    http = httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(TIMEOUT_S))
    assert (await http.get(agency.url)).text == "ok"
    assert pool.idle_connections == 1
    await http.aclose()
    assert pool.idle_connections == 0
    with pytest.raises(RuntimeError):
        await pool.handle_async_request(httpx.Request("GET", agency.url))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), signed by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agency.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "agency.pem", folder / "agency.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_agencies_over_tls_are_verified_and_kept_alive(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_path, key_path)
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await keep_answering(reader, writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with server:
        trusting = ssl.create_default_context(cafile=str(cert_path))
        async with httpx.AsyncClient(
            transport=AgencyPool(ssl_context=trusting), timeout=httpx.Timeout(TIMEOUT_S)
        ) as http:
            for _ in range(3):
                assert (await http.get(url)).text == "ok"
        assert connections == 1
        # The default context (the system's authorities) refuses a certificate nobody signed.
        async with httpx.AsyncClient(
            transport=AgencyPool(), timeout=httpx.Timeout(TIMEOUT_S)
        ) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url)


async def test_an_answer_without_a_length_ends_with_its_connection(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()

    agency = await serve(until_close)
    async with client() as http:
        for _ in range(2):
            assert (await http.get(agency.url)).text == "all of it"
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]
    assert agency.connections == 2


async def test_an_answer_arriving_byte_by_byte_after_an_informational_one(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            for byte in b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"slow", b"X-Agency: yes"):
                writer.write(bytes([byte]))
                await writer.drain()

    agency = await serve(dribble)
    async with client() as http:
        for _ in range(2):
            response = await http.get(agency.url)
            assert response.status_code == 200
            assert response.headers["x-agency"] == "yes"
            assert response.text == "slow"
    assert agency.connections == 1  # kept between the two


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
    ids=["status", "protocol", "length"],
)
async def test_a_malformed_answer_is_a_protocol_error(
    serve: Callable[..., Awaitable[Agency]], garbage: bytes
) -> None:
    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(garbage)
        await writer.drain()
        await reader.read()

    agency = await serve(malformed)
    async with client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(agency.url)
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "headers",
    [{"X Evil": "a"}, {"X-Evil:": "a"}, {"X-Evil": "a\x00b"}, {"X-Evil": "a\nb"}],
    ids=["space-in-name", "colon-in-name", "nul", "newline"],
)
async def test_header_names_and_values_that_could_smuggle_are_refused(
    serve: Callable[..., Awaitable[Agency]], headers: dict[str, str]
) -> None:
    agency = await serve(keep_answering)
    async with client() as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(agency.url, headers=headers)
        assert (await http.get(agency.url)).text == "ok"


async def test_a_streamed_body_is_sent_chunked(serve: Callable[..., Awaitable[Agency]]) -> None:
    received: list[bytes] = []

    async def read_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(answer(b"ok"))
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b"<soap/>"
        yield b"<more/>"

    agency = await serve(read_chunked)
    async with client() as http:
        assert (await http.post(agency.url, content=parts())).text == "ok"
    assert received == [b"7\r\n<soap/>\r\n7\r\n<more/>\r\n0\r\n\r\n"]


async def test_an_answer_to_head_has_no_body_whatever_its_length(
    serve: Callable[..., Awaitable[Agency]],
) -> None:
    async def head_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 120\r\n\r\n")
        await writer.drain()
        await reader.read()

    agency = await serve(head_answer)
    async with client() as http:
        response = await http.head(agency.url)
        assert response.status_code == 200
        assert response.content == b""
        assert http._transport.idle_connections == 0  # type: ignore[attr-defined]
