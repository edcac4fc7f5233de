"""Without API keys, serve only Host names a DNS-rebinding page cannot carry.

A keyless service trusts whoever reaches it, and relies on listening on loopback for
that to be this machine. A web page can still reach it through the visitor's browser:
its attacker points their own name at 127.0.0.1 (DNS rebinding), and the browser, which
sees the same origin, lets the page read every answer. Such a request always carries
the attacker's name in ``Host``. So, without keys, a request is served only when its
``Host`` is an IP address (nobody can rebind one), ``localhost`` or a name under
``.localhost`` (RFC 6761 reserves them for loopback: they cannot be registered, and
browsers resolve them to loopback themselves), or a name the operator listed in
``allowed_hosts``. Any other is a 421 problem. A request without ``Host`` is served: a
browser always sends one. With API keys any ``Host`` is served: a page has no key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import PROBLEM_MEDIA_TYPE, problem_body

ANY_HOST = "*"


def host_name(host_header: str) -> str:
    """The name or address of a ``Host`` value, without its port, brackets or a final
    dot, in lower case (``[::1]:8000`` -> ``::1``, ``LocalHost.:80`` -> ``localhost``)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.removesuffix(".")


def is_rebinding_proof(name: str) -> bool:
    """Whether ``name`` (from ``host_name``) cannot be pointed at this machine by
    someone else: an IP address, ``localhost`` or a ``*.localhost`` name."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheckMiddleware:
    """Answer 421 to a request whose ``Host`` is neither rebinding-proof nor in
    ``allowed_hosts`` (names, compared without port and case). Install it only without
    API keys, and not when ``allowed_hosts`` holds ``*``."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {host_name(host) for host in allowed_hosts}

    def allows(self, host_header: str) -> bool:
        name = host_name(host_header)
        return is_rebinding_proof(name) or name in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = [
            value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name == b"host" and not self.allows(value.decode("latin-1"))
        ]
        if not refused:
            await self.app(scope, receive, send)
            return
        await _misdirected(scope, send, refused[0])


async def _misdirected(scope: Scope, send: Send, host: str) -> None:
    quoted = host if len(host) <= 255 else host[:254] + "…"
    body = problem_body(
        421,
        "host-not-allowed",
        "Host not served",
        f"This service has no API keys, so it answers only requests for localhost, "
        f"*.localhost or an IP address, not for {quoted!r}: a web page could reach it under "
        "such a name (DNS rebinding). Add the name to allowed_hosts, or configure api_keys.",
        scope.get("path"),
    )
    await send(
        {
            "type": "http.response.start",
            "status": 421,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
