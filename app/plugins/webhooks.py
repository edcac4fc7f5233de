"""The built-in webhook plugin: POSTs each run's end to URLs from the server's settings
(never from a request), signed by the Standard Webhooks scheme
(https://www.standardwebhooks.com), with short timeouts and a few retries.

The signature covers an id, a timestamp and the body (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), so a receiver that checks the timestamp
against its clock and remembers ids seen refuses a captured delivery sent again. The id
is derived from the run and the event, so every attempt of one delivery carries the same
id (receivers dedupe on it); each attempt is signed afresh with its own timestamp.

Deliveries happen on a thread of their own with a bounded queue, so a slow or dead
receiver never holds up the event loop, a run or the service's shutdown (what is still
queued when the service stops is logged and dropped).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from app.plugins.markers import hook_impl

logger = logging.getLogger("kedro_runs.webhooks")

_QUEUE_SIZE = 10_000
SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: a Standard Webhooks secret (``whsec_`` and base64)
    is its decoded bytes; any other string is its UTF-8 bytes (receivers then verify
    with ``whsec_`` + base64 of it)."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
    return secret.encode()


def log_target(url: str) -> str:
    """How logs name a webhook URL: ``scheme://host[:port]`` only, since the rest of
    a Slack or Discord URL is its credential (the whole URL is a known secret too)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def delivery_id(run_id: str, event: str) -> str:
    """The ``webhook-id`` of one delivery: the same on every attempt of it."""
    return f"{event}_{run_id}"


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{digest}",
    }


class WebhookPlugin:
    def __init__(self, urls: list[str], secret: str, timeout_seconds: float, retries: int) -> None:
        self._urls = urls
        self._key = signing_key(secret)
        self._timeout = timeout_seconds
        self._retries = retries
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(_QUEUE_SIZE)
        self._thread = threading.Thread(
            target=self._deliver_all, daemon=True, name="webhook-deliveries"
        )
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(drain_seconds)

    @hook_impl
    def run_finished(
        self,
        run_id: str,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
        error: dict[str, str] | None,
    ) -> None:
        body = json.dumps(
            {
                "run_id": run_id,
                "status": status,
                "pipeline_names": pipeline_names,
                "started_at": started_at.isoformat() if started_at else None,
                "finished_at": finished_at.isoformat(),
                "error": error,
            },
            sort_keys=True,
        ).encode()
        try:
            self._queue.put_nowait((delivery_id(run_id, "run_finished"), body))
        except queue.Full:
            logger.error("webhook queue full; the end of run %s is not delivered", run_id)

    def _deliver_all(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                for url in self._urls:
                    self._deliver(client, url, *delivery)

    def _deliver(self, client: httpx.Client, url: str, message_id: str, body: bytes) -> None:
        target = log_target(url)
        for attempt in range(self._retries + 1):
            if attempt and self._stopping.wait(0.2 * 2 ** (attempt - 1)):
                break  # the service is stopping: no more back-off
            headers = {
                "content-type": "application/json",
                **signed_headers(self._key, message_id, int(time.time()), body),
            }
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                logger.warning(
                    "webhook %s: %s (attempt %d)", target, type(error).__name__, attempt + 1
                )
                continue
            if response.status_code < 500:
                if response.status_code >= 400:
                    logger.warning(
                        "webhook %s refused a delivery: HTTP %d", target, response.status_code
                    )
                return
            logger.warning(
                "webhook %s: HTTP %d (attempt %d)", target, response.status_code, attempt + 1
            )
        logger.error("webhook %s: gave up on a delivery after %d attempt(s)", target, attempt + 1)
