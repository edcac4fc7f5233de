"""The catalog guard as an allowlist: params may change where a dataset's data lives
(any location key, at any depth, typed mapping or not) and nothing else. Each attack is
one an outside tester made work: an API dataset's url, an untyped IncrementalDataset
checkpoint, a `versioned` or `overwrite` flip, glob characters in a versioned path.
The project is a per-module copy of tests/project with those datasets added.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess
from support import copy_project
from test_hostile_input import _codes, _post, _refused

ATTACK_CATALOG = """
api_out:
  type: api.APIDataset
  url: ${runtime_params:url, http://127.0.0.1:18199/x}
  method: POST
  credentials: my_api_creds

api_host:
  type: api.APIDataset
  url: https://${runtime_params:region, eu}.api.example/x
  method: POST

inc_parts:
  type: partitions.IncrementalDataset
  path: data/inc
  dataset: text.TextDataset
  checkpoint:
    filepath: data/inc/${runtime_params:ck, CHECKPOINT}

inc_late:  # partitions per tenant, as is the checkpoint inside them
  type: partitions.IncrementalDataset
  path: data/inc_late/${runtime_params:ck, default}
  dataset: text.TextDataset
  checkpoint:
    filepath: data/inc_late/${runtime_params:ck, default}/ckpt/CHECKPOINT

flag_out:
  type: text.TextDataset
  filepath: data/vf/x.txt
  versioned: ${runtime_params:ver, false}

parts_out:
  type: partitions.PartitionedDataset
  path: data/parts_out
  dataset: text.TextDataset
  overwrite: ${runtime_params:ow, false}

glob_out:
  type: text.TextDataset
  filepath: data/${runtime_params:gv, mine}/final.txt
  versioned: true
"""

API_CREDENTIALS = """
my_api_creds: [apiuser, ApiPassw0rd-Quartz]
"""


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    project = copy_project(tmp_path_factory.mktemp("options"))
    conf = project / "conf" / "base"
    with (conf / "catalog.yml").open("a") as catalog:
        catalog.write(ATTACK_CATALOG)
    with (conf / "credentials.yml").open("a") as credentials:
        credentials.write(API_CREDENTIALS)
    service = ServiceProcess(project, workers=1)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that nothing should ever connect to."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def _nobody_connected(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def _body(pipeline: str, **params: Any) -> dict[str, Any]:
    return {"pipeline_names": [f"atk_{pipeline}"], "params": {"payload": "x", **params}}


def _run(service: ServiceProcess, pipeline: str, **params: Any) -> dict[str, Any]:
    run = service.submit(**_body(pipeline, **params))
    return service.wait(run["run_id"])


# -- item 1: a url from params is a location, and http is not an allowed protocol ------


def test_params_may_not_aim_an_api_dataset_at_another_host(
    attacked: ServiceProcess, receiver: socket.socket
) -> None:
    port = receiver.getsockname()[1]
    exfil = _body("api_out", url=f"http://127.0.0.1:{port}/exfil", payload='{"a": 1}')
    for path in ("/runs", "/runs/plan"):
        problem = _refused(attacked, exfil, path=path)
        assert _codes(problem) == {"protocol_not_allowed"}, problem
        assert "'api_out'" in problem["errors"][0]["msg"]
    # Kedro's own POST /run: refused too, before anything runs.
    compat = _post(attacked, exfil, "/run")
    assert compat.status_code in (200, 422), compat.text[:500]
    if compat.status_code == 200:
        assert compat.json()["status"] == "failure"
    metadata = _body("api_out", url="http://169.254.169.254/latest/meta-data/")
    assert "protocol_not_allowed" in _codes(_refused(attacked, metadata, path="/runs/plan"))
    assert _nobody_connected(receiver)


@pytest.mark.parametrize("region", ["evil.example/#", "127.0.0.1:9/x?"])
def test_params_may_not_choose_an_api_host(attacked: ServiceProcess, region: str) -> None:
    problem = _refused(attacked, _body("api_host", region=region), path="/runs/plan")
    assert "protocol_not_allowed" in _codes(problem), problem


# -- item 2: a nested mapping without `type` is checked too ----------------------------


def test_an_untyped_checkpoint_may_not_be_moved_onto_a_partition(
    attacked: ServiceProcess,
) -> None:
    partition = attacked.project / "data" / "inc" / "p1.txt"
    partition.parent.mkdir(parents=True, exist_ok=True)
    partition.write_text("partition one")
    problem = _refused(attacked, _body("inc_parts", ck="p1.txt"))
    assert _codes(problem) == {"path_overlaps_dataset"}, problem
    outside = _refused(attacked, _body("inc_parts", ck="../../../escaped"))
    assert _codes(outside) & {"path_outside_default_location", "path_outside_data_root"}
    assert partition.read_text() == "partition one"


def test_the_worker_checks_an_untyped_checkpoint_again(
    attacked: ServiceProcess, tmp_path: Path
) -> None:
    """The worker's re-check (prerun_guard) sees the same locations as the API's: a
    symlink made while the run waits fails it before its first node."""
    outside = tmp_path / "outside"
    outside.mkdir()
    blocker = attacked.submit(pipeline_names=["tenant"], params={"tenant": "b", "delay": 3.0})
    waiting = attacked.submit(**_body("inc_late", ck="late", payload={"p1": "x"}))
    # Only the checkpoint's directory leaves the data root; the partitions' stays.
    link = attacked.project / "data" / "inc_late" / "late" / "ckpt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    try:
        assert attacked.get(waiting["run_id"])["status"] == "queued"
        run = attacked.wait(waiting["run_id"], timeout=90)
        assert run["status"] == "failed", run
        assert run["error"]["type"] == "LocationGuardError", run["error"]
        assert "'inc_late'" in run["error"]["message"]
        assert list(outside.iterdir()) == []
        assert attacked.wait(blocker["run_id"])["status"] == "succeeded"
    finally:
        link.unlink()
    again = _run(attacked, "inc_late", ck="late", payload={"p1": "x"})
    assert again["status"] == "succeeded", again["error"]
    assert (attacked.project / "data" / "inc_late" / "late" / "p1").read_text() == "x"


# -- item 3: any option other than a location is the project's -------------------------


@pytest.mark.parametrize(
    ("pipeline", "params", "key"),
    [
        ("flag_out", {"ver": True}, "versioned"),
        ("flag_out", {"ver": "zz-value-never-shown"}, "versioned"),
        ("parts_out", {"ow": True}, "overwrite"),
    ],
)
def test_params_may_not_flip_a_datasets_option(
    attacked: ServiceProcess, pipeline: str, params: dict[str, Any], key: str
) -> None:
    problem = _refused(attacked, _body(pipeline, **params))
    assert _codes(problem) == {"param_changes_dataset_option"}, problem
    message = problem["errors"][0]["msg"]
    assert key in message
    assert f"'{pipeline}'" in message
    assert "zz-value-never-shown" not in str(problem)


def test_a_refused_flip_leaves_the_default_run_working(attacked: ServiceProcess) -> None:
    _refused(attacked, _body("flag_out", ver=True))
    run = _run(attacked, "flag_out")
    assert run["status"] == "succeeded", run
    assert (attacked.project / "data" / "vf" / "x.txt").read_text() == "x"


@pytest.mark.parametrize("name", ["0*", "0[3]_primary", "0?_primary", "{03_primary,x}"])
def test_glob_characters_are_refused_in_a_params_driven_path(
    attacked: ServiceProcess, name: str
) -> None:
    problem = _refused(attacked, _body("glob_out", gv=name))
    assert _codes(problem) == {"bad_path"}, problem
    assert "glob" in problem["errors"][0]["msg"]
    assert "final.txt/" not in str(problem)  # no other dataset's version name shown


def test_a_plain_params_driven_name_still_runs(attacked: ServiceProcess) -> None:
    run = _run(attacked, "glob_out", gv="chosen")
    assert run["status"] == "succeeded", run
    versions = list((attacked.project / "data" / "chosen" / "final.txt").iterdir())
    assert [(v / "final.txt").read_text() for v in versions] == ["x"]


# -- the rules, in-process -------------------------------------------------------------


def _errors(
    usual: dict[str, Any], moved: dict[str, Any], root: Path, *protocols: str
) -> list[tuple[str, str]]:
    from app.kedro_bridge.catalog_guard import Policy, ResolvedDataset, params_driven_errors

    errors = params_driven_errors(
        ["ds"],
        lambda _: ResolvedDataset.of(moved),
        lambda _: ResolvedDataset.of(usual),
        Policy(str(root), frozenset({"file", *protocols})),
    )
    return [(error.type, error.msg) for error in errors]


def test_every_location_key_is_a_location_at_any_depth() -> None:
    from app.kedro_bridge.catalog_guard import locations

    config = {
        "type": "x.Y",
        "url": "jdbc:postgresql://db/x",
        "checkpoint": {"filepath": "/p/data/c"},
        "options": {"deep": {"location": "s3://b/k", "temppath": "/tmp/t"}},
        "from_url": "redis://r:6379",
    }
    assert dict(locations(config)) == {
        "url": "jdbc:postgresql://db/x",
        "checkpoint.filepath": "/p/data/c",
        "options.deep.location": "s3://b/k",
        "options.deep.temppath": "/tmp/t",
        "from_url": "redis://r:6379",
    }


@pytest.mark.parametrize("key", ["url", "from_url", "location", "temppath", "checkpoint.filepath"])
def test_a_moved_location_of_any_key_obeys_the_protocols(tmp_path: Path, key: str) -> None:
    def config(location: str) -> dict[str, Any]:
        *outer, last = key.split(".")
        nested: dict[str, Any] = {last: location}
        for part in reversed(outer):
            nested = {part: nested}
        return {"type": "x.Y", **nested}

    errors = _errors(config(f"{tmp_path}/a"), config("http://127.0.0.1:9/x"), tmp_path)
    assert [code for code, _ in errors] == ["protocol_not_allowed"]


@pytest.mark.parametrize(
    ("moved", "key"),
    [
        ({"load_args": {"headers": {"X-Token": "other"}}}, "load_args.headers.X-Token"),
        ({"load_args": {"headers": {"X-Token": "t"}, "proxies": {"http": "p"}}}, "proxies"),
        ({"method": "GET"}, "method"),
        ({"credentials": {"sha256": "other"}}, "credentials"),
        ({"table_name": "someone_elses"}, "table_name"),
        ({"save_args": {"mode": "append"}}, "save_args.mode"),
    ],
)
def test_any_other_changed_value_is_refused_by_key(
    tmp_path: Path, moved: dict[str, Any], key: str
) -> None:
    usual = {
        "type": "api.APIDataset",
        "url": "http://127.0.0.1:9/x",
        "method": "POST",
        "load_args": {"headers": {"X-Token": "t"}},
        "credentials": {"sha256": "mine"},
        "table_name": "mine",
    }
    errors = _errors(usual, {**usual, **moved}, tmp_path)
    assert [code for code, _ in errors] == ["param_changes_dataset_option"]
    assert key in errors[0][1]
    assert not any(value in errors[0][1] for value in ("other", "someone_elses", "append", "GET"))


@pytest.mark.parametrize(
    ("moved", "code"),
    [
        ("https://eu.api.example/other/path", None),
        ("https://evil.example/x", "path_outside_default_location"),
        ("https://evil.example#.api.example/x", "path_outside_default_location"),
        ("https://eu.api.example@evil.example/x", "path_outside_default_location"),
        ("https://eu.api.example:8443/x", "path_outside_default_location"),
        ("s3://eu.api.example/x", "path_outside_default_location"),  # another protocol
        ("ftp://eu.api.example/x", "protocol_not_allowed"),
    ],
)
def test_an_allowed_remote_protocol_keeps_its_host(
    tmp_path: Path, moved: str, code: str | None
) -> None:
    """With https and s3 allowed, params still may not choose the host that receives the
    project's credentials: only the path under it."""
    usual = {"type": "api.APIDataset", "url": "https://eu.api.example/x"}
    errors = _errors(usual, {**usual, "url": moved}, tmp_path, "https", "s3")
    assert [error_code for error_code, _ in errors] == ([code] if code else [])


def test_a_local_default_may_move_to_an_allowed_protocol(tmp_path: Path) -> None:
    usual = {"type": "text.TextDataset", "filepath": f"{tmp_path}/x.txt"}
    assert _errors(usual, {**usual, "filepath": "s3://bucket/x.txt"}, tmp_path, "s3") == []


@pytest.mark.parametrize(
    "moved",
    [
        {"path": "/../../tmp/escaped.txt"},  # Kedro would write to str() of the mapping
        {"filepath": "/data/flag/x.txt", "path": "s3://evil/f.txt"},
        ["/data/flag/x.txt"],
        7,
    ],
)
def test_a_location_stays_a_location_string(tmp_path: Path, moved: Any) -> None:
    usual = {"type": "text.TextDataset", "filepath": f"{tmp_path}/flag/f.txt"}
    errors = _errors(usual, {**usual, "filepath": moved}, tmp_path, "s3")
    assert [code for code, _ in errors] == ["param_changes_dataset_option"]


@pytest.mark.parametrize("path", ["*", "a/[0-9]", "x?y", "{a,b}"])
def test_glob_characters_are_refused_in_a_remote_path_too(tmp_path: Path, path: str) -> None:
    usual = {"type": "text.TextDataset", "filepath": "s3://bucket-a/mine/f.txt", "versioned": True}
    moved = {**usual, "filepath": f"s3://bucket-a/{path}/f.txt"}
    assert [code for code, _ in _errors(usual, moved, tmp_path, "s3")] == ["bad_path"]
    # A URL's query is no path: nothing globs it.
    api = {"type": "api.APIDataset", "url": "https://api.example/v1/items?q=a"}
    assert (
        _errors(api, {**api, "url": "https://api.example/v1/items?q=a*"}, tmp_path, "https") == []
    )
