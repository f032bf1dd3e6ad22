"""The keep-alive connections over real sockets: every framing of an answer, reuse and its limits, broken
answers and silences, TLS and a CONNECT tunnel, each against a server that sends exactly the bytes given."""

import asyncio
import gzip
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib

import pytest

from zchat_assets.api import ClientSettings, ZchatClient, connections
from zchat_assets.api.errors import ConfigError
from zchat_assets.api.connections import ConnectionPool, ProtocolError
from zchat_assets.api.requester import new_event_loop
from zchat_assets.api.transport import Answer, Failure, Transport

from .conftest import TOKEN, WINDOW

BODY = b'{"success": true, "data": []}'
GZIPPED_TWICE = gzip.compress(BODY[:10]) + gzip.compress(BODY[10:])  # two members, one body
PATH = f"/api/ms/external/history/1/messages?token={TOKEN}"


def answer(head: str, body: bytes = BODY) -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


OK = answer(f"HTTP/1.1 200 OK\nContent-Length: {len(BODY)}\n")
LOGIN_REFUSED = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"


def serve_each(listener: socket.socket, handle) -> None:
    """Accepts on `listener` in a thread of its own until it is closed, each connection handled in a thread."""
    def accept():
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


class Scripted:
    """A server on a free port that answers each request with the next of `script`: (bytes, then) where
    then is "keep" (the connection stays open), "close", "reset" (closed with a TCP reset) or "hang"
    (nothing more is sent). A bytes item is
    sent as is; a list of them, one every `trickle` seconds. It keeps the request heads it read and counts
    connections."""

    def __init__(self, script, tls: ssl.SSLContext | None = None, trickle: float = 0.0):
        self.script, self.tls, self.trickle = queue.SimpleQueue(), tls, trickle
        for step in script:
            self.script.put(step)
        self.heads: list[bytes] = []
        self.connections, self._counting = 0, threading.Lock()
        self.closed = threading.Semaphore(0)  # released as the server closes each connection
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        serve_each(self.listener, self._serve)

    def _serve(self, sock):
        with self._counting:
            self.connections += 1
        try:
            if self.tls:
                sock = self.tls.wrap_socket(sock, server_side=True)
            with sock:
                while True:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        head += chunk
                    self.heads.append(head)
                    data, then = self.script.get_nowait()
                    for part in data if isinstance(data, list) else [data]:
                        sock.sendall(part)
                        time.sleep(self.trickle)
                    if then == "hang":
                        time.sleep(5)
                    if then == "reset":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    if then != "keep":
                        return
        except (OSError, queue.Empty, ssl.SSLError):
            return
        finally:
            self.closed.release()

    def close(self):
        self.listener.close()


def run(work):
    """Runs `work` on the event loop the client runs on (uvloop's where installed)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(work)


def transport_gets(url: str, count: int = 1) -> list:
    """`count` GETs in turn through a `Transport` of its own, which reads the environment as the client does."""
    async def go():
        transport = Transport(f"{url}/api/ms/external/", 4, 2.0, TOKEN)
        try:
            return [await transport.get(f"{url}{PATH}", 2.0) for _ in range(count)]
        finally:
            await transport.close()

    return run(go())


def through(proxy, monkeypatch) -> None:
    """The environment names `proxy` for https, and nothing bypasses it."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def gets(url: str, count: int = 1, read_timeout: float = 2.0, tls=None, proxy=None):
    """`count` GETs in turn through one pool; each result is the answer's triple or the exception raised."""
    async def go():
        pool = ConnectionPool(f"{url}/api/ms/external/", connect_timeout=2.0, tls=tls, proxy=proxy, idle=4)
        results = []
        for _ in range(count):
            try:
                results.append(await pool.get(f"{url}{PATH}", read_timeout))
            except (OSError, ProtocolError) as exc:
                results.append(exc)
        pool.close()
        return results

    return run(go())


@pytest.mark.parametrize("sent", [
    OK,
    answer("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n",
           b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, BODY[:10], len(BODY) - 10, BODY[10:])),
    answer("HTTP/1.1 200 OK\nContent-Length: 40\nContent-Encoding: gzip\n".replace("40", str(len(gzip.compress(BODY)))),
           gzip.compress(BODY)),
    answer(f"HTTP/1.1 200 OK\nContent-Length: {len(zlib.compress(BODY))}\nContent-Encoding: deflate\n",
           zlib.compress(BODY)),
    answer(f"HTTP/1.1 200 OK\nContent-Length: {len(zlib.compress(BODY)) - 6}\nContent-Encoding: deflate\n",
           zlib.compress(BODY)[2:-4]),  # raw deflate, as some servers send it
    answer(f"HTTP/1.1 200 OK\nContent-Length: {len(GZIPPED_TWICE)}\nContent-Encoding: gzip\n", GZIPPED_TWICE),
    b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\nContent-Length: 99\r\n\r\n"
    + OK,  # an interim answer first: only the last counts
], ids=["content-length", "chunked", "gzip", "deflate", "raw-deflate", "gzip-members", "interim-103"])
def test_an_answer_is_read_whatever_its_framing(sent):
    server = Scripted([(sent, "keep")])
    try:
        [(status, headers, body)] = gets(server.url)
    finally:
        server.close()
    assert (status, headers, body) == (200, {}, BODY)


def test_an_interim_answer_in_a_packet_of_its_own_is_not_taken_for_the_answer():
    """A 100 or 103 is complete in itself: taken for the answer, the real one would be the next request's."""
    final = OK
    other = answer("HTTP/1.1 200 OK\nContent-Length: 2\n", b"{}")
    server = Scripted([([b"HTTP/1.1 100 Continue\r\n\r\n", final], "keep"), (other, "keep")], trickle=0.1)
    try:
        first, second = gets(server.url, count=2)
    finally:
        server.close()
    assert first == (200, {}, BODY) and second == (200, {}, b"{}") and server.connections == 1


@pytest.mark.parametrize("head", [
    "HTTP/1.1 204 No Content\nContent-Encoding: gzip\n",
    "HTTP/1.1 429 Too Many Requests\nRetry-After: 3\nContent-Encoding: deflate\nContent-Length: 0\n",
])
def test_an_empty_body_that_names_an_encoding_is_empty(head):
    server = Scripted([(answer(head, b""), "keep")])
    try:
        [(status, headers, body)] = gets(server.url)
    finally:
        server.close()
    assert body == b"" and status in (204, 429) and headers == ({"retry-after": "3"} if status == 429 else {})


def test_a_body_without_a_length_ends_with_the_connection():
    server = Scripted([(answer("HTTP/1.1 200 OK\n"), "close"), (OK, "keep")])
    try:
        results = gets(server.url, count=2)
    finally:
        server.close()
    assert [r[2] for r in results] == [BODY, BODY] and server.connections == 2


def test_only_the_rate_limit_headers_are_kept_and_the_request_says_what_it_wants():
    sent = answer(f"HTTP/1.1 429 Too Many Requests\nServer: x\nX-RateLimit-Remaining: 0\nRetry-After: 2\n"
                  f"Content-Length: {len(BODY)}\n")
    server = Scripted([(sent, "keep")])
    try:
        [(status, headers, _)] = gets(server.url)
    finally:
        server.close()
    assert status == 429 and headers == {"x-ratelimit-remaining": "0", "retry-after": "2"}
    head = server.heads[0].decode()
    assert head.startswith(f"GET {PATH} HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n" in head and "\r\nAccept-Encoding: gzip, deflate\r\n" in head


@pytest.mark.parametrize("head,connections", [
    ("HTTP/1.1 200 OK", 1),  # kept alive: both requests on one connection
    ("HTTP/1.1 200 OK\nConnection: close", 2),
    ("HTTP/1.0 200 OK", 2),
])
def test_a_connection_is_reused_only_when_the_answer_allows(head, connections):
    sent = answer(f"{head}\nContent-Length: {len(BODY)}\n")
    server = Scripted([(sent, "keep"), (sent, "keep")])
    try:
        results = gets(server.url, count=2)
    finally:
        server.close()
    assert [r[2] for r in results] == [BODY, BODY] and server.connections == connections


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    sent = OK
    server = Scripted([(sent, "close"), (sent, "keep")])

    async def go():
        pool = ConnectionPool(f"{server.url}/api/", connect_timeout=2.0, tls=None, proxy=None, idle=4)
        first = await pool.get(f"{server.url}{PATH}", 2.0)
        assert await asyncio.to_thread(server.closed.acquire, timeout=5)
        await asyncio.sleep(0.1)  # the server's close reaches the client's loop
        second = await pool.get(f"{server.url}{PATH}", 2.0)
        pool.close()
        return first, second

    try:
        first, second = run(go())
    finally:
        server.close()
    assert first[2] == second[2] == BODY and server.connections == 2


@pytest.mark.parametrize("sent,then,says", [
    (answer("HTTP/1.1 200 OK\nContent-Length: 500\n"), "close", "closed before the answer was whole"),
    (answer("HTTP/1.1 200 OK\n"), "reset", "closed before the answer was whole"),  # no length, and no clean end
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "keep", "not valid HTTP/1.1"),
    (answer("HTTP/1.1 200 OK\nContent-Length: 4\nContent-Encoding: gzip\n", b"oops"), "keep", "could not be decompressed"),
    (answer(f"HTTP/1.1 200 OK\nContent-Length: {len(BODY)}\nContent-Encoding: br\n"), "keep", "could not be decompressed"),
    (answer("HTTP/1.1 200 OK\nContent-Length: 20\nContent-Encoding: gzip\n", gzip.compress(BODY)[:20]), "keep",
     "could not be decompressed"),  # whole as HTTP, a stream cut short inside
    (answer("HTTP/1.1 200 OK\nContent-Length: 12\nContent-Encoding: deflate\n", zlib.compress(BODY)[:12]), "keep",
     "could not be decompressed"),
], ids=["cut", "reset-without-length", "not-http", "bad-gzip", "unasked-encoding", "cut-gzip", "cut-deflate"])
def test_a_broken_answer_is_an_error_without_the_token_and_the_next_request_gets_a_new_connection(sent, then, says):
    good = OK
    server = Scripted([(sent, then), (good, "keep")])
    try:
        broken, after = gets(server.url, count=2)
    finally:
        server.close()
    assert isinstance(broken, ProtocolError) and says in str(broken) and TOKEN not in str(broken)
    assert after[2] == BODY and server.connections == 2


def test_the_read_timeout_is_a_silence_not_a_total():
    parts = [answer(f"HTTP/1.1 200 OK\nContent-Length: {len(BODY)}\n", b"")] + [BODY[i:i + 4] for i in range(0, len(BODY), 4)]
    server = Scripted([(parts, "keep")], trickle=0.1)  # 0.1 s between parts, 0.9 s in all
    try:
        [(status, _, body)] = gets(server.url, read_timeout=0.5)
    finally:
        server.close()
    assert (status, body) == (200, BODY)


def test_a_silent_answer_times_out_and_its_connection_is_dropped():
    good = OK
    server = Scripted([(answer("HTTP/1.1 200 OK\nContent-Length: 500\n", b"{"), "hang"), (good, "keep")])
    try:
        started = time.monotonic()
        silent, after = gets(server.url, count=2, read_timeout=0.3)
    finally:
        server.close()
    assert isinstance(silent, TimeoutError) and time.monotonic() - started < 3
    assert after[2] == BODY and server.connections == 2


def test_a_connection_lost_as_it_waited_fails_the_request_instead_of_writing():
    """uvloop raises on a write to a lost connection: that would escape the transport's failures."""
    class Lost:
        def is_closing(self):
            return True

    async def go():
        connection = connections._Connection(asyncio.get_running_loop())
        connection.connection_made(Lost())
        await connection.exchange(b"GET / HTTP/1.1\r\n\r\n", 1.0)

    with pytest.raises(ProtocolError, match="closed before the request was sent"):
        run(go())


def test_a_request_cancelled_mid_answer_does_not_leave_its_connection_for_the_next():
    good = OK
    server = Scripted([(answer("HTTP/1.1 200 OK\nContent-Length: 500\n", b"{"), "hang"), (good, "keep")])

    async def go():
        pool = ConnectionPool(f"{server.url}/api/", connect_timeout=2.0, tls=None, proxy=None, idle=4)
        first = asyncio.ensure_future(pool.get(f"{server.url}{PATH}", 5.0))
        await asyncio.sleep(0.2)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = await pool.get(f"{server.url}{PATH}", 2.0)
        pool.close()
        return second

    try:
        second = run(go())
    finally:
        server.close()
    assert second[2] == BODY and server.connections == 2


def test_closing_the_pool_fails_an_answer_still_coming_rather_than_cutting_it():
    """A body without a length ends with the connection: one the client closes is not a whole body."""
    server = Scripted([([answer("HTTP/1.1 200 OK\n", BODY[:10]), BODY[10:]], "close")], trickle=1.0)

    async def go():
        pool = ConnectionPool(f"{server.url}/api/", connect_timeout=2.0, tls=None, proxy=None, idle=4)
        coming = asyncio.ensure_future(pool.get(f"{server.url}{PATH}", 5.0))
        await asyncio.sleep(0.3)
        pool.close()
        with pytest.raises(ProtocolError, match="closed by the client"):
            await coming

    try:
        run(go())
    finally:
        server.close()


def test_a_connection_idle_too_long_is_not_used_again(monkeypatch):
    monkeypatch.setattr(connections, "IDLE_SECONDS", 0.5)
    sent = OK
    server = Scripted([(sent, "keep"), (sent, "keep"), (sent, "keep")])

    async def go():
        pool = ConnectionPool(f"{server.url}/api/", connect_timeout=2.0, tls=None, proxy=None, idle=4)
        await pool.get(f"{server.url}{PATH}", 2.0)
        await pool.get(f"{server.url}{PATH}", 2.0)  # at once: the same connection
        await asyncio.sleep(0.7)
        await pool.get(f"{server.url}{PATH}", 2.0)
        pool.close()

    try:
        run(go())
    finally:
        server.close()
    assert server.connections == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests make their certificate with the openssl command: install it (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    return cert, server_side


class TunnelProxy:
    """A proxy on a free port that opens CONNECT tunnels (relaying bytes both ways) and keeps the heads it read."""

    def __init__(self, refuse: bytes = b""):
        self.heads: list[bytes] = []
        self.refuse = refuse  # an answer to CONNECT other than 200, if given
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://user:p%40ss@127.0.0.1:{self.listener.getsockname()[1]}"
        serve_each(self.listener, self._tunnel)

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        self.heads.append(head)
        if self.refuse:
            client.sendall(self.refuse)
            client.close()
            return
        host, port = head.split()[1].decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()
        self._relay(client, upstream)

    @staticmethod
    def _relay(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self):
        self.listener.close()


def test_https_trusts_the_bundle_it_is_given(certificate):
    cert, server_side = certificate
    server = Scripted([(OK, "keep")], tls=server_side)
    try:
        [(status, _, body)] = gets(server.url, tls=ssl.create_default_context(cafile=cert))
    finally:
        server.close()
    assert (status, body) == (200, BODY)


def test_an_untrusted_certificate_is_a_set_up_problem_without_the_token(certificate, monkeypatch):
    _, server_side = certificate
    server = Scripted([(OK, "keep")], tls=server_side)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)

    try:
        [told] = transport_gets(server.url)
    finally:
        server.close()
    assert isinstance(told, Failure) and told.setup_problem.startswith("The TLS handshake failed")
    assert TOKEN not in told.reason


def test_https_through_a_proxy_goes_in_a_tunnel_the_proxy_cannot_read(certificate, monkeypatch):
    cert, server_side = certificate
    server = Scripted([(OK, "keep")] * 2, tls=server_side)
    proxy = TunnelProxy()
    through(proxy, monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))

    try:
        answers = transport_gets(server.url, count=2)
    finally:
        server.close()
        proxy.close()
    assert all(isinstance(a, Answer) and a.content == BODY for a in answers)
    assert len(proxy.heads) == 1 and server.connections == 1  # one tunnel, kept alive for both
    head = proxy.heads[0].decode()
    assert head.startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\n")
    assert "\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n" in head  # user:p@ss
    assert TOKEN not in head and TOKEN in server.heads[0].decode()


def test_a_proxy_that_refuses_the_login_is_a_set_up_problem(certificate, monkeypatch):
    _, server_side = certificate
    server = Scripted([], tls=server_side)
    proxy = TunnelProxy(refuse=LOGIN_REFUSED)
    through(proxy, monkeypatch)

    try:
        [told] = transport_gets(server.url)
    finally:
        server.close()
        proxy.close()
    assert isinstance(told, Failure) and "(HTTP 407)" in told.setup_problem and TOKEN not in told.reason
    assert told.hint.startswith("check the login in HTTPS_PROXY")


def test_the_client_names_the_proxy_not_the_base_url_when_the_proxy_refuses(certificate, monkeypatch):
    _, server_side = certificate
    server = Scripted([], tls=server_side)
    proxy = TunnelProxy(refuse=LOGIN_REFUSED)
    through(proxy, monkeypatch)
    try:
        with ZchatClient(TOKEN, ClientSettings(base_url=server.url)) as client, \
                pytest.raises(ConfigError, match=r"^The proxy refused to open a tunnel to 127\.0\.0\.1:\d+ \(HTTP 407\) calling ") as told:
            list(client.history_pages(*WINDOW))
    finally:
        server.close()
        proxy.close()
    assert "check the login in HTTPS_PROXY" in str(told.value) and "base URL" not in str(told.value)
    assert TOKEN not in str(told.value) and len(proxy.heads) == 1  # refused once: not retried
