"""GET /runs/{id}/outputs: what a run saved and what it returned."""

from __future__ import annotations

from typing import Any

from conftest import ServiceProcess


def _outputs(service: ServiceProcess, run_id: str) -> dict[str, Any]:
    response = service.client.get(f"/runs/{run_id}/outputs")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_small_free_outputs_are_inline(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["numbers"], params={"count": 5})["run_id"]
    service.wait(run_id)
    outputs = _outputs(service, run_id)
    assert outputs["recorded"] is True
    (free,) = outputs["free"]
    assert free["name"] == "numbers"
    assert free["inline"] is True
    assert free["value"] == [0, 1, 2, 3, 4]


def test_large_free_outputs_are_described(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["numbers"], params={"count": 100_000})["run_id"]
    service.wait(run_id)
    (free,) = _outputs(service, run_id)["free"]
    assert free["inline"] is False
    assert free["value"] is None
    assert free["type"] == "builtins.list"
    assert free["length"] == 100_000


def test_saved_datasets_carry_type_save_version_and_path(service: ServiceProcess) -> None:
    run = service.wait(service.submit(pipeline_names=["stages"], params={"token": "out"})["run_id"])
    outputs = _outputs(service, run["run_id"])
    saved = {d["name"]: d for d in outputs["saved"]}
    assert saved["stage_final"]["versioned"] is True
    assert saved["stage_final"]["save_version"] == run["save_version"]
    assert saved["stage_final"]["type"].endswith("TextDataset")
    assert saved["stage_intermediate"]["versioned"] is False
    assert saved["stage_intermediate"]["save_version"] is None
    assert saved["stage_intermediate"]["filepath"].endswith("data/02_intermediate/stage.txt")
    (free,) = outputs["free"]
    assert free == {
        "name": "stage_final",
        "type": saved["stage_final"]["type"],
        "inline": False,
        "value": None,
        "shape": None,
        "length": None,
        "error": None,
        "masked": [],
    }


def test_outputs_of_a_run_not_ended_yet_and_of_an_unknown_run(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    assert _outputs(service, run_id) == {"recorded": False, "saved": [], "free": []}
    service.client.post(f"/runs/{run_id}/cancel")
    assert service.client.get("/runs/nope/outputs").status_code == 404
    service.wait(run_id, timeout=30)
