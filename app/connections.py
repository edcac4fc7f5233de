"""Guards on connections that uvicorn lacks: a deadline on request headers, and a
bound on open connections.

uvicorn's httptools protocol arms no timer on a new connection, and its keep-alive
timer (armed once a response is sent) is cancelled by any byte received: a client that
sends one header byte every few seconds holds its connection, and a file descriptor,
for as long as it likes, and a thousand such clients exhaust the process's descriptors.
``limit_concurrency`` does not help: uvicorn checks it only once a request's headers are
complete, which such a client never reaches.

So each connection here has a header deadline: from the moment it is waiting for a
request (it opened, or its previous response ended) its request's headers must be
complete within ``header_timeout_seconds``; past it a request that has begun is answered
408 and the connection closed, and an idle one is closed without a word (a client may be
sending its next request at that very moment: a 408 would read as the answer to it). And
a connection past ``max_connections`` open is answered 503 and closed at once, before
anything is read, so the bound holds whatever the clients send. A body is the business
of the body deadline (``app.api.body_limit``), once the headers are in.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.problems import PROBLEM_MEDIA_TYPE, problem_body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection bound.
    Use ``guarded_protocol`` to make one with the service's settings."""

    header_timeout_seconds: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._request_begun = False  # bytes of a request whose headers are incomplete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # counts this one in self.connections
        if len(self.connections) > self.max_connections:
            self._refuse(
                503,
                "too-many-connections",
                "Too many connections",
                f"The service has {self.max_connections} connections open; retry shortly.",
                retry_after=1,
            )
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._request_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        self._request_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a queued request already has its headers
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.header_timeout_seconds, self._header_deadline_passed
        )

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if not self._request_begun:
            self.transport.close()
            return
        self._refuse(
            408,
            "header-timeout",
            "Request headers too slow",
            f"The request headers did not arrive within {self.header_timeout_seconds:g} seconds.",
        )

    def _refuse(
        self, status: int, code: str, title: str, detail: str, retry_after: int | None = None
    ) -> None:
        """Answer ``status`` as a problem and close the connection. Only between
        requests: no response of the connection's may be under way."""
        body = problem_body(status, code, title, detail)
        head = [
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
            f"content-type: {PROBLEM_MEDIA_TYPE}",
            f"content-length: {len(body)}",
            "connection: close",
        ]
        if retry_after is not None:
            head.append(f"retry-after: {retry_after}")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.transport.close()


def guarded_protocol(
    header_timeout_seconds: float, max_connections: int
) -> type[HttpToolsProtocol]:
    """A ``GuardedHttpToolsProtocol`` class with these limits, for ``uvicorn.Config(http=)``."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout_seconds": header_timeout_seconds, "max_connections": max_connections},
    )
