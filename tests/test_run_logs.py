"""Per-run logs: every record emitted inside a run, kept per run, capped, redacted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conftest import ServiceProcess
from test_streams import SSE, read_sse


def _logs(service: ServiceProcess, run_id: str, **params: Any) -> dict[str, Any]:
    response = service.client.get(f"/runs/{run_id}/logs", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _chatty(service: ServiceProcess, token: str, count: int, seconds: float = 0.5) -> str:
    body = {
        "pipeline_names": ["chatty"],
        "params": {"chatty": {"token": token, "count": count, "seconds": seconds}},
    }
    return str(service.submit(**body)["run_id"])


def test_concurrent_runs_keep_their_own_logs(service: ServiceProcess) -> None:
    with ThreadPoolExecutor(2) as pool:
        run_ids = list(pool.map(lambda token: _chatty(service, token, 30), ["AAA", "BBB"]))
    for run_id, mine, theirs in zip(run_ids, ["AAA", "BBB"], ["BBB", "AAA"], strict=True):
        assert service.wait(run_id)["status"] == "succeeded"
        page = _logs(service, run_id)
        messages = [line["message"] for line in page["items"]]
        assert sum(f"marker={mine} " in m for m in messages) == 30
        assert not any(theirs in m for m in messages)
        node_lines = [line for line in page["items"] if f"marker={mine}" in line["message"]]
        assert {line["node"] for line in node_lines} == {"chatter"}
        assert {line["logger"] for line in node_lines} == {"kr_testproject.nodes"}
        assert any(line["logger"].startswith("kedro.") for line in page["items"])
        assert any(line["logger"] == "some.library" for line in page["items"])
        seqs = [line["seq"] for line in page["items"]]
        assert seqs == list(range(1, len(seqs) + 1))
        assert page["truncated"] is False


def test_logs_are_redacted_and_filtered_by_level(service: ServiceProcess) -> None:
    run_id = _chatty(service, "LVL", 3, 0)
    service.wait(run_id)
    everything = _logs(service, run_id)["items"]
    assert not any("hunter2" in line["message"] for line in everything)
    assert any("password=<redacted>" in line["message"] for line in everything)
    assert not any(line["level"] == "DEBUG" for line in everything)  # captured from INFO
    warnings = _logs(service, run_id, level="WARNING")["items"]
    assert warnings
    assert {line["level"] for line in warnings} <= {"WARNING", "ERROR", "CRITICAL"}
    page = _logs(service, run_id, after=2, limit=2)
    assert [line["seq"] for line in page["items"]] == [3, 4]
    assert page["last_seq"] == 4


def test_a_runs_log_is_capped_and_says_so(service: ServiceProcess) -> None:
    run_id = _chatty(service, "CAP", 500, 0)
    assert service.wait(run_id)["status"] == "succeeded"
    first = _logs(service, run_id)
    rest = _logs(service, run_id, after=first["last_seq"])
    assert len(first["items"]) + len(rest["items"]) == 200  # the cap of this service
    assert first["truncated"] is True
    assert first["dropped"] >= 300


def test_following_a_log_live(service: ServiceProcess) -> None:
    run_id = _chatty(service, "LIVE", 20, 1.0)
    with service.client.stream("GET", f"/runs/{run_id}/logs", headers=SSE) as response:
        assert response.status_code == 200
        lines = [m for m in read_sse(response) if "comment" not in m]
    assert all(m["event"] == "log" for m in lines)
    assert [m["data"] for m in lines] == _logs(service, run_id)["items"]
    assert sum("marker=LIVE " in m["data"]["message"] for m in lines) == 20


def test_logs_of_an_unknown_run_are_a_404(service: ServiceProcess) -> None:
    assert service.client.get("/runs/nope/logs").status_code == 404


def test_loads_and_saves_are_attributed_to_their_node(service: ServiceProcess) -> None:
    # Kedro logs a node's loads before before_node_run and its saves after after_node_run.
    run_id = service.submit(pipeline_names=["versioned"], params={"payload": "p-node"})["run_id"]
    assert service.wait(run_id)["status"] == "succeeded"
    items = _logs(service, run_id)["items"]
    io_lines = [
        line
        for line in items
        if line["message"].startswith(("Loading data from", "Saving data to"))
    ]
    assert {line["message"].split(" ")[0] for line in io_lines} == {"Loading", "Saving"}
    assert {line["node"] for line in io_lines} == {"echo_payload"}, io_lines
