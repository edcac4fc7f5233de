"""API keys: who may do what, over real HTTP against a service started with keys."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServiceProcess
from support import copy_project
from test_openapi import assert_keyed
from test_streams import SSE, read_sse

from app.api.auth import KeyRing
from app.main import create_app
from app.settings import ApiKey, Settings

OPENAPI = json.loads((Path(__file__).parents[1] / "openapi" / "openapi.json").read_text())
KEYS = {"alice": "kr_alice-" + "a" * 40, "bob": "kr_bob-" + "b" * 40, "root": "kr_root-" + "r" * 40}


def _entry(name: str, admin: bool = False) -> dict[str, Any]:
    return {"name": name, "sha256": hashlib.sha256(KEYS[name].encode()).hexdigest(), "admin": admin}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    entries = [_entry("alice"), _entry("bob"), _entry("root", admin=True)]
    process = ServiceProcess(
        copy_project(tmp_path_factory.mktemp("keyed")),
        env={
            "KEDRO_RUNS_API_KEYS": json.dumps(entries),
            "KEDRO_RUNS_SSE_HEARTBEAT_SECONDS": "0.5",
        },
    )
    process.start()
    yield process
    process.stop()


def _as(service: ServiceProcess, name: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=30, headers=auth(name))


def _operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        if "security" in operation
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_but_probes_needs_a_key(
    keyed: ServiceProcess, method: str, path: str
) -> None:
    url = path.replace("{run_id}", str(uuid.uuid4())).replace("{name}", "noop")
    body = {} if method == "POST" else None
    for headers in (
        {},
        {"Authorization": "Bearer kr_not-a-key-" + "x" * 40},
        {"Authorization": "Basic " + "eA==" * 10},
        {"Authorization": "Bearer " + "y" * 5000},
    ):
        response = keyed.client.request(method, url, json=body, headers=headers)
        assert response.status_code == 401, (method, url, headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith('Bearer realm="kedro-runs"')
    wrong = keyed.client.request(method, url, json=body, headers={"Authorization": "Bearer nope"})
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]


def test_probes_and_nothing_else_are_open(keyed: ServiceProcess) -> None:
    assert keyed.client.get("/healthz").status_code == 200
    assert keyed.client.get("/readyz").status_code == 200
    assert keyed.client.get("/health").json()["status"] == "healthy"  # Kedro's probe
    assert keyed.client.get("/openapi.json").status_code == 401
    assert keyed.client.get("/metrics").status_code == 401
    # A key in the query string is never read.
    assert keyed.client.get("/runs", params={"api_key": KEYS["alice"]}).status_code == 401
    with _as(keyed, "alice") as alice:
        served = alice.get("/openapi.json").json()
        assert served["info"]["title"] == "kedro-runs"
        assert_keyed(served)  # this deployment's document: a key on all but the probes
        assert alice.get("/docs").status_code == 404  # off by default once keys are set
        forbidden = alice.get("/metrics")  # every key's figures: admins only
        assert forbidden.status_code == 403
        assert forbidden.headers["content-type"] == "application/problem+json"
    with _as(keyed, "root") as root:
        assert root.get("/metrics").status_code == 200


def test_a_run_is_seen_only_by_its_owner_and_admins(keyed: ServiceProcess) -> None:
    with _as(keyed, "alice") as alice, _as(keyed, "bob") as bob, _as(keyed, "root") as root:
        mine = alice.post("/runs", json={"pipeline_names": ["noop"]}).json()["run_id"]
        theirs = bob.post("/runs", json={"pipeline_names": ["noop"]}).json()["run_id"]
        assert alice.get(f"/runs/{mine}", params={"wait": 30}).json()["status"] == "succeeded"
        assert bob.get(f"/runs/{theirs}", params={"wait": 30}).json()["status"] == "succeeded"

        # To bob, alice's run is exactly a run that does not exist (BOLA: 404, not 403).
        nobody = str(uuid.uuid4())
        version = alice.get(f"/runs/{mine}").json()["save_version"]
        assert alice.get(f"/runs/{version}").json()["run_id"] == mine
        no_such_version = "2001-01-01T00.00.00.000Z"
        for method, suffix, extra in (
            ("GET", "", {}),
            ("GET", "?wait=1", {}),
            ("POST", "/cancel", {}),
            ("GET", "/events", {}),
            ("GET", "/events", SSE),
            ("GET", "/logs", {}),
            ("GET", "/logs", SSE),
            ("GET", "/outputs", {}),
        ):
            response = bob.request(method, f"/runs/{mine}{suffix}", headers=extra)
            unknown = bob.request(method, f"/runs/{nobody}{suffix}", headers=extra)
            assert response.status_code == unknown.status_code == 404, response.text
            assert response.text.replace(mine, "ID") == unknown.text.replace(nobody, "ID")
            # By its save version (Kedro's run id) too, and without naming its uuid.
            by_version = bob.request(method, f"/runs/{version}{suffix}", headers=extra)
            no_version = bob.request(method, f"/runs/{no_such_version}{suffix}", headers=extra)
            assert by_version.status_code == no_version.status_code == 404, by_version.text
            assert by_version.text.replace(version, "V") == no_version.text.replace(
                no_such_version, "V"
            )

        def listed(client: httpx.Client) -> set[str]:
            items = client.get("/runs", params={"limit": 200}).json()["items"]
            return {item["run_id"] for item in items}

        assert mine in listed(alice)
        assert theirs not in listed(alice)
        assert mine not in listed(bob)
        assert theirs in listed(bob)
        assert {mine, theirs} <= listed(root)
        assert root.get(f"/runs/{mine}").status_code == 200
        assert root.get(f"/runs/{theirs}/events").status_code == 200


def test_a_queued_run_never_names_another_keys_run_it_waits_for(keyed: ServiceProcess) -> None:
    body = {"pipeline_names": ["stages"], "params": {"token": "mine", "delay": 3.0}}
    with _as(keyed, "alice") as alice, _as(keyed, "bob") as bob, _as(keyed, "root") as root:
        blocker = bob.post("/runs", json=body).json()["run_id"]  # holds the stage files
        waiting = alice.post("/runs", json=body).json()
        assert waiting["status"] == "queued"
        assert waiting["waiting_for"] == []  # alice is not told bob's run exists
        assert alice.get(f"/runs/{waiting['run_id']}").json()["waiting_for"] == []
        listed = alice.get("/runs", params={"limit": 200}).json()["items"]
        assert next(r for r in listed if r["run_id"] == waiting["run_id"])["waiting_for"] == []
        assert alice.post("/runs/plan", json=body).json()["waiting_for"] == [waiting["run_id"]]
        # Whoever may see the blocker is told about it.
        assert root.get(f"/runs/{waiting['run_id']}").json()["waiting_for"] == [blocker]
        assert blocker in bob.post("/runs/plan", json=body).json()["waiting_for"]
        for client, run_id in ((bob, blocker), (alice, waiting["run_id"])):
            assert client.get(f"/runs/{run_id}", params={"wait": 30}).json()["status"] == (
                "succeeded"
            )


def test_enumerating_ids_finds_nothing_of_anyone_else(keyed: ServiceProcess) -> None:
    with _as(keyed, "alice") as alice, _as(keyed, "bob") as bob:
        owned = [
            alice.post("/runs", json={"pipeline_names": ["noop"]}).json()["run_id"]
            for _ in range(5)
        ]
        guesses = owned + [str(uuid.uuid4()) for _ in range(300)]
        statuses = {bob.get(f"/runs/{run_id}").status_code for run_id in guesses}
        assert statuses == {404}
        assert {alice.get(f"/runs/{run_id}").status_code for run_id in owned} == {200}


def test_the_state_feed_shows_each_key_only_its_own_runs(keyed: ServiceProcess) -> None:
    seen: dict[str, list[str]] = {"bob": [], "root": []}
    ready = {name: threading.Event() for name in seen}
    done = threading.Event()

    def follow(name: str) -> None:
        with (
            _as(keyed, name) as client,
            client.stream("GET", "/events", headers=SSE) as response,
        ):
            for message in read_sse(response):
                ready[name].set()
                if "data" in message:
                    seen[name].append(message["data"]["run_id"])
                if done.is_set():
                    return

    threads = [threading.Thread(target=follow, args=(name,), daemon=True) for name in seen]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in ready.values())
    with _as(keyed, "alice") as alice, _as(keyed, "bob") as bob:
        alices = alice.post("/runs", json={"pipeline_names": ["noop"]}).json()["run_id"]
        bobs = bob.post("/runs", json={"pipeline_names": ["noop"]}).json()["run_id"]
        for client, run_id in ((alice, alices), (bob, bobs)):
            assert client.get(f"/runs/{run_id}", params={"wait": 30}).json()["status"] == (
                "succeeded"
            )
    done.set()  # the next heartbeat (0.5 s) ends both readers
    for thread in threads:
        thread.join(10)
    assert bobs in seen["bob"]
    assert alices not in seen["bob"]
    assert {alices, bobs} <= set(seen["root"])


def test_idempotency_keys_are_scoped_to_the_api_key(keyed: ServiceProcess) -> None:
    body = {"pipeline_names": ["noop"]}
    header = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    with _as(keyed, "alice") as alice, _as(keyed, "bob") as bob:
        first = alice.post("/runs", json=body, headers=header)
        again = alice.post("/runs", json=body, headers=header)
        other = bob.post("/runs", json=body, headers=header)
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    assert other.json()["run_id"] != first.json()["run_id"]  # bob's own run, not alice's
    assert "idempotent-replayed" not in other.headers


def test_the_key_ring_finds_each_key_and_only_by_its_hash() -> None:
    ring = KeyRing([ApiKey(**_entry("alice")), ApiKey(**_entry("root", admin=True))])
    alice, root = ring.caller_for(KEYS["alice"]), ring.caller_for(KEYS["root"])
    assert alice is not None
    assert (alice.name, alice.admin) == ("alice", False)
    assert root is not None
    assert (root.name, root.admin) == ("root", True)
    assert ring.caller_for(KEYS["bob"]) is None
    assert ring.caller_for(_entry("alice")["sha256"]) is None  # the hash is not the key
    assert ring.caller_for(KEYS["alice"][:-1]) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "kedro.example"])
def test_no_listening_beyond_loopback_without_keys(host: str) -> None:
    with pytest.raises(ValueError, match="without API keys"):
        Settings(host=host)
    assert Settings(host=host, insecure=True).host == host
    assert Settings(host=host, api_keys=[ApiKey(**_entry("alice"))]).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_keys(host: str) -> None:
    assert Settings(host=host).host == host


def test_duplicate_key_names_or_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="of its own"):
        Settings(api_keys=[ApiKey(**_entry("alice")), ApiKey(**_entry("alice"))])
    with pytest.raises(ValueError, match="anonymous"):
        ApiKey(name="anonymous", sha256=_entry("alice")["sha256"])


def _in_process(
    settings: Settings, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """One request to the app in this process, without its lifespan (no project, no
    pool): enough for what middleware and routing answer by themselves."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.request(method, url, headers=headers)

    return asyncio.run(send())


def _preflight(settings: Settings, origin: str) -> httpx.Response:
    return _in_process(
        settings, "OPTIONS", "/runs", {"Origin": origin, "Access-Control-Request-Method": "POST"}
    )


def test_cors_is_off_by_default() -> None:
    response = _preflight(Settings(), "https://evil.example")
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins_and_never_credentials() -> None:
    settings = Settings(cors_origins=["https://dash.example"])
    allowed = _preflight(settings, "https://dash.example")
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    assert "access-control-allow-credentials" not in allowed.headers
    refused = _preflight(settings, "https://evil.example")
    assert "access-control-allow-origin" not in refused.headers


def test_docs_can_be_turned_off(service: ServiceProcess) -> None:
    assert service.client.get("/docs").status_code == 200  # on by default without keys
    assert _in_process(Settings(docs=False), "GET", "/docs", {}).status_code == 404
