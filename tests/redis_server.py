"""A Redis server of the tests' own (no pytest here): ``redis-server`` from this machine,
installed from Debian's ``redis-server`` package first where it is missing (as root with
apt-get), on a free loopback port, keeping nothing on disk.

Always a throwaway one, never the machine's 6379: the Celery fault tests restart Redis
with messages in it and flush it, which a shared server must not suffer. One starts in
milliseconds."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import debian
from support import free_port


class RedisUnavailable(Exception):
    """This machine cannot start a Redis server for the tests; the message says why."""


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        try:
            debian.install("redis-server")
        except debian.NotInstallable as error:
            raise RedisUnavailable(str(error)) from error
        found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable("redis-server is not on PATH after installing it")
    return found


def ping(port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis server on 127.0.0.1:``port`` answers PING (RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class ThrowawayRedis:
    """``redis-server`` in a temporary directory on ``port``. ``restart`` stops it and
    starts it again on the same port (what a Redis restart does to a broker's messages is
    one of the fault tests)."""

    binary: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, timeout: float = 20) -> ThrowawayRedis:
        server = cls(redis_binary(), free_port(), Path(tempfile.mkdtemp(prefix="kr-redis-")))
        server._launch(timeout)
        return server

    def _launch(self, timeout: float) -> None:
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ping(self.port):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        said = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer on {self.port}: {' '.join(said)}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its directory stays for ``restart``."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self, timeout: float = 20) -> None:
        """Stop it and start it again on the same port; it comes back empty (nothing is
        saved to disk)."""
        self.stop()
        self._launch(timeout)

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
