"""One exchange over real HTTP: the body or a `Failure` whose text never holds the token, and set-up
mistakes told apart from faults of the moment."""

import socket

import pytest
from urllib3.exceptions import (ConnectTimeoutError, NameResolutionError, NewConnectionError, ProtocolError,
                                ReadTimeoutError, SSLError)

from zchat_assets.api.transport import Answer, Failure, Transport, failure, setup_problem

from .conftest import TOKEN

PATH = "/api/ms/external/history/1/messages"


def transport(url: str, connect_timeout: float = 2.0) -> Transport:
    return Transport(f"{url}/api/ms/external/", 4, connect_timeout, TOKEN)


def test_an_answer_brings_the_body_and_only_the_rate_limit_headers(sandbox):
    answer = transport(sandbox.url).get(f"{sandbox.url}{PATH}?token={TOKEN}", 5.0)
    assert isinstance(answer, Answer) and answer.status == 200 and answer.content.startswith(b"{")
    assert all("ratelimit" in k.lower() or k.lower() == "retry-after" for k in answer.headers)


@pytest.mark.parametrize("fault", ["reset", "cut"])
def test_a_broken_answer_is_a_failure_to_retry_without_the_token(sandbox, fault):
    sandbox.app.queue_faults(fault)
    answer = transport(sandbox.url).get(f"{sandbox.url}{PATH}?token={TOKEN}", 5.0)
    assert isinstance(answer, Failure) and answer.setup_problem is None and not answer.timed_out
    assert TOKEN not in answer.reason


def test_a_slow_answer_is_a_timeout(sandbox):
    sandbox.app.queue_faults("slow")
    answer = transport(sandbox.url).get(f"{sandbox.url}{PATH}?token={TOKEN}", 0.2)
    assert isinstance(answer, Failure) and answer.timed_out and TOKEN not in answer.reason


def test_a_refused_port_is_a_set_up_problem_named_without_the_token():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    answer = transport(url).get(f"{url}{PATH}?token={TOKEN}", 1.0)
    assert isinstance(answer, Failure) and answer.setup_problem.startswith("The connection was refused")
    assert TOKEN not in answer.reason


URL = f"http://x/?token={TOKEN}"


@pytest.mark.parametrize("exc,problem,timed_out", [
    (SSLError("wrong version number"), "The TLS handshake failed", False),
    (NameResolutionError("zchat.invalid", None, OSError("gaierror")), "The API's host name does not resolve", False),
    (NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused"),
     "The connection was refused", False),
    (NewConnectionError(None, "Failed to establish a new connection: [Errno 101] Network is unreachable"), None,
     False),
    (ProtocolError("Connection aborted.", ConnectionResetError("reset by peer")), None, False),
    (ConnectTimeoutError(None, f"timed out connecting for {URL}"), None, True),
    (ReadTimeoutError(None, URL, "Read timed out."), None, True),
    (ConnectionResetError("reset"), None, False),
])
def test_set_up_mistakes_are_told_apart_from_faults_of_the_moment(exc, problem, timed_out):
    found = setup_problem(exc)
    assert (found is None) if problem is None else found.startswith(problem)
    told = failure(exc, TOKEN)
    assert told.timed_out is timed_out and told.setup_problem == found and TOKEN not in told.reason
