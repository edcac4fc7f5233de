"""The project's credentials and the environment's secrets under common names are
masked in what the server says (run errors, logs, events, webhook bodies, its own log),
webhook URLs never reach the log, and what the caller sends is never masked by them:
a right guess and a wrong one get the same answer."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from conftest import ServiceProcess
from test_webhooks import SECRET, Receiver

ENVIRONMENT = {"PGPASSWORD": "PgPass-Crimson9", "MYSQL_PWD": "MyPwd-Amber55"}
CREDENTIALS = ["ApiPassw0rd-Quartz", "OdbcPwd-Violet42", "LonePwd-Emerald7"]
EVERY = [*ENVIRONMENT.values(), *CREDENTIALS]
WEBHOOK_PATH_SECRET = "WhPathSecret4417xyz"


def _plant_credentials(project: Path) -> None:
    (project / "conf" / "local" / "credentials.yml").write_text(
        "my_api_creds: [apiuser, ApiPassw0rd-Quartz]\n"
        "odbc_db:\n"
        '  con: "DRIVER={ODBC Driver 18};UID=sa;PWD=OdbcPwd-Violet42"\n'
        "  pwd: LonePwd-Emerald7\n"
    )


def _service(project: Path, receiver: Receiver) -> ServiceProcess:
    _plant_credentials(project)
    hook = receiver.url.replace("/hook", f"/services/T0AAA/B0BBB/{WEBHOOK_PATH_SECRET}")
    env = {
        **ENVIRONMENT,
        "KEDRO_RUNS_WEBHOOK_URLS": json.dumps([hook]),
        "KEDRO_RUNS_WEBHOOK_SECRET": SECRET,
    }
    return ServiceProcess(project, workers=1, env=env, extra_args=["--log-level", "info"])


def test_common_secret_names_are_masked_and_webhook_urls_never_logged(project: Path) -> None:
    receiver = Receiver(fail_first=1)  # a 503 first: the service logs the retry
    service = _service(project, receiver).start()
    try:
        message = "could not connect: " + " ".join(EVERY)
        run_id = service.submit(pipeline_names=["fail"], params={"message": message})["run_id"]
        run = service.wait(run_id)
        seen = [
            json.dumps(run["error"]),
            service.client.get(f"/runs/{run_id}/logs").text,
            service.client.get(f"/runs/{run_id}/events").text,
        ]
        deadline = time.monotonic() + 15
        while len(receiver.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen += [body.decode() for _, body in receiver.calls]
    finally:
        service.stop()
        receiver.close()
    assert run["error"]["message"].count("<redacted>") == len(EVERY), run["error"]
    assert len(receiver.calls) == 2
    leaks = [(secret, text[:300]) for secret in EVERY for text in seen if secret in text]
    assert leaks == []
    log = service.log_path.read_text()
    assert "webhook http://127.0.0.1" in log  # the retry, logged with its host only
    assert [line for line in log.splitlines() if WEBHOOK_PATH_SECRET in line] == []
    assert [secret for secret in EVERY if secret in log] == []


def _answer(service: ServiceProcess, guess: str) -> tuple[int, str]:
    body: dict[str, Any] = {"pipeline_names": ["noop"], "node_names": [guess, "nope-a"]}
    plan = service.client.post("/runs/plan", json=body)
    compat = service.client.post("/run", json={"pipeline_names": [guess]}).json()
    compat.pop("run_id", None)  # one of its own each time
    # A pair without "=" after it: a parse error quoting the whole value, guess and all.
    snapshot = service.client.get("/snapshot", params={"params": f"x={guess},y"}).json()
    # An X-Request-ID is echoed when it is a plain token: a guess that is one must be too.
    request_id = service.client.get("/healthz", headers={"X-Request-ID": guess})
    echoed = request_id.headers["x-request-id"] == guess or not re.fullmatch(r"[\w.:-]+", guess)
    params = {"pipeline_names": ["free_output"], "params": {"payload": guess}}
    run_id = service.submit(**params)["run_id"]
    service.wait(run_id)
    request = service.get(run_id)["request"]
    shown = json.dumps(
        [plan.json(), compat, snapshot, echoed, request["params"], request["params_masked"]]
    )
    return plan.status_code, shown.replace(guess, "<the guess>")


def test_a_right_guess_gets_the_same_answer_as_a_wrong_one(project: Path) -> None:
    receiver = Receiver()
    service = _service(project, receiver).start()
    try:
        right = [_answer(service, secret) for secret in (*EVERY, SECRET)]
        wrong = _answer(service, "Guessed-Wrong-7x")
    finally:
        service.stop()
        receiver.close()
    assert wrong[0] == 422
    assert "<the guess>" in wrong[1]
    assert "<redacted>" not in wrong[1]
    assert right == [wrong] * len(right)
