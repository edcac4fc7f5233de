"""A cap on request bodies: uvicorn and Starlette have none.

Pure ASGI middleware: a declared ``Content-Length`` over the cap is refused at
once; a chunked body is counted as it arrives and refused the moment it passes.
A body with a ``Content-Encoding`` (gzip, deflate, ...) is refused with 415: the
service never decompresses, so a small compressed body cannot expand past the cap.
Headers over ``MAX_HEADER_BYTES`` in all are a 431 and a URL (path and query) over
``MAX_URL_BYTES`` a 414: uvicorn's httptools parser sets no limit of its own.
A body that has not fully arrived ``timeout_seconds`` after the request began (a
slow-loris client) is a 408: uvicorn has no body read timeout either.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

MAX_HEADER_BYTES = 32 * 1024
MAX_URL_BYTES = 32 * 1024  # uvicorn itself answers 400 past 64 KiB


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body. An HTTPException, so a framework that reads
    the body re-raises it instead of turning it into a 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than {max_bytes} bytes.")


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"The request body did not arrive within {seconds:g} seconds.")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _oversized(scope)
        if refusal is not None:
            await _refuse(scope, send, *refusal)
            return
        encoding = _header(scope, b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in {b"", b"identity"}:
            await _refuse(
                scope,
                send,
                415,
                "unsupported-encoding",
                "Unsupported content encoding",
                "Request bodies must not be compressed or encoded (Content-Encoding); "
                "send plain JSON.",
            )
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, send)
            return
        received = 0
        response_started = False
        body_done = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for a disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyTooSlow(self.timeout_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._too_large(scope, send)
        except BodyTooSlow as slow:
            if not response_started:
                await _refuse(
                    scope, send, 408, "body-timeout", "Request body too slow", slow.detail
                )

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await _refuse(
            scope,
            send,
            413,
            "body-too-large",
            "Request body too large",
            f"The request body is larger than {self.max_bytes} bytes.",
        )


async def _refuse(
    scope: Scope, send: Send, status: int, code: str, title: str, detail: str
) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path"),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _oversized(scope: Scope) -> tuple[int, str, str, str] | None:
    headers = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
    if headers > MAX_HEADER_BYTES:
        return (
            431,
            "headers-too-large",
            "Request headers too large",
            f"The request headers are larger than {MAX_HEADER_BYTES} bytes in all.",
        )
    url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if url > MAX_URL_BYTES:
        return 414, "uri-too-long", "URI too long", f"The URL is longer than {MAX_URL_BYTES} bytes."
    return None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
