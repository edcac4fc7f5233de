"""Pipelines of the test project, one per behaviour the tests exercise."""

from __future__ import annotations

import multiprocessing
import os
import time

from kedro.pipeline import Pipeline, node, pipeline

from kr_testproject import nodes


def _slow() -> Pipeline:
    steps = [node(nodes.start_count, None, "count_0", name="slow_start", tags=["slow"])]
    for i in range(1, 4):
        steps.append(
            node(
                nodes.sleep_step,
                [f"count_{i - 1}", "params:slow.seconds"],
                f"count_{i}",
                name=f"slow_step_{i}",
                tags=["slow"],
            )
        )
    return Pipeline(steps)


def _reporting() -> Pipeline:
    return pipeline(
        [node(nodes.summarise, "params:message", "report", name="summarise", tags=["report"])],
        namespace="reporting",
        parameters={"params:message"},
    )


def _hold_workers_back() -> None:
    # For the readiness test: worker processes take this long to load the project.
    delay = os.environ.get("KR_TEST_WORKER_START_DELAY")
    if delay and multiprocessing.current_process().name.startswith("kedro-runs-worker"):
        time.sleep(float(delay))


HOSTILE_DATASETS = (
    "hostile_type",
    "hostile_cached",
    "hostile_parts",
    "hostile_generic",
    "hostile_pickle",
    "hostile_csv",
    "hostile_src",
)


def _hostile() -> dict[str, Pipeline]:
    """One pipeline per hostile-input fixture of the catalog: a node that writes it."""
    return {
        name: Pipeline([node(nodes.echo_payload, "params:payload", name, name=f"write_{name}")])
        for name in HOSTILE_DATASETS
    }


# Datasets only tests/test_catalog_guard_options.py defines (elsewhere MemoryDatasets):
# `atk_<name>` writes `<name>`.
GUARD_ATTACK_DATASETS = (
    "api_out",
    "api_host",
    "inc_parts",
    "inc_late",
    "flag_out",
    "parts_out",
    "glob_out",
)


def _guard_attacks() -> dict[str, Pipeline]:
    return {
        f"atk_{name}": Pipeline(
            [node(nodes.echo_payload, "params:payload", name, name=f"write_{name}")]
        )
        for name in GUARD_ATTACK_DATASETS
    }


def register_pipelines() -> dict[str, Pipeline]:
    _hold_workers_back()
    stages = Pipeline(
        [
            node(
                nodes.prepare,
                ["names", "params:token"],
                "stage_intermediate",
                name="prepare",
                tags=["stage"],
            ),
            node(
                nodes.pause,
                ["stage_intermediate", "params:delay"],
                "stage_paused",
                name="pause",
                tags=["stage"],
            ),
            node(
                nodes.finish,
                ["stage_intermediate", "stage_paused"],
                "stage_final",
                name="finish",
                tags=["stage"],
            ),
        ]
    )
    return {
        "__default__": stages,
        "noop": Pipeline(
            [node(nodes.return_one, None, "one", name="return_one", tags=["trivial"])]
        ),
        "tenant": Pipeline(
            [
                node(
                    nodes.write_tenant,
                    ["params:tenant", "params:delay"],
                    "tenant_out",
                    name="write_tenant",
                )
            ]
        ),
        "stages": stages,
        "versioned": Pipeline(
            [node(nodes.echo_payload, "params:payload", "payload", name="echo_payload")]
        ),
        "slow": _slow(),
        "stuck": Pipeline(
            [node(nodes.sleep_forever, "params:sleep_forever", "stuck_out", name="sleep_forever")]
        ),
        "segfault": Pipeline([node(nodes.segfault, None, "segfault_out", name="segfault")]),
        "sigkill": Pipeline([node(nodes.kill_self, None, "sigkill_out", name="kill_self")]),
        "probe": Pipeline([node(nodes.probe_environment, None, "probe_out", name="probe")]),
        "chatty": Pipeline(
            [
                node(
                    nodes.chatter,
                    ["params:chatty.token", "params:chatty.count", "params:chatty.seconds"],
                    "chatty_out",
                    name="chatter",
                )
            ]
        ),
        "numbers": Pipeline([node(nodes.many_numbers, "params:count", "numbers", name="numbers")]),
        "typed": Pipeline([node(nodes.echo_payload, "params:payload", "typed_out", name="typed")]),
        "flaky": Pipeline(
            [
                node(
                    nodes.lost_on_first_attempt,
                    ["params:flaky.token", "params:flaky.mode"],
                    "flaky_out",
                    name="lost_on_first_attempt",
                )
            ]
        ),
        # The same, writing a file every run of it shares: such runs queue behind each other.
        "flaky_shared": Pipeline(
            [
                node(
                    nodes.lost_on_first_attempt,
                    ["params:flaky.token", "params:flaky.mode"],
                    "flaky_shared",
                    name="lost_on_first_attempt_shared",
                )
            ]
        ),
        "crash": Pipeline([node(nodes.exit_process, None, "crash_out", name="exit_process")]),
        "fail": Pipeline(
            [node(nodes.raise_error, "params:message", "fail_out", name="raise_error")]
        ),
        "reporting": _reporting(),
        "secrets": Pipeline(
            [node(nodes.leak_secrets, "params:payload", "secrets_out", name="leak_secrets")]
        ),
        "free_output": Pipeline(
            [node(nodes.echo_payload, "params:payload", "free_payload", name="free_payload")]
        ),
        # Reads `guarded_store`, which only tests/test_secrets.py defines (with credentials).
        "secret_read": Pipeline(
            [node(nodes.read_text, "guarded_store", "secret_copy", name="read_guarded_store")]
        ),
        **_hostile(),
        **_guard_attacks(),
    }
