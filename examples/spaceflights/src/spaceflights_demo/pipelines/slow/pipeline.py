"""Definition of the ``slow`` pipeline, a fixed chain of sleeping nodes."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline, node

from .nodes import slow_step, start_slow_chain

# Number of nodes in the chain. It is fixed when the pipeline is registered,
# so it is a constant rather than a run-time parameter.
STEPS = 5


def create_pipeline(**kwargs: object) -> Pipeline:
    """Chain ``STEPS`` nodes ``slow_step_1`` .. ``slow_step_N``.

    Each node sleeps ``params:slow.seconds_per_step`` seconds and hands the
    running count to the next one through ``slow_counter_<i>``.
    """
    nodes: list[Node] = [
        node(
            func=start_slow_chain,
            inputs="params:slow",
            outputs="slow_counter_1",
            name="slow_step_1",
            tags=["slow"],
        )
    ]
    for step in range(2, STEPS + 1):
        nodes.append(
            node(
                func=slow_step,
                inputs=[f"slow_counter_{step - 1}", "params:slow"],
                outputs=f"slow_counter_{step}",
                name=f"slow_step_{step}",
                tags=["slow"],
            )
        )
    return Pipeline(nodes)
