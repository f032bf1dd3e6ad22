"""Keep-alive HTTP/1.1 connections to the API's host, for GETs: the hot path of a day's messages.

A day is tens of thousands of small GETs to one host, a hundred in flight. aiohttp's session spent about
0.19 ms of CPU on each (its request and response objects, multidicts, cookie jar, tracing hooks); a
connection here writes one request head and feeds the answer to httptools' C parser (llhttp, the parser
of Node.js and uvicorn), for less than half of that (docs/performance.md). Only what the client needs is
spoken: GET, keep-alive, bodies by Content-Length, chunked or up to the close, gzip and deflate, TLS,
and an http proxy, forwarding (an http API) or tunnelling with CONNECT (https).

A request is never sent twice here: a connection that drops under it is a failure for the requester's
policy to retry and count. Nothing raised here holds the URL (and so the token).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import ssl
import zlib
from urllib.parse import unquote, urlsplit

import httptools


class ProtocolError(Exception):
    """The answer broke HTTP/1.1, or the connection closed before it was whole."""


class ProxyRefused(ProtocolError):
    """The proxy answered CONNECT with something other than 200."""

    def __init__(self, status: int, target: str):
        super().__init__(f"the proxy refused to open a tunnel to {target} (HTTP {status})")
        self.status = status


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the answer it is reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future | None = None
        self._tunnel = False  # reading a proxy's answer to CONNECT: its head is the whole of it
        self._timer: asyncio.TimerHandle | None = None

    # the exchange
    async def exchange(self, head: bytes, read_timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """Sends `head` and waits for the answer: (status, rate-limit headers, body, reusable). Times out
        when nothing at all arrives for `read_timeout` seconds, as a socket read would."""
        self._parser = httptools.HttpResponseParser(self)
        self._begin()
        if self.closed or self.transport.is_closing():  # lost as it waited: writing would raise, not fail
            raise ProtocolError("the connection closed before the request was sent")
        self._waiter = self._loop.create_future()
        self._read_timeout, self._heard = read_timeout, self._loop.time()
        self._timer = self._loop.call_at(self._heard + read_timeout, self._check_silence)
        self.transport.write(head)
        try:
            return await self._waiter
        finally:
            self._timer.cancel()
            self._waiter, self._body = None, []  # an idle connection holds no answer

    def _begin(self) -> None:
        """Forgets what an answer told: before a request, and after an interim answer (100, 103)."""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._encoding = b""
        self._sized = False  # Content-Length or chunked: else the body ends with the connection
        self._headed = False  # the answer's head was read whole

    async def tunnel(self, head: bytes, read_timeout: float) -> int:
        """Sends a CONNECT `head` to the proxy; its status (the bytes after its head are the host's)."""
        self._tunnel = True
        try:
            return (await self.exchange(head, read_timeout))[0]
        finally:
            self._tunnel = False

    def abort(self) -> None:
        """Drops the connection; an answer still awaited on it fails (a body cut here is not whole)."""
        self.closed = True
        self._fail(ProtocolError("the connection was closed by the client"))
        if self.transport is not None:
            self.transport.abort()

    def _check_silence(self) -> None:
        silent = self._loop.time() - self._heard
        if silent < self._read_timeout:
            self._timer = self._loop.call_at(self._heard + self._read_timeout, self._check_silence)
            return
        self._fail(TimeoutError(f"no data from the API for {self._read_timeout:.1f} s"))
        self.abort()

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # bytes nobody asked for: the connection is not to be trusted
            self.abort()
            return
        self._heard = self._loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(ProtocolError(f"the answer is not valid HTTP/1.1 ({exc})"))
            self.abort()

    def eof_received(self) -> None:
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if exc is None and self._headed and not self._sized and not self._tunnel:
            self._complete(reusable=False)  # a body without a length ends with the connection, closed cleanly
        else:
            self._fail(ProtocolError("the connection closed before the answer was whole"
                                     + (f" ({type(exc).__name__}: {exc})" if exc else "")))

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self._sized = True
        elif name == b"content-encoding":
            self._encoding = value.strip().lower()
        elif b"ratelimit" in name or name == b"retry-after":
            self._headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._interim():
            return
        self._headed = True
        if self._tunnel:
            self._waiter.set_result((self._parser.get_status_code(), {}, b"", True))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._interim():
            self._begin()  # the parser goes on to the real answer
        elif not self._tunnel:
            self._complete(reusable=self._parser.should_keep_alive())

    def _interim(self) -> bool:
        return 100 <= self._parser.get_status_code() < 200

    def _complete(self, reusable: bool) -> None:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        try:
            body = _decoded(body, self._encoding)
        except (zlib.error, OSError, EOFError, ProtocolError) as exc:
            self._fail(ProtocolError(f"the body could not be decompressed ({exc})"))
            return
        if not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), self._headers, body, reusable))


def _decoded(body: bytes, encoding: bytes) -> bytes:
    """The body as sent before its Content-Encoding; a compressed stream cut short is an error, not a shorter body."""
    if not body or not encoding or encoding == b"identity":  # a 204, a 304 or an empty 429 may still name one
        return body
    if encoding in (b"gzip", b"x-gzip"):
        return gzip.decompress(body)  # every member, and EOFError for a cut one
    if encoding == b"deflate":
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):  # zlib-wrapped as the standard says, or raw as some send it
            inflater = zlib.decompressobj(wbits)
            try:
                whole = inflater.decompress(body) + inflater.flush()
            except zlib.error:
                continue
            if inflater.eof and not inflater.unused_data:
                return whole
        raise ProtocolError("a deflate body cut short, or not deflate")
    raise ProtocolError(f"Content-Encoding {encoding.decode('latin-1')} was not asked for")


# A connection that waited longer is not used again: a server closes those it keeps (after 5 to 75 s, as
# set), and one that closes as a request is written on it makes that request fail. aiohttp's figure.
IDLE_SECONDS = 15.0


class ConnectionPool:
    """GETs of URLs under `root` over kept-alive connections to its host, directly or through an http
    `proxy`; `tls` is what an https root trusts. Keeps at most `idle` connections waiting; how many are open
    at once is the requester's in-flight limit. Use it on one event loop."""

    def __init__(self, root: str, *, connect_timeout: float, tls: ssl.SSLContext | None, proxy: str | None,
                 idle: int):
        parts = urlsplit(root)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or (443 if self._https else 80)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        authority = parts.netloc.rpartition("@")[2]
        tunnel_to = f"[{self._host}]:{self._port}" if ":" in self._host else f"{self._host}:{self._port}"
        self._tls = tls
        self._connect_timeout, self._idle_max = connect_timeout, idle
        self._proxy = urlsplit(proxy) if proxy else None
        proxy_login = _proxy_login(self._proxy)
        self._forwarding = self._proxy is not None and not self._https
        self._fixed = (f"Host: {authority}\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
                       f"User-Agent: zchat-assets\r\n{proxy_login if self._forwarding else ''}\r\n")
        self._connect_head = f"CONNECT {tunnel_to} HTTP/1.1\r\nHost: {tunnel_to}\r\n{proxy_login}\r\n".encode()
        self._idle: list[tuple[float, _Connection]] = []  # (since when, connection), the latest last
        self._open: set[_Connection] = set()

    async def get(self, url: str, read_timeout: float) -> tuple[int, dict[str, str], bytes]:
        """(status, rate-limit headers, body) of one GET of `url` (absolute, its query already encoded)."""
        target = url if self._forwarding else url[len(self._origin):]
        head = f"GET {target} HTTP/1.1\r\n{self._fixed}".encode()
        connection = self._reused() or await self._connect()
        try:
            status, headers, body, reusable = await connection.exchange(head, read_timeout)
        except BaseException:  # a timeout, a broken answer, or cancelled mid-answer: the connection is spent
            self._drop(connection)
            raise
        if reusable and not connection.closed and len(self._idle) < self._idle_max:
            self._idle.append((asyncio.get_running_loop().time(), connection))
        else:
            self._drop(connection)
        return status, headers, body

    def close(self) -> None:
        for connection in list(self._open):
            self._drop(connection)
        self._idle.clear()

    def _reused(self) -> _Connection | None:
        """The connection that waited least, if one is still open and waited less than IDLE_SECONDS."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            since, connection = self._idle.pop()
            if not connection.closed and now - since < IDLE_SECONDS:
                return connection
            self._drop(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = (self._proxy.hostname, self._proxy.port or 80) if self._proxy else (self._host, self._port)
        direct_tls = self._tls if self._proxy is None else None
        async with asyncio.timeout(self._connect_timeout):
            _, connection = await loop.create_connection(
                lambda: _Connection(loop), host, port, ssl=direct_tls,
                server_hostname=self._host if direct_tls else None)
        self._open.add(connection)
        if self._proxy is not None and self._https:
            try:
                await self._through(connection, loop)
            except BaseException:
                self._drop(connection)
                raise
        return connection

    async def _through(self, connection: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Opens a CONNECT tunnel to the API's host through the proxy, then TLS inside it."""
        status = await connection.tunnel(self._connect_head, self._connect_timeout)
        if status != 200:
            raise ProxyRefused(status, f"{self._host}:{self._port}")
        async with asyncio.timeout(self._connect_timeout):
            connection.transport = await loop.start_tls(connection.transport, connection, self._tls,
                                                        server_hostname=self._host)

    def _drop(self, connection: _Connection) -> None:
        connection.abort()
        self._open.discard(connection)


def _proxy_login(proxy) -> str:
    """The Proxy-Authorization header line of a proxy URL with a user (http://user:secret@host:port)."""
    if proxy is None or proxy.username is None:
        return ""
    login = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return f"Proxy-Authorization: Basic {base64.b64encode(login.encode()).decode()}\r\n"
