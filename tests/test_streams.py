"""Live event streams (Server-Sent Events), read by a real SSE client over HTTP."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from conftest import ServiceProcess

SSE = {"accept": "text/event-stream"}


def read_sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Each SSE message as {"id", "event", "data"}, or {"comment"} for a comment line."""
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line == "":
            if message:
                yield message
            message = {}
        else:
            field, _, value = line.partition(": ")
            message[field] = json.loads(value) if field == "data" else value


def test_a_whole_run_live_then_the_stream_ends(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.2}})["run_id"]
    with service.client.stream("GET", f"/runs/{run_id}/events", headers=SSE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = [m for m in read_sse(response) if "comment" not in m]
    assert [int(m["id"]) for m in messages] == list(range(1, len(messages) + 1))
    assert [m["event"] for m in messages][:2] == ["run_queued", "run_started"]
    assert messages[-1]["event"] == "run_succeeded"
    assert all(m["data"]["seq"] == int(m["id"]) for m in messages)
    assert [m["data"] for m in messages] == service.events(run_id)


def test_a_client_that_drops_mid_run_resumes_without_gaps_or_duplicates(
    service: ServiceProcess,
) -> None:
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.4}})["run_id"]
    first: list[dict[str, Any]] = []
    with service.client.stream("GET", f"/runs/{run_id}/events", headers=SSE) as response:
        for message in read_sse(response):
            if "comment" in message:
                continue
            first.append(message)
            if message["event"] == "node_completed":
                break  # disconnect mid-run
    assert service.get(run_id)["status"] == "running"
    headers = {**SSE, "Last-Event-ID": first[-1]["id"]}
    with service.client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
        rest = [m for m in read_sse(response) if "comment" not in m]
    received = [m["data"] for m in first + rest]
    assert received == service.events(run_id)  # every event exactly once, in order
    assert received[-1]["type"] == "run_succeeded"


def test_an_idle_stream_sends_heartbeats_and_ends_with_the_run(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    service.wait(run_id, {"running"})
    comments = 0
    events: list[str] = []
    with service.client.stream("GET", f"/runs/{run_id}/events", headers=SSE) as response:
        for message in read_sse(response):
            if "comment" in message:
                comments += 1
                if comments == 2:
                    service.client.post(f"/runs/{run_id}/cancel")
            else:
                events.append(message["event"])
    assert comments >= 2
    assert events[-1] == "run_cancelled"


def test_resuming_after_the_end_returns_nothing_and_closes(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["noop"])["run_id"]
    service.wait(run_id)
    last = service.events(run_id)[-1]["seq"]
    headers = {**SSE, "Last-Event-ID": str(last)}
    started = time.monotonic()
    with service.client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
        assert [m for m in read_sse(response) if "comment" not in m] == []
    assert time.monotonic() - started < 5


def test_unknown_run_stream_is_a_404_problem(service: ServiceProcess) -> None:
    response = service.client.get("/runs/nope/events", headers=SSE)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_state_changes_of_all_runs(service: ServiceProcess) -> None:
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    run_ids: list[str] = []

    def follow() -> None:
        with (
            httpx.Client(base_url=service.url, timeout=30) as client,
            client.stream("GET", "/events", headers=SSE) as response,
        ):
            for message in read_sse(response):
                ready.set()
                if "comment" in message:
                    continue
                seen.append(message)
                if run_ids and any(
                    m["data"]["run_id"] == run_ids[0] and m["data"]["status"] == "succeeded"
                    for m in seen
                ):
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert ready.wait(10)  # the first heartbeat: the stream is open
    run_ids.append(service.submit(pipeline_names=["noop"])["run_id"])
    thread.join(30)
    assert not thread.is_alive()
    mine = [m["data"]["status"] for m in seen if m["data"]["run_id"] == run_ids[0]]
    assert mine == ["queued", "running", "succeeded"]
    ids = [int(m["id"]) for m in seen]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_open_streams_end_when_the_service_stops(project: Path) -> None:
    service = ServiceProcess(project, workers=1).start()
    run_id = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    service.wait(run_id, {"running"})
    ended = threading.Event()

    def follow() -> None:
        with (
            httpx.Client(base_url=service.url, timeout=60) as client,
            client.stream("GET", f"/runs/{run_id}/events", headers=SSE) as response,
        ):
            for _ in read_sse(response):
                pass
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert service.process is not None
    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 10  # the stream did not hold the shutdown up
    assert ended.wait(5)
    service.client.close()


def test_a_last_event_id_that_is_not_ascii_digits_is_ignored(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["noop"])["run_id"]
    service.wait(run_id)
    # b"\xb2" reads as "²" (headers are latin-1), and "٣" as UTF-8 bytes: both pass
    # str.isdigit() but are no integer for int(). The stream starts from the top.
    for last_event_id in (b"\xb2", "\u0663".encode(), b"-1", b"1e3"):
        headers = {"accept": "text/event-stream", "Last-Event-ID": last_event_id}
        for url in (f"/runs/{run_id}/events", f"/runs/{run_id}/logs"):
            response = service.client.get(url, headers=headers)
            assert response.status_code == 200, (url, last_event_id)
        assert (
            b"event: run_succeeded"
            in service.client.get(f"/runs/{run_id}/events", headers=headers).content
        )
        with (
            httpx.Client(base_url=service.url, timeout=10) as client,
            client.stream("GET", "/events", headers=headers) as response,
        ):
            assert response.status_code == 200
