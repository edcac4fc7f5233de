"""The webhook plugin: one signed call per finished run to a receiver on loopback, which
verifies it with the Standard Webhooks package (what a receiver would use)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.plugins.webhooks import signed_headers, signing_key

SECRET = "whsec_" + base64.b64encode(b"webhook-test-secret-of-24-bytes").decode()


class Receiver:
    """A loopback HTTP server that records deliveries; the first ``fail_first``
    deliveries get a 503 (to show retries)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with lock:
                    receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    failing = len(receiver.calls) <= receiver.fail_first
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_each_finished_run_is_posted_once_signed(project: Path) -> None:
    receiver = Receiver(fail_first=1)  # the first delivery is retried once
    service = ServiceProcess(
        project,
        workers=2,
        env={
            "KEDRO_RUNS_WEBHOOK_URLS": json.dumps([receiver.url]),
            "KEDRO_RUNS_WEBHOOK_SECRET": SECRET,
        },
    ).start()
    try:
        ok = service.submit(pipeline_names=["noop"])["run_id"]
        service.wait(ok)
        failed = service.submit(pipeline_names=["fail"], params={"message": "x"})["run_id"]
        service.wait(failed)
        deadline = time.monotonic() + 15
        while len(receiver.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        bodies = [json.loads(body) for _, body in receiver.calls]
        assert [(b["run_id"], b["status"]) for b in bodies] == [
            (ok, "succeeded"),
            (ok, "succeeded"),
            (failed, "failed"),
        ]
        assert bodies[2]["error"]["reason"] == "error"
        receiving = Webhook(SECRET)
        for headers, body in receiver.calls:
            assert receiving.verify(body, headers) == json.loads(body)
        # A retry is the same delivery: the same id, so receivers dedupe on it.
        ids = [headers["webhook-id"] for headers, _ in receiver.calls]
        assert ids[0] == ids[1] != ids[2]
        _refuses_tampering_and_replays(receiving, *receiver.calls[2])
        assert SECRET not in (project / "service.log").read_text()
    finally:
        service.stop()
        receiver.close()


def _refuses_tampering_and_replays(
    receiving: Webhook, headers: dict[str, str], body: bytes
) -> None:
    altered = body.replace(b'"failed"', b'"succeeded"')
    assert altered != body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        receiving.verify(altered, headers)
    # A captured delivery sent again with a fresh timestamp: the signature covers it.
    fresh = {**headers, "webhook-timestamp": str(int(time.time()) + 1)}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        receiving.verify(body, fresh)
    # ... and sent again as it was, once past the tolerance window (signed 10 min ago).
    old = signed_headers(signing_key(SECRET), headers["webhook-id"], int(time.time()) - 600, body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        receiving.verify(body, old)
