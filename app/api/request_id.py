"""X-Request-ID: taken from the request when it is a sane token, made up otherwise,
returned on the response, and attached to every log record of the request."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.redaction import redact_shapes

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(HEADER, b"").decode("latin-1")
        # A secret-shaped id (``password:...``) is replaced too: ids are logged and echoed.
        # By shapes only: were an id equal to one of the server's secrets replaced, the
        # answer would tell a right guess from a wrong one (logs mask it anyway).
        sane = _SANE.fullmatch(given) and redact_shapes(given) == given
        request_id = given if sane else uuid.uuid4().hex
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
