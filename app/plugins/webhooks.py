"""The built-in webhook plugin: POSTs each run's end to URLs from the server's settings
(never from a request), signed with HMAC-SHA256, with short timeouts and a few retries.

Deliveries happen on a thread of their own with a bounded queue, so a slow or dead
receiver never holds up the event loop, a run or the service's shutdown (what is still
queued when the service stops is logged and dropped).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
from datetime import datetime

import httpx

from app.plugins.markers import hook_impl

logger = logging.getLogger("kedro_runs.webhooks")

SIGNATURE_HEADER = "X-Kedro-Runs-Signature"
_QUEUE_SIZE = 10_000


def signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookPlugin:
    def __init__(
        self, urls: list[str], secret: bytes, timeout_seconds: float, retries: int
    ) -> None:
        self._urls = urls
        self._secret = secret
        self._timeout = timeout_seconds
        self._retries = retries
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_SIZE)
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
            self._queue.put_nowait(body)
        except queue.Full:
            logger.error("webhook queue full; the end of run %s is not delivered", run_id)

    def _deliver_all(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                body = self._queue.get()
                if body is None:
                    return
                for url in self._urls:
                    self._deliver(client, url, body)

    def _deliver(self, client: httpx.Client, url: str, body: bytes) -> None:
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        for attempt in range(self._retries + 1):
            if attempt and self._stopping.wait(0.2 * 2 ** (attempt - 1)):
                break  # the service is stopping: no more back-off
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                logger.warning(
                    "webhook %s: %s (attempt %d)", url, type(error).__name__, attempt + 1
                )
                continue
            if response.status_code < 500:
                if response.status_code >= 400:
                    logger.warning(
                        "webhook %s refused a delivery: HTTP %d", url, response.status_code
                    )
                return
            logger.warning(
                "webhook %s: HTTP %d (attempt %d)", url, response.status_code, attempt + 1
            )
        logger.error("webhook %s: gave up on a delivery after %d attempt(s)", url, attempt + 1)
