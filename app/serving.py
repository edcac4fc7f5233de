"""Serving the app with uvicorn, and stopping it the way a job service must.

uvicorn, on SIGTERM, stops accepting connections at once and then runs the app's
shutdown. Clients sent here while the service stops (a load balancer has not yet taken
it out) would then see refused connections. Instead, on the first SIGTERM the service
goes on listening while its runs drain: ``/readyz`` and new submissions answer 503 with
``Retry-After``, reads and cancels still work, and once no run is running (or the drain
budget is spent) uvicorn stops as usual. A second SIGTERM, or SIGINT, ends the drain at
once; the app's shutdown then interrupts what is still running (or requeues it, per its
``max_attempts``). The exit status is 0 after SIGTERM and 130 after SIGINT.

The listening socket is bound before the app starts (before any worker is spawned), so
a port that is taken is one line and a quick exit, not a start-up wasted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.connections import guarded_protocol
from app.errors import StartupRefused
from app.settings import Settings

logger = logging.getLogger("kedro_runs")

# What a shell reports for a process that ended on Ctrl-C (128 + SIGINT): callers and
# scripts can tell "stopped by Ctrl-C" from a clean stop (0) and from a failure (1, 2).
SIGINT_EXIT_STATUS = 128 + signal.SIGINT
# After a second signal, how long requests still open (a POST /run waiting for its run)
# may go on before they are cancelled; otherwise GRACE_SECONDS.
GRACE_SECONDS = 10
STOP_NOW_GRACE_SECONDS = 1


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains (``drain()``) before it exits, and
    whose SIGINT or second SIGTERM stops at once (``stop_now()``: the drain ends, and
    nothing waits for a store that cannot write); ``end_drain()`` when it shuts down."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain: Callable[[], Awaitable[None]],
        end_drain: Callable[[], None],
        stop_now: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._end_drain = end_drain
        self._stop_now = stop_now
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether the service has begun to stop: draining, or exiting."""
        return self.draining or self.should_exit

    @property
    def exit_status(self) -> int:
        """The process's exit status once ``run`` returned: 130 when SIGINT stopped it."""
        return SIGINT_EXIT_STATUS if signal.SIGINT in self._captured_signals else 0

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            # uvicorn says where it listens only for sockets it bound itself.
            self._log_started_message(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = None
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()  # a signal handler runs on the loop's thread
        if sig == signal.SIGTERM and not self.stopping and loop is not None:
            self._captured_signals.append(sig)
            self.draining = True
            loop.call_soon_threadsafe(self._begin_drain)
            return
        if loop is not None:
            # Stop now: the drain under way (or the one the app's shutdown would start)
            # waits for no run, and nothing waits for a store that cannot write; also once
            # the app's shutdown has begun (the drain over), which may be that wait.
            loop.call_soon_threadsafe(self._stop_now)
            if not self.should_exit:  # requests still open get a second, not ten
                self.config.timeout_graceful_shutdown = STOP_NOW_GRACE_SECONDS
            logger.info("%s: stopping now", signal.Signals(sig).name)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for open requests before the app's shutdown: long polls must
        # answer now, not when their wait is up (the drain, if any, is over by now).
        self._end_drain()
        await super().shutdown(sockets)

    def _begin_drain(self) -> None:
        logger.info("SIGTERM: draining (no new runs; running ones may finish)")
        self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        except Exception:
            logger.exception("drain failed; stopping now")
        self.should_exit = True


class AddressInUse(StartupRefused):
    """The address the service is to listen on is taken."""


def bind_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host``:``port``, for uvicorn to serve once the app has
    started; connections that arrive meanwhile wait in the kernel's backlog. Listening at
    once, not only bound, makes the port ours: on Linux two sockets with SO_REUSEADDR may
    both bind a port nobody listens on, and the second would fail only after start-up.

    Raises AddressInUse, or StartupRefused for another reason the address cannot be had.
    """
    address = host.strip("[]")  # an IPv6 literal may come bracketed, as in a URL
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn and asyncio do: a restart may rebind while old connections linger.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(backlog)
    except OSError as error:
        listener.close()
        where = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
        if error.errno == errno.EADDRINUSE:
            raise AddressInUse(
                f"cannot listen on {where}: the address is in use (another kedro-runs, or "
                "another program); stop it or pass another --port"
            ) from None
        raise StartupRefused(f"cannot listen on {where}: {error.strerror}") from None
    return listener


# Descriptors the service needs besides its connections: worker pipes, the store, logs.
_DESCRIPTOR_RESERVE = 256


def ensure_descriptors(max_connections: int) -> None:
    """Raise the soft limit on open files so that ``max_connections`` connections and
    the service's own descriptors fit, as far as the hard limit allows (a warning says
    when it does not: past it, accepting a connection fails and uvicorn drops it)."""
    needed = max_connections + _DESCRIPTOR_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if wanted < needed:
            logger.warning(
                "open-file limit %d is below max_connections + %d; lower max_connections",
                wanted,
                _DESCRIPTOR_RESERVE,
            )


class QuietStartupRefusals:
    """ASGI wrapper: a start-up refused for a known reason (StartupRefused) reaches
    uvicorn without the traceback Starlette attaches, and is kept in ``refusal`` for the
    command line to print as one line. Any other start-up failure passes unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.refusal: StartupRefused | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            # Starlette sends "startup.failed" with the traceback, then re-raises: hold
            # the message until the exception says which it is.
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, holding_send)
        except StartupRefused as refusal:
            self.refusal = refusal
            await send({"type": "lifespan.startup.failed", "message": ""})
        except BaseException:
            for message in held:
                await send(message)
            raise


def serve(app: Starlette, settings: Settings, listener: socket.socket) -> int:
    """Serve ``app`` on ``listener`` (from ``bind_listener``) until a signal stops it;
    the process's exit status: 0 after SIGTERM, 130 after SIGINT, or 1 when
    start-up was refused (printed as one line on stderr)."""

    async def drain() -> None:
        service = getattr(app.state, "run_service", None)
        if service is not None:  # not yet started: nothing to drain
            await service.drain(settings.drain_seconds)

    def when_started(act: Callable[[Any], None]) -> Callable[[], None]:
        """A call of ``act(service)`` once the run service has started; before that,
        nothing (no run to stop)."""

        def call() -> None:
            service = getattr(app.state, "run_service", None)
            if service is not None:
                act(service)

        return call

    served = QuietStartupRefusals(app)
    config = uvicorn.Config(
        served,
        host=settings.host.strip("[]"),  # only for uvicorn's "running on" line
        port=listener.getsockname()[1],
        http=guarded_protocol(settings.header_timeout_seconds, settings.max_connections),
        log_level=settings.log_level,
        access_log=False,
        # Requests still open when uvicorn stops (after the drain) get this long to end.
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    server = DrainingServer(
        config,
        drain,
        end_drain=when_started(lambda service: service.end_drain()),
        stop_now=when_started(lambda service: service.stop_now()),
    )
    # Readiness and submissions answer 503 from the first SIGTERM; event streams end then
    # too, so they never hold the shutdown up.
    app.state.shutting_down = lambda: server.stopping
    try:
        server.run(sockets=[listener])
    except SystemExit:
        if served.refusal is None:
            raise
        print(f"kedro-runs: {served.refusal}", file=sys.stderr)
        return 1
    return server.exit_status
