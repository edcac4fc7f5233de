"""The committed OpenAPI document is good enough for a real client generator.

``openapi-python-client`` (from PyPI) generates a Python package from
``openapi/openapi.json``; pip installs it into a temporary directory; the tests then
use that package, and only it, against the running service: submit a run, wait for
it, list runs, read its events and read a problem on bad input.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import ServiceProcess

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
PACKAGE = "kedro_runs_client"
# No post hooks (generate_client): the generator would otherwise run `ruff` from PATH
# over its output.


class Generated:
    """The generator's verdict on the document and the installed client package."""

    def __init__(self, returncode: int, output: str, package: ModuleType) -> None:
        self.returncode = returncode
        self.output = output
        self.package = package


def generate_client(
    root: Path, spec: Path, package: str, *, fail_on_warning: bool = True
) -> Iterator[Generated]:
    """Generate the client package ``package`` from ``spec`` with openapi-python-client,
    pip install it under ``root`` and yield it importable (removed again afterwards)."""
    config = root / "config.yml"
    config.write_text(
        f"package_name_override: {package}\nproject_name_override: {package.replace('_', '-')}\n"
        "post_hooks: []\n"
    )
    project = root / "project"
    generate = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(project),
            "--meta",
            "setup",
            "--config",
            str(config),
            *(["--fail-on-warning"] if fail_on_warning else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = generate.stdout + generate.stderr
    # With warnings the generator exits 1 but still writes the client; a hard error
    # writes nothing, and that fails here.
    assert (project / "setup.py").is_file(), output

    target = root / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",  # httpx, attrs and python-dateutil come with the generator
            "--no-input",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / package / "__init__.py").is_file()

    sys.path.insert(0, str(target))
    try:
        module = importlib.import_module(package)
        assert Path(module.__file__).is_relative_to(target)
        yield Generated(generate.returncode, output, module)
    finally:
        sys.path.remove(str(target))
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    yield from generate_client(tmp_path_factory.mktemp("generated-client"), SPEC, PACKAGE)


@pytest.fixture
def client(generated: Generated, service: ServiceProcess) -> Iterator[Any]:
    from kedro_runs_client import Client

    # Longer than the 30 s long poll of getRun.
    with Client(
        base_url=service.url, timeout=httpx.Timeout(60), raise_on_unexpected_status=True
    ) as c:
        yield c


def test_generator_takes_the_document_without_warnings(generated: Generated) -> None:
    # A warning means part of the API is missing from every generated client
    # (an operation, a model, or a response that stays unparsed).
    assert generated.returncode == 0, generated.output


def test_submit_wait_list_and_read_events(client: Any) -> None:
    from kedro_runs_client.api.runs import create_run, get_run, list_run_events, list_runs
    from kedro_runs_client.models import EventType, RunCreate, RunOut, RunPageOut, RunStatus

    created = create_run.sync_detailed(client=client, body=RunCreate(pipeline_names=["noop"]))
    assert created.status_code == 202, created.content
    assert isinstance(created.parsed, RunOut)
    run_id = created.parsed.run_id
    assert created.parsed.pipeline_names == ["noop"]
    assert created.parsed.status in {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED}

    deadline = time.monotonic() + 60
    while True:
        fetched = get_run.sync_detailed(run_id, client=client, wait=30)
        assert fetched.status_code == 200, fetched.content
        run = fetched.parsed
        assert isinstance(run, RunOut)
        if run.status not in {RunStatus.QUEUED, RunStatus.RUNNING}:
            break
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
    assert run.status == RunStatus.SUCCEEDED, run.to_dict()
    assert run.run_id == run_id
    assert run.error is None

    # Newest first, paged by cursor; other tests share this service, so page until found.
    found = None
    cursor = None
    for _ in range(100):
        listed = list_runs.sync_detailed(client=client, pipeline="noop", limit=20, cursor=cursor)
        assert listed.status_code == 200, listed.content
        page = listed.parsed
        assert isinstance(page, RunPageOut)
        found = next((item for item in page.items if item.run_id == run_id), None)
        if found is not None or page.next_ is None:
            break
        cursor = page.next_
    assert found is not None, f"run {run_id} not listed"
    assert found.status == RunStatus.SUCCEEDED
    assert found.pipeline_names == ["noop"]

    read = list_run_events.sync_detailed(run_id, client=client)
    assert read.status_code == 200, read.content
    events = read.parsed.items
    assert events[0].type_ == EventType.RUN_QUEUED
    assert events[-1].type_ == EventType.RUN_SUCCEEDED
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert read.parsed.last_seq == events[-1].seq

    rest = list_run_events.sync_detailed(run_id, client=client, after=events[0].seq)
    assert rest.status_code == 200, rest.content
    assert [event.seq for event in rest.parsed.items] == [event.seq for event in events[1:]]


def test_bad_input_reads_as_a_problem(client: Any) -> None:
    from kedro_runs_client.api.runs import create_run
    from kedro_runs_client.models import Problem, RunCreate

    response = create_run.sync_detailed(client=client, body=RunCreate(pipeline_names=["nope"]))
    assert response.status_code == 422, response.content
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.parsed
    assert isinstance(problem, Problem)
    assert problem.status == 422
    assert problem.title
    assert problem.detail
    assert problem.type_
    assert problem.errors
    assert problem.errors[0].loc == ["body", "pipeline_names", 0]
    assert problem.errors[0].msg
