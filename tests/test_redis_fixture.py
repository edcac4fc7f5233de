"""The Redis the Celery tests will use: a throwaway server starts, answers, restarts on the
same port, and is gone after close, so the fault tests can rely on it."""

from __future__ import annotations

import socket

from redis_server import ThrowawayRedis, ping


def _send(port: int, *words: str) -> bytes:
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(request.encode())
        return connection.recv(64)


def test_a_throwaway_redis_starts_restarts_empty_and_stops() -> None:
    server = ThrowawayRedis.start()
    try:
        assert server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert _send(server.port, "SET", "queued", "1") == b"+OK\r\n"
        assert _send(server.port, "GET", "queued") == b"$1\r\n1\r\n"
        server.restart()
        assert _send(server.port, "GET", "queued") == b"$-1\r\n"  # nothing survived
    finally:
        server.close()
    assert not ping(server.port)
    assert not server.directory.exists()
