"""The built-in metrics plugin: Prometheus counters, histograms and gauges in a
registry of its own (one per app, never the process-global one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.plugins.markers import hook_impl

_DURATIONS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def _pipeline_label(pipeline_names: list[str]) -> str:
    return "+".join(pipeline_names) or "__default__"


class MetricsPlugin:
    """Implements the run hooks; ``observe_gauges`` wires the live figures in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.submitted = Counter(
            "kedro_runs_submitted", "Runs accepted.", ["pipeline"], registry=self.registry
        )
        self.finished = Counter(
            "kedro_runs_finished",
            "Runs ended, by final status.",
            ["pipeline", "status"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "kedro_runs_run_duration_seconds",
            "From a run's start to its end.",
            ["pipeline", "status"],
            buckets=_DURATIONS,
            registry=self.registry,
        )
        self.node_seconds = Histogram(
            "kedro_runs_node_duration_seconds",
            "From a node's start to its end.",
            ["node"],
            buckets=_DURATIONS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "kedro_runs_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "kedro_runs_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=self.registry,
        )
        self._node_started: dict[tuple[str, str], datetime] = {}

    def observe_gauges(self, figures: dict[str, tuple[str, Callable[[], float]]]) -> None:
        """Gauges read when scraped: name -> (help, how to read it)."""
        for name, (help_text, read) in figures.items():
            Gauge(name, help_text, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @hook_impl
    def run_submitted(self, pipeline_names: list[str]) -> None:
        self.submitted.labels(_pipeline_label(pipeline_names)).inc()

    @hook_impl
    def run_finished(
        self,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
    ) -> None:
        pipeline = _pipeline_label(pipeline_names)
        self.finished.labels(pipeline, status).inc()
        if started_at is not None:
            seconds = max(0.0, (finished_at - started_at).total_seconds())
            self.run_seconds.labels(pipeline, status).observe(seconds)

    @hook_impl
    def event_recorded(self, run_id: str, event_type: str, at: datetime, node: str | None) -> None:
        if node is None:
            return
        if event_type == "node_started":
            self._node_started[(run_id, node)] = at
        elif event_type in {"node_completed", "node_failed"}:
            started = self._node_started.pop((run_id, node), None)
            if started is not None:
                self.node_seconds.labels(node).observe(max(0.0, (at - started).total_seconds()))


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: MetricsPlugin) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = str(scope["method"])
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_seconds.labels(method, route).observe(time.perf_counter() - started)
