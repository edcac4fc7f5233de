"""Assembling the run service from its parts, and taking it apart in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from sqlalchemy.engine import make_url

from app import faults
from app.domain.cluster_scheduler import ClusterScheduler
from app.domain.ledger import RunLedger
from app.domain.ports import RunHooks
from app.domain.redaction import environment_secrets_in, remember_secrets
from app.domain.retention import RetentionPolicy, prune_periodically
from app.domain.service import RunService
from app.kedro_bridge.credentials import credential_secrets
from app.kedro_bridge.inspector import KedroInspector
from app.kedro_bridge.project import (
    ProjectLocation,
    check_location,
    disable_telemetry,
)
from app.logging_setup import configure_service_logging
from app.persistence.notices import PgChangeListener
from app.persistence.store import SqlRunStore
from app.plugins.manager import create_plugin_manager
from app.plugins.webhooks import WebhookPlugin
from app.settings import Settings
from app.worker.pool import ProcessWorkerPool
from app.worker.process import WorkerConfig

logger = logging.getLogger("kedro_runs")


def project_location(settings: Settings) -> ProjectLocation:
    return ProjectLocation(
        project_path=settings.project_root(),
        package=settings.package,
        env=settings.env,
        conf_source=settings.conf_source.resolve() if settings.conf_source else None,
    )


def _known_secrets(settings: Settings, credentials: set[str]) -> set[str]:
    """What the API process masks wherever it shows: the project's credentials, the
    environment's secrets and the service's own (the webhook secret, and the webhook
    URLs: Slack's and Discord's carry their credential in the path)."""
    own = [settings.webhook_secret.get_secret_value()] if settings.webhook_secret else []
    return credentials | environment_secrets_in(os.environ) | set(own) | set(settings.webhook_urls)


def _run_service(
    settings: Settings,
    store: SqlRunStore,
    inspector: KedroInspector,
    pool: ProcessWorkerPool,
    hooks: RunHooks,
) -> RunService:
    """The embedded service, or, in cluster mode, a replica of one."""
    if not settings.cluster:
        return RunService.local(
            store,
            inspector,
            pool,
            cancel_grace_seconds=settings.cancel_grace_seconds,
            hooks=hooks,
            max_queued_runs=settings.max_queued_runs,
            default_timeout_seconds=settings.run_timeout_seconds,
            max_timeout_seconds=settings.max_run_timeout_seconds,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        )
    ledger = RunLedger(store, hooks)
    scheduler = ClusterScheduler(
        ledger,
        pool,
        store.cluster(),
        PgChangeListener(settings.store_url()),
        cancel_grace_seconds=settings.cancel_grace_seconds,
        max_queued_runs=settings.max_queued_runs,
        default_timeout_seconds=settings.run_timeout_seconds,
        max_timeout_seconds=settings.max_run_timeout_seconds,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
    return RunService(
        ledger, scheduler, inspector, idempotency_ttl_seconds=settings.idempotency_ttl_seconds
    )


@asynccontextmanager
async def open_run_service(
    settings: Settings, plugins: list[object] | None = None
) -> AsyncIterator[RunService]:
    """Open store, project and pool; yield the started service; close all in reverse
    (the pool stops first), also when opening fails half-way."""
    disable_telemetry()
    faults.arm_from_environment()  # test-only crash points; a no-op when unset
    location = project_location(settings)
    check_location(location)
    with ExitStack() as resources:
        # First: fails fast if the store is in use (by another service; in cluster mode, by
        # a service that is not a replica).
        store = SqlRunStore(settings.store_url(), shared=settings.cluster)
        resources.callback(store.close)
        inspector = KedroInspector(
            location,
            settings.data_root.resolve() if settings.data_root else None,
            settings.allowed_protocols,
        )
        resources.callback(inspector.close)
        remember_secrets(_known_secrets(settings, credential_secrets(inspector.session)))
        # Opening the project installed Kedro's rich logging; use ours.
        configure_service_logging(settings.log_level, settings.log_json)
        pool = ProcessWorkerPool(
            WorkerConfig(
                location,
                settings.worker_log_level,
                settings.run_log_level,
                settings.run_log_cap,
                settings.output_inline_max_bytes,
                settings.data_root.resolve() if settings.data_root else None,
                tuple(settings.allowed_protocols),
            ),
            settings.workers,
            start_timeout=settings.worker_start_timeout_seconds,
        )
        plugins = list(plugins or [])
        if settings.webhook_urls and settings.webhook_secret is not None:
            webhooks = WebhookPlugin(
                settings.webhook_urls,
                settings.webhook_secret.get_secret_value(),
                settings.webhook_timeout_seconds,
                settings.webhook_retries,
            )
            webhooks.start()
            resources.callback(webhooks.stop)
            plugins.append(webhooks)
        service = _run_service(settings, store, inspector, pool, create_plugin_manager(plugins))
        await service.start()
        retention = RetentionPolicy(settings.retention_days, settings.idempotency_ttl_seconds)
        pruner = asyncio.create_task(
            prune_periodically(store, retention, settings.prune_interval_seconds),
            name="run-store-prune",
        )
        logger.info(
            "serving %s with %d worker(s); store %s",
            location.project_path,
            settings.workers,
            make_url(settings.store_url()).render_as_string(hide_password=True),
        )
        try:
            yield service
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner  # ends with its batch under way, before the store closes
            await service.stop(settings.drain_seconds)
