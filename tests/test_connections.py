"""Connections that hold the service without sending a request: a deadline on request
headers, and a bound on open connections (app/connections.py), over real sockets."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServiceProcess

HEADER_TIMEOUT = 2.0


@pytest.fixture
def service(project: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        project,
        workers=1,
        env={"KEDRO_RUNS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)},
    ).start()
    yield process
    process.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes, waiting at most ``seconds``."""
    reply = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return reply
            if not chunk:
                return reply
            reply += chunk
    raise AssertionError(f"still open after {seconds} s; got {reply!r}")


def _read_response(sock: socket.socket) -> bytes:
    """One whole response with a content-length (its head and body may come apart)."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        assert chunk, f"closed mid-response: {reply!r}"
        reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, f"closed mid-body: {reply!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_headers_sent_a_byte_at_a_time_are_cut_off_while_others_are_served(
    service: ServiceProcess,
) -> None:
    slow = _connect(service.port)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    reply = b""
    served_meanwhile = 0
    while time.monotonic() - started < 15:  # bounded: the deadline is 2 s
        with contextlib.suppress(OSError):  # closed under us: the reply says why
            slow.send(b"a")
        readable, _, _ = select.select([slow], [], [], 0.5)
        if readable:
            reply = _read_until_closed(slow, 5)
            break
        assert service.client.get("/healthz").status_code == 200
        served_meanwhile += 1
    elapsed = time.monotonic() - started
    slow.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"application/problem+json" in reply
    assert b"header-timeout" in reply
    assert elapsed < HEADER_TIMEOUT + 3, f"cut off after {elapsed:.1f} s"
    assert served_meanwhile >= 1  # a normal client was answered while it trickled


def test_a_connection_that_sends_nothing_is_closed_without_a_word(
    service: ServiceProcess,
) -> None:
    idle = _connect(service.port)
    started = time.monotonic()
    assert _read_until_closed(idle, HEADER_TIMEOUT + 5) == b""
    assert time.monotonic() - started >= HEADER_TIMEOUT - 0.5
    idle.close()
    # A connection that is used again after its response gets the deadline anew.
    with _connect(service.port) as reused:
        reused.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reused.settimeout(10)
        assert _read_response(reused).startswith(b"HTTP/1.1 200 ")
        reused.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert _read_until_closed(reused, HEADER_TIMEOUT + 5).startswith(b"HTTP/1.1 408 ")


def test_connections_past_the_bound_are_refused_and_the_service_stays_up(
    project: Path,
) -> None:
    bound = 20
    service = ServiceProcess(
        project,
        workers=1,
        env={"KEDRO_RUNS_MAX_CONNECTIONS": str(bound), "KEDRO_RUNS_HEADER_TIMEOUT_SECONDS": "60"},
    ).start()
    try:
        service.client.close()  # its keep-alive connection would count
        idle = [_connect(service.port) for _ in range(bound + 5)]
        try:
            refused, still_open = [], []
            for sock in idle:
                sock.settimeout(2)
                try:
                    reply = sock.recv(4096)
                except TimeoutError:
                    still_open.append(sock)
                    continue
                refused.append(reply)
            assert bound - 1 <= len(still_open) <= bound
            assert refused, "no connection was refused past the bound"
            for reply in refused:
                assert reply.startswith(b"HTTP/1.1 503 "), reply
                assert b"retry-after: 1" in reply
                assert b"too-many-connections" in reply
        finally:
            for sock in idle:
                sock.close()
        # Once those are gone, clients are served again: the bound cost nothing else.
        with httpx.Client(base_url=service.url, timeout=10) as client:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "not served after the idle clients left"
                time.sleep(0.1)
        assert service.process is not None
        assert service.process.poll() is None
    finally:
        service.stop()
