"""The attack checklist (research note, section c.1-c.5): every hostile input is a clean
problem before any worker sees it. No run is stored, no node runs, nothing is imported.

The catalog fixtures (tests/project/conf/base/catalog.yml, `hostile_*`) take risky
fields from runtime params, as a careless project author might write them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess, ledger

from app.domain.limits import ParamsRejected, check_params

PROBLEM = "application/problem+json"


def _post(service: ServiceProcess, body: Any, path: str = "/runs", **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return service.client.post(
        path, content=content, headers={"content-type": "application/json", **headers}
    )


@contextmanager
def _nothing_reaches_a_worker(service: ServiceProcess) -> Iterator[None]:
    """No run is stored and no node runs for what happens inside."""

    def newest() -> list[str]:
        items = service.client.get("/runs", params={"limit": 1}).json()["items"]
        return [item["run_id"] for item in items]

    before, lines = newest(), len(ledger(service.project))
    yield
    assert newest() == before
    known = {
        r["run_id"] for r in service.client.get("/runs", params={"limit": 200}).json()["items"]
    }
    new_lines = ledger(service.project)[lines:]
    assert all(line.split()[0] in known for line in new_lines), new_lines


def _refused(
    service: ServiceProcess, body: Any, status: int = 422, path: str = "/runs", **headers: str
) -> dict[str, Any]:
    with _nothing_reaches_a_worker(service):
        response = _post(service, body, path, **headers)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < 8192, "a problem must not echo huge input"
    problem = dict(response.json())
    assert problem["status"] == status
    return problem


def _codes(problem: dict[str, Any]) -> set[str]:
    return {e["type"] for e in problem.get("errors", [])}


# -- c.1 class selection through params -------------------------------------------------

PICKLE = "pickle.PickleDataset"


@pytest.mark.parametrize(
    ("pipeline", "params", "code"),
    [
        # Direct `type: ${runtime_params:...}`: Kedro's serving-mode guard; a clean 422.
        ("hostile_type", {"dataset": {"type": PICKLE}}, "catalog_resolution"),
        ("hostile_type", {"dataset": {"type": "kedro_datasets." + PICKLE}}, "catalog_resolution"),
        ("hostile_cached", {"cached_type": PICKLE}, "catalog_resolution"),
        # Indirect: Kedro lets these through; the service compares resolved configs.
        ("typed", {"dtype": PICKLE}, "type_selection"),
        ("typed", {"dtype": "kedro_datasets." + PICKLE}, "type_selection"),
        ("hostile_parts", {"part_type": PICKLE}, "type_selection"),
        # Any other option: params may change only locations.
        ("hostile_generic", {"file_format": "pickle"}, "param_changes_dataset_option"),
        ("hostile_pickle", {"backend": "dill"}, "param_changes_dataset_option"),
        ("hostile_csv", {"engine": "python"}, "param_changes_dataset_option"),
        ("hostile_csv", {"encoding": "latin-1"}, "param_changes_dataset_option"),
        ("hostile_csv", {"creds": "other_creds"}, "param_changes_dataset_option"),
    ],
)
def test_params_may_not_choose_a_class_or_its_behaviour(
    service: ServiceProcess, pipeline: str, params: dict[str, Any], code: str
) -> None:
    problem = _refused(service, {"pipeline_names": [pipeline], "params": params})
    assert code in _codes(problem), problem
    assert problem["errors"][0]["loc"] == ["body", "params"]


def test_the_fixtures_run_with_harmless_params(service: ServiceProcess) -> None:
    """The refusals above are about the values, not the fixtures."""
    run = service.submit(
        pipeline_names=["hostile_src"],
        params={"payload": "fine", "src": "data/hostile/chosen.txt"},
    )
    assert service.wait(run["run_id"])["status"] == "succeeded"
    assert (service.project / "data" / "hostile" / "chosen.txt").read_text() == "fine"


@pytest.mark.parametrize(
    "body",
    [
        {"conf_source": "http://evil/conf"},
        {"env": "prod"},
        {"pipeline_names": ["noop"], "package_name": "os"},
    ],
)
def test_fields_outside_the_model(service: ServiceProcess, body: dict[str, Any]) -> None:
    assert "extra_forbidden" in _codes(_refused(service, body))


# -- c.2 runner selection ---------------------------------------------------------------

EVIL_RUNNER = "kr_testproject.evil_runner.EvilRunner"


@pytest.mark.parametrize(
    "runner",
    [
        "os.system",
        "builtins.eval",
        "subprocess.Popen",
        "kedro.runnerX.Evil",
        "kedro.runner..X",
        "kedro.runner.ParallelRunner",
        "SequentialRunner()",
        EVIL_RUNNER,
        "a" * 100_000,
    ],
)
def test_runners_outside_the_allowlist_are_never_imported(
    service: ServiceProcess, runner: str
) -> None:
    marker = service.project / "data" / "evil_runner_imported"
    for is_async in (False, True):
        body = {"pipeline_names": ["noop"], "runner": runner, "is_async": is_async}
        started = time.perf_counter()
        problem = _refused(service, body)
        elapsed = time.perf_counter() - started
        assert problem["errors"][0]["loc"] == ["body", "runner"]
        assert elapsed < 1.0, elapsed  # generous: no import, no regex over the input
    with _nothing_reaches_a_worker(service):
        compat = _post(service, {"pipeline_names": ["noop"], "runner": runner}, "/run")
    # Kedro's own model refuses some names by pattern (422); the rest fail as Kedro's do.
    assert compat.status_code in (200, 422)
    if compat.status_code == 200:
        assert compat.json()["status"] == "failure"
    assert not marker.exists()


# -- c.3 interpolation ------------------------------------------------------------------


def _bomb() -> dict[str, str]:
    params = {"p0": "A" * 100}
    for level in range(1, 8):
        params[f"p{level}"] = ("${p" + str(level - 1) + "}") * 10
    return params


def test_the_interpolation_bomb_is_refused_at_once(service: ServiceProcess) -> None:
    bomb = _bomb()
    body = json.dumps({"pipeline_names": ["noop"], "params": bomb}).encode()
    assert 500 <= len(body) <= 600  # the 530-byte body of the research note
    started = time.perf_counter()
    with pytest.raises(ParamsRejected):
        check_params(bomb)
    in_process_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    problem = _refused(service, body)
    http_ms = (time.perf_counter() - started) * 1000
    print(f"interpolation bomb: validator {in_process_ms:.3f} ms, over HTTP {http_ms:.1f} ms")
    assert in_process_ms < 50
    assert http_ms < 1000  # generous over loopback on a shared machine; typically ~5 ms
    assert "${" in " ".join(e["msg"] for e in problem["errors"])


@pytest.mark.parametrize(
    "params",
    [
        {"x": "${oc.env:CANARY_ENV}"},
        {"x": "${token}"},  # reads another parameter
        {"x": "${oc.decode:'{a: 1}'}"},
        {"x": "${oc.create:{a: 1}}"},
        {"x": "${oc.select:token}"},
        {"x": "${runtime_params:token}"},
        {"x": "${globals:anything}"},
        {"x": "${x}"},  # a cycle
        {"x": "\\${x}"},  # OmegaConf's escape: refused too, one rule for every `${`
        {"${oc.env:HOME}": 1},
        {"nested": {"list": [1, {"deep": "pre ${oc.env:HOME} post"}]}},
    ],
)
def test_interpolation_is_refused(service: ServiceProcess, params: dict[str, Any]) -> None:
    problem = _refused(service, {"pipeline_names": ["noop"], "params": params})
    assert problem["errors"][0]["loc"] == ["body", "params"]


def test_json_escaped_interpolation_is_refused_after_decoding(service: ServiceProcess) -> None:
    _refused(service, b'{"pipeline_names": ["noop"], "params": {"x": "\\u0024{oc.env:HOME}"}}')
    _refused(service, b'{"pipeline_names": ["noop"], "params": {"\\u0024{x}": 1}}')


def test_duplicate_keys_last_one_wins(service: ServiceProcess) -> None:
    """JSON parsers disagree on duplicate names; the service keeps the last, and stores
    (and shows) exactly what runs."""
    response = _post(service, b'{"pipeline_names": ["noop"], "params": {"a": 1, "a": 2}}')
    assert response.status_code == 202
    assert response.json()["request"]["params"] == {"a": 2}
    assert service.wait(response.json()["run_id"])["request"]["params"] == {"a": 2}


# -- c.4 paths, protocols ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "params", "code"),
    [
        ("tenant", {"tenant": "../../../../etc/passwd#"}, "path_outside_data_root"),
        ("tenant", {"tenant": "..%2f..%2fetc"}, "bad_path"),
        ("tenant", {"tenant": "..%2F..%2Fetc"}, "bad_path"),
        ("tenant", {"tenant": "..\\..\\x"}, "bad_path"),
        ("tenant", {"tenant": "a" * 5000}, "bad_path"),
        ("tenant", {"tenant": "a" * 300}, "bad_path"),  # one component over 255
        ("hostile_src", {"src": "/etc/passwd"}, "path_outside_data_root"),
        ("hostile_src", {"src": "file:///etc/passwd"}, "path_outside_data_root"),
        ("hostile_src", {"src": "memory://x"}, "protocol_not_allowed"),
        (
            "hostile_src",
            {"src": "http://169.254.169.254/latest/meta-data/"},
            "protocol_not_allowed",
        ),
        ("hostile_src", {"src": "http://127.0.0.1:5432/"}, "protocol_not_allowed"),
        ("hostile_src", {"src": "http://[::1]:8000/runs"}, "protocol_not_allowed"),
        ("hostile_src", {"src": "s3://someone-else/x"}, "protocol_not_allowed"),
        ("hostile_src", {"src": "gcs://bucket/x"}, "protocol_not_allowed"),
        ("hostile_src", {"src": "ftp://host/x"}, "protocol_not_allowed"),
    ],
)
def test_params_may_not_point_a_dataset_elsewhere(
    service: ServiceProcess, pipeline: str, params: dict[str, Any], code: str
) -> None:
    problem = _refused(service, {"pipeline_names": [pipeline], "params": params})
    assert code in _codes(problem), problem


# A version directory whose name sorts after every real one: Kedro would load it as the
# "latest" version, and every later unpinned load would fail.
FAKE_LATEST = "9999-12-31T23.59.59.999Z"


@pytest.mark.parametrize(
    ("pipeline", "params", "code"),
    [
        # Out of the part of the location params do not choose (data/tenants/)...
        ("tenant", {"tenant": "x/../../02_intermediate"}, "path_outside_default_location"),
        ("tenant", {"tenant": f"../03_primary/final.txt/{FAKE_LATEST}"}, ""),
        # ... or onto another dataset's file, or into its versions, or over it.
        ("hostile_src", {"src": "data/02_intermediate/stage.txt"}, "path_overlaps_dataset"),
        ("hostile_src", {"src": "data/hostile/../02_intermediate/stage.txt"}, ""),
        ("hostile_src", {"src": f"data/03_primary/final.txt/{FAKE_LATEST}/final.txt"}, ""),
        ("hostile_src", {"src": "data/06_models/payload.txt"}, "path_overlaps_dataset"),
        ("hostile_src", {"src": "data/03_primary"}, "path_overlaps_dataset"),
        # Into (or over) its own default location: another tenant's file.
        ("tenant", {"tenant": f"default/out.txt/{FAKE_LATEST}"}, "path_overlaps_dataset"),
    ],
)
def test_params_may_not_aim_a_dataset_at_another_ones_files(
    service: ServiceProcess, pipeline: str, params: dict[str, Any], code: str
) -> None:
    problem = _refused(service, {"pipeline_names": [pipeline], "params": params})
    expected = {code} if code else {"path_outside_default_location", "path_overlaps_dataset"}
    assert expected & _codes(problem), problem


def test_nul_in_a_path_is_refused(service: ServiceProcess) -> None:
    problem = _refused(service, {"pipeline_names": ["tenant"], "params": {"tenant": "a\x00b"}})
    assert "NUL" in problem["errors"][0]["msg"]


def test_a_symlink_out_of_the_data_root_is_followed_before_checking(
    service: ServiceProcess, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = service.project / "data" / "escape_link"
    link.symlink_to(outside, target_is_directory=True)
    try:
        for body in (
            {"pipeline_names": ["tenant"], "params": {"tenant": "../escape_link"}},
            {"pipeline_names": ["hostile_src"], "params": {"src": "data/escape_link/x.txt"}},
        ):
            assert "path_outside_data_root" in _codes(_refused(service, body))
        assert list(outside.iterdir()) == []
    finally:
        link.unlink()


@pytest.mark.parametrize(
    ("load_versions", "code"),
    [
        ({"payload": "../../secret"}, "bad_version"),
        ({"payload": "..\\..\\secret"}, "bad_version"),
        ({"payload": "a" * 65}, "string_too_long"),
        ({"names": "2026-01-01T00.00.00.000Z"}, "not_versioned"),
        ({"no_such_dataset": "v"}, "unknown_dataset"),
        ({"x" * 100_000: "v"}, "string_too_long"),
    ],
)
def test_load_versions_are_checked_with_bounded_messages(
    service: ServiceProcess, load_versions: dict[str, str], code: str
) -> None:
    body = {"pipeline_names": ["versioned", "stages"], "load_versions": load_versions}
    problem = _refused(service, body)
    assert code in _codes(problem), problem
    assert all(len(json.dumps(e)) < 1000 for e in problem["errors"])


# -- c.5 sizes and shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"pipeline_names": ["x" * 300_000]},
        {"node_names": ["a"] * 100_000},
        {"tags": ["a"] * 1001},
        {"namespaces": ["a"] * 1001},
        {"from_inputs": ["a"] * 1001},
        {"load_versions": {f"d{i}": "v" for i in range(1001)}},
        {"params": {"x": [0] * 1001}},
        {"params": {"big": "x" * (64 * 1024 + 1)}},
    ],
)
def test_oversized_values_are_422(service: ServiceProcess, body: dict[str, Any]) -> None:
    _refused(service, body)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"params": {"x": ' + b"9" * 5000 + b"}}",
        b'{"params": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"params": {"x": "\xff\xfe"}}',
    ],
)
def test_unparseable_bodies_are_clean_problems(service: ServiceProcess, raw: bytes) -> None:
    with _nothing_reaches_a_worker(service):
        response = _post(service, raw)
    assert response.status_code in (400, 422), response.text[:500]
    assert response.headers["content-type"] == PROBLEM


def test_compressed_bodies_are_415(service: ServiceProcess) -> None:
    import gzip

    body = gzip.compress(json.dumps({"pipeline_names": ["noop"]}).encode())
    for path in ("/runs", "/runs/plan", "/run"):
        problem = _refused(service, body, 415, path, **{"content-encoding": "gzip"})
        assert "Content-Encoding" in problem["detail"]
    spec = service.client.get("/openapi.json").json()
    for path, method in (("/runs", "post"), ("/runs/plan", "post"), ("/run", "post")):
        assert PROBLEM in spec["paths"][path][method]["responses"]["415"]["content"]


# -- the same through Kedro's POST /run -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"pipeline_names": ["noop"], "params": _bomb()},
        {"pipeline_names": ["typed"], "params": {"dtype": PICKLE}},
        {"pipeline_names": ["hostile_type"], "params": {"dataset": {"type": PICKLE}}},
        {"pipeline_names": ["hostile_parts"], "params": {"part_type": PICKLE}},
        {"pipeline_names": ["hostile_src"], "params": {"src": "file:///etc/passwd"}},
        {"pipeline_names": ["tenant"], "params": {"tenant": "../../../../etc"}},
        {"pipeline_names": ["versioned"], "load_versions": {"payload": "../../secret"}},
        {"pipeline_names": ["noop"], "runner": "os.system"},
        {"pipeline_names": ["x" * 300_000]},
    ],
)
def test_kedro_compatible_run_refuses_the_same(
    service: ServiceProcess, body: dict[str, Any]
) -> None:
    """Kedro's own server answers failures as a 200 with `status: failure`; the service
    does so for what the project refuses, and Kedro's 422 for a malformed request."""
    with _nothing_reaches_a_worker(service):
        response = _post(service, body, "/run")
    if response.status_code == 200:
        assert response.json()["status"] == "failure"
        assert len(response.json()["error"]["message"]) < 4100
    else:
        assert response.status_code == 422, response.text[:500]
        assert response.headers["content-type"] == "application/json"
        assert response.json()["detail"][0]["msg"]


# -- the guard's rules, in-process ------------------------------------------------------


def test_other_protocols_only_when_the_server_allows_them(tmp_path: Path) -> None:
    from app.kedro_bridge.location_rules import Policy, location_problem

    root = tmp_path / "data"
    root.mkdir()
    local_only = Policy(str(root))
    with_s3 = Policy(str(root), frozenset({"file", "s3"}))
    assert location_problem(f"{root}/a/b.csv", local_only) is None
    assert location_problem(f"file://{root}/a.csv", local_only) is None
    assert location_problem("s3://bucket/x", local_only) == (
        "protocol_not_allowed",
        "protocol 's3' is not one of file",
    )
    assert location_problem("s3://bucket/x", with_s3) is None
    assert location_problem("simplecache::s3://bucket/x", with_s3) is not None  # chained
    assert str(location_problem("memory://x", with_s3)).startswith("('protocol_not_allowed'")
    outside = location_problem(f"{root}/../x", with_s3)  # local paths are still contained
    assert outside is not None
    assert outside[0] == "path_outside_data_root"


def test_options_cover_nested_wrappers() -> None:
    from app.kedro_bridge.catalog_guard import options

    wrapper = {
        "type": "partitions.PartitionedDataset",
        "dataset": {"type": "text.TextDataset", "load_args": {"engine": "c"}},
        "credentials": {"sha256": "x"},
    }
    changed = {**wrapper, "dataset": {"type": PICKLE, "load_args": {"engine": "c"}}}
    assert options(wrapper) != options(changed)
    assert ("dataset.load_args.engine", '"c"') in options(wrapper)
    shorthand = {"type": "partitions.PartitionedDataset", "dataset": "text.TextDataset"}
    assert options(shorthand) != options({**shorthand, "dataset": PICKLE})


def test_options_and_locations_cover_every_nested_dataset() -> None:
    from app.kedro_bridge.catalog_guard import locations, options

    incremental = {
        "type": "partitions.IncrementalDataset",
        "path": "/p/data/parts",
        "dataset": "pandas.CSVDataset",
        "checkpoint": {"type": "text.TextDataset", "filepath": "/p/data/ckpt"},
    }
    retyped = {**incremental, "checkpoint": {"type": PICKLE, "filepath": "/p/data/ckpt"}}
    assert options(incremental) != options(retyped)
    moved = {**incremental, "checkpoint": {"type": "text.TextDataset", "filepath": "/etc/x"}}
    assert ("checkpoint.filepath", "/etc/x") in locations(moved)
    assert ("path", "/p/data/parts") in locations(moved)
    # A suffix is part of every partition's path: "/../../x" would leave the data root.
    partitioned = {"type": "partitions.PartitionedDataset", "path": "/p/data/parts"}
    suffixed = {**partitioned, "filename_suffix": "/../../x"}
    assert options(partitioned) != options(suffixed)


def test_a_moved_nested_location_is_checked_too(tmp_path: Path) -> None:
    from app.kedro_bridge.catalog_guard import Policy, ResolvedDataset, params_driven_errors

    root = tmp_path / "data"
    root.mkdir()
    usual = {
        "type": "x.Incremental",
        "path": f"{root}/parts",
        "checkpoint": {"type": "t.T", "filepath": f"{root}/parts/CHECKPOINT"},
    }

    def errors_for(moved: dict[str, Any]) -> list[str]:
        found = params_driven_errors(
            ["ds"],
            lambda _: ResolvedDataset.of(moved),
            lambda _: ResolvedDataset.of(usual),
            Policy(str(root)),
        )
        return [error.type for error in found]

    assert errors_for({**usual, "checkpoint": {"type": "t.T", "filepath": "/etc/passwd"}}) == [
        "path_outside_data_root"
    ]
    # Params change a location's value; adding one where the project has none is no move.
    added = {**usual, "checkpoint": {"type": "t.T", "filepath": f"{root}/c", "path": f"{root}/d"}}
    assert errors_for(added) == ["param_changes_dataset_option"]


@pytest.mark.parametrize("location", ["x:foo", "data:,a/../data/x", "data/01_raw/x.csv"])
def test_a_relative_local_location_is_refused(tmp_path: Path, location: str) -> None:
    from app.kedro_bridge.location_rules import Policy, location_problem

    # Kedro makes the project's local paths absolute; a relative one would resolve against
    # whatever directory a process happens to run in.
    problem = location_problem(location, Policy(str(tmp_path)))
    assert problem is not None
    assert problem[0] == "bad_path"


def test_every_spelling_of_a_local_file_is_one_conflict_key(tmp_path: Path) -> None:
    from app.kedro_bridge.resolved_catalog import normalise

    target = tmp_path / "data" / "stage.txt"
    target.parent.mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    spellings = [
        str(target),
        f"file://{target}",
        f"FILE://{target}",
        f"local://{target}",
        f"file:///{target}",
        f"//{target}",
        f"{tmp_path}/data/../data/stage.txt",
        f"{link}/stage.txt",
    ]
    assert {normalise(spelling) for spelling in spellings} == {os.path.realpath(target)}


def test_datasets_at_one_url_or_location_share_a_conflict_key() -> None:
    """Dispatch keeps runs apart that write one place, whatever key a dataset names it by."""
    from app.domain.runs import Footprint
    from app.kedro_bridge.resolved_catalog import ResolvedCatalog

    catalog = ResolvedCatalog(
        {
            "api_a": {"type": "api.APIDataset", "url": "https://api.example/v1/items"},
            "api_b": {"type": "api.APIDataset", "url": "https://api.example/v1/items?x=1"},
            "table_a": {"type": "databricks.ManagedTableDataset", "location": "s3://b/t"},
            "table_b": {"type": "some.Dataset", "location": "s3://b/t"},
            "wrapped": {"type": "CachedDataset", "dataset": {"type": "x.Y", "url": "s3://b/t"}},
        }
    )
    keys = {name: catalog.locate(name).key for name in ("api_a", "api_b", "table_a", "table_b")}
    assert keys["api_a"] == keys["api_b"] == "https://api.example/v1/items"
    assert keys["table_a"] == keys["table_b"] == catalog.locate("wrapped").key == "s3://b/t"
    writes_a = Footprint(writes=frozenset({keys["api_a"]}))
    assert writes_a.conflicts_with(Footprint(writes=frozenset({keys["api_b"]})))


def test_a_moved_location_stays_under_what_params_do_not_choose(tmp_path: Path) -> None:
    from app.kedro_bridge.location_rules import placement_problem

    root = tmp_path / "data"
    default = f"{root}/tenants/default/out.csv"

    def code(location: str) -> str | None:
        problem = placement_problem("t", location, default, {"t": (default,)})
        return problem[0] if problem else None

    assert code(f"{root}/tenants/acme/out.csv") is None
    assert code(f"{root}/tenants/sub/dir/out.csv") is None
    assert code(f"file://{root}/tenants/acme/out.csv") is None
    assert code(f"{root}/tenants/../chain/out.csv") == "path_outside_default_location"
    assert code(f"{root}/tenants/default/../../x.csv") == "path_outside_default_location"
    assert code(f"{default}/{FAKE_LATEST}/out.csv") == "path_overlaps_dataset"
    # Part of a name may come from params: `data/tenant_${...}` keeps `tenant_`.
    partial = f"{root}/tenant_default.csv"
    assert placement_problem("p", f"{root}/tenant_acme.csv", partial, {}) is None
    moved = placement_problem("p", f"{root}/tenant_x/../other.csv", partial, {})
    assert moved is not None
    assert moved[0] == "path_outside_default_location"


def test_credentials_are_compared_as_digests() -> None:
    from app.kedro_bridge.config_reach import credential_digests, credentials_errors

    usual = credential_digests({"minio": {"key": "k", "endpoint_url": "http://minio:9000"}})
    moved = credential_digests({"minio": {"key": "k", "endpoint_url": "http://evil:9000"}})
    assert "k" not in str(usual)
    assert "minio:9000" not in str(usual)
    assert credentials_errors(usual, dict(usual)) == []
    assert [e.type for e in credentials_errors(moved, usual)] == ["credentials_changed"]
    assert "'minio'" in credentials_errors(moved, usual)[0].msg
    assert credentials_errors(None, usual) != []  # they stop resolving with these params
    assert credentials_errors(None, None) == []
