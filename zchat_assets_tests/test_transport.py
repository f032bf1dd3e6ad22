"""One exchange over real HTTP: the body or a `Failure` whose text never holds the token, and set-up
mistakes told apart from faults of the moment."""

import asyncio
import os
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import certifi
import pytest

from zchat_assets.api.connections import ProtocolError
from zchat_assets.api.errors import ConfigError
from zchat_assets.api.transport import Answer, Failure, Transport, _proxy, _tls, failure, setup_problem

from .conftest import TOKEN

PATH = "/api/ms/external/history/1/messages"


def exchange(url: str, read_timeout: float = 5.0) -> Answer | Failure:
    """One GET of the sandbox's messages of protocol 1 through a transport of its own."""
    async def go():
        transport = Transport(f"{url}/api/ms/external/", 4, 2.0, TOKEN)
        try:
            return await transport.get(f"{url}{PATH}?token={TOKEN}", read_timeout)
        finally:
            await transport.close()

    return asyncio.run(go())


def test_an_answer_brings_the_body_and_only_the_rate_limit_headers(sandbox):
    answer = exchange(sandbox.url)
    assert isinstance(answer, Answer) and answer.status == 200 and answer.content.startswith(b"{")
    assert all("ratelimit" in k.lower() or k.lower() == "retry-after" for k in answer.headers)


@pytest.mark.parametrize("fault", ["reset", "cut"])
def test_a_broken_answer_is_a_failure_to_retry_without_the_token(sandbox, fault):
    sandbox.app.queue_faults(fault)
    answer = exchange(sandbox.url)
    assert isinstance(answer, Failure) and answer.setup_problem is None and not answer.timed_out
    assert TOKEN not in answer.reason
    assert sandbox.app.stats.requests == 1  # sent once: a dropped connection is the requester's to retry


def test_a_slow_answer_is_a_timeout(sandbox):
    sandbox.app.queue_faults("slow")
    answer = exchange(sandbox.url, read_timeout=0.2)
    assert isinstance(answer, Failure) and answer.timed_out and TOKEN not in answer.reason


def test_a_refused_port_is_a_set_up_problem_named_without_the_token():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    answer = exchange(url)
    assert isinstance(answer, Failure) and answer.setup_problem.startswith("The connection was refused")
    assert TOKEN not in answer.reason


def test_what_https_trusts_is_built_once_per_bundle_until_the_bundle_changes(tmp_path):
    """Loading a CA bundle takes 16 ms: a fleet's step opens a client for every account."""
    certifi_bundle = _tls(True)
    assert isinstance(certifi_bundle, ssl.SSLContext) and _tls(True) is certifi_bundle
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    first = _tls(str(bundle))
    assert _tls(str(bundle)) is first
    os.utime(bundle, ns=(0, bundle.stat().st_mtime_ns + 1_000_000_000))  # replaced in place
    assert _tls(str(bundle)) is not first


def test_clients_opened_at_the_same_moment_build_what_https_trusts_once(tmp_path):
    """The datasets of a step open their clients together: one builds the context, the others take it."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    start = threading.Barrier(4)

    def open_one(_):
        start.wait()
        return _tls(str(bundle))

    with ThreadPoolExecutor(4) as pool:
        contexts = list(pool.map(open_one, range(4)))
    assert all(context is contexts[0] for context in contexts)


@pytest.mark.parametrize("exc,problem,timed_out", [
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "The TLS handshake failed", False),
    (ssl.SSLCertVerificationError("self-signed certificate"), "The TLS handshake failed", False),
    (socket.gaierror(-2, "Name or service not known"), "The API's host name does not resolve", False),
    (ConnectionRefusedError(111, "Connect call failed"), "The connection was refused", False),
    (OSError(101, "Network is unreachable"), None, False),
    (ConnectionResetError(104, "Connection reset by peer"), None, False),
    (ProtocolError(f"the connection closed before the answer was whole for {TOKEN}"), None, False),
    (ProtocolError("the answer is not valid HTTP/1.1 (invalid constant string)"), None, False),
    (TimeoutError(f"no data from the API for 5.0 s, http://x/?token={TOKEN}"), None, True),
    (asyncio.TimeoutError(), None, True),
])
def test_set_up_mistakes_are_told_apart_from_faults_of_the_moment(exc, problem, timed_out):
    found = setup_problem(exc)
    assert (found is None) if problem is None else found.startswith(problem)
    told = failure(exc, TOKEN)
    assert told.timed_out is timed_out and told.setup_problem == found and TOKEN not in told.reason


class ForwardProxy:
    """A plain-http forward proxy on a free port: it relays each absolute-form GET and keeps the paths it saw."""

    def __init__(self):
        import http.server
        import threading
        import urllib.request

        seen = self.seen = []

        class Relay(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path.split("?")[0])
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(self.path) as answer:
                    body = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_requests_go_through_the_proxy_the_environment_names(sandbox, monkeypatch):
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        answer = exchange(sandbox.url)
    finally:
        proxy.close()
    assert isinstance(answer, Answer) and answer.status == 200
    assert proxy.seen == [f"{sandbox.url}{PATH}"]


def test_a_proxy_the_client_cannot_speak_to_is_named_when_the_client_is_made(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"must be an http:// URL \(it names a https:// one\)"):
        Transport("https://zchat.example/api/ms/external/", 4, 2.0, TOKEN)


@pytest.mark.parametrize("named,https,proxy,error", [
    (None, True, None, None),
    ("proxy.corp:3128", True, "http://proxy.corp:3128", None),  # no scheme means http, as for requests
    ("HTTP://proxy.corp:3128", True, "HTTP://proxy.corp:3128", None),
    ("https://proxy.corp:3128", True, None, r"it names a https:// one\): set HTTPS_PROXY to"),
    ("socks5://proxy.corp:1080", False, None, r"it names a socks5:// one\): set HTTP_PROXY to"),
])
def test_the_proxy_is_an_http_url_or_a_clear_error_naming_its_variable(named, https, proxy, error):
    if error is None:
        assert _proxy(named, https) == proxy
    else:
        with pytest.raises(ConfigError, match=error):
            _proxy(named, https)
