"""One typed settings tree, read once at start-up and passed to whatever needs it.

Every field is also an environment variable with the prefix ``KEDRO_RUNS_``
(``KEDRO_RUNS_WORKERS=4``); command-line flags override the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ApiKey(BaseModel):
    """One API key, known only by the SHA-256 of its text (``kedro-runs new-key`` makes
    one). Keys are long random tokens, so a fast hash is enough: nobody can guess one
    from its hash, and the service never holds the key itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$"),
        Field(description="Who holds the key; the owner of the runs it creates."),
    ]
    sha256: Annotated[
        str,
        StringConstraints(pattern=r"^[0-9a-f]{64}$"),
        Field(description="Hex SHA-256 of the key's text."),
    ]
    admin: Annotated[bool, Field(description="Sees and may cancel every key's runs.")] = False

    @model_validator(mode="after")
    def _not_anonymous(self) -> ApiKey:
        if self.name == "anonymous":
            # The owner of runs made without keys; a key of that name would inherit them.
            raise ValueError("an API key may not be named 'anonymous'")
        return self


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the service on this machine. A host name
    other than ``localhost`` may resolve anywhere, so it counts as beyond loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _default_workers() -> int:
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """How one kedro-runs process is configured."""

    model_config = SettingsConfigDict(env_prefix="KEDRO_RUNS_", extra="forbid", frozen=True)

    project: Annotated[
        Path | None,
        Field(description="Kedro project directory. Default: the current directory."),
    ] = None
    package: Annotated[
        str | None,
        Field(
            description="Packaged mode: the import name of an installed Kedro project package. "
            "Use with conf_source."
        ),
    ] = None
    env: Annotated[str | None, Field(description="Kedro configuration environment.")] = None
    conf_source: Annotated[
        Path | None, Field(description="Configuration directory (required in packaged mode).")
    ] = None
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[
        int,
        Field(ge=0, le=256, description="Worker processes; 0 (cluster mode only): none here."),
    ] = Field(default_factory=_default_workers)
    database: Annotated[
        str | None,
        Field(description="SQLAlchemy URL of the run store. Default: SQLite in state_dir."),
    ] = None
    cluster: Annotated[
        bool,
        Field(
            description="Serve as one of several replicas on one PostgreSQL database: the "
            "queue, leases and notices live in the database (see the README)."
        ),
    ] = False
    lease_seconds: Annotated[
        float,
        Field(
            ge=1,
            le=3600,
            description="Cluster mode: a replica silent this long is dead; its runs are "
            "ended or requeued by the others.",
        ),
    ] = 10.0
    heartbeat_seconds: Annotated[
        float,
        Field(gt=0, le=600, description="Cluster mode: how often a replica renews its lease."),
    ] = 2.0
    state_dir: Annotated[
        Path | None,
        Field(description="Where the embedded store lives. Default: <project>/.kedro-runs."),
    ] = None
    drain_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="On SIGTERM, how long running runs may go on before they are interrupted.",
        ),
    ] = 20.0
    max_queued_runs: Annotated[
        int,
        Field(
            ge=1,
            le=1_000_000,
            description="Past this many queued runs, submissions get 429 with Retry-After.",
        ),
    ] = 1000
    run_timeout_seconds: Annotated[
        float, Field(gt=0, le=366 * 86400, description="Timeout of a run that asks for none.")
    ] = 24 * 3600.0
    max_run_timeout_seconds: Annotated[
        float, Field(gt=0, le=366 * 86400, description="Longest timeout a run may ask for.")
    ] = 7 * 24 * 3600.0
    idempotency_ttl_seconds: Annotated[
        float, Field(gt=0, le=30 * 86400, description="How long an Idempotency-Key holds.")
    ] = 86400.0
    retention_days: Annotated[
        float,
        Field(
            ge=0,
            le=36500,
            description="How long a finished run (with its events, logs and outputs) is kept "
            "after it finished; 0 keeps finished runs forever. Expired Idempotency-Keys are "
            "pruned after idempotency_ttl_seconds either way.",
        ),
    ] = 30.0
    prune_interval_seconds: Annotated[
        float,
        Field(gt=0, le=7 * 86400, description="How often the service prunes its store."),
    ] = 3600.0
    data_root: Annotated[
        Path | None,
        Field(description="Where caller params may point datasets. Default: <project>/data."),
    ] = None
    allowed_protocols: Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=50,
            description="Protocols caller params may point a dataset at. `file` (the "
            "default, alone) means local paths, which must stay under data_root; any other "
            "protocol listed (e.g. `s3`) is allowed on the host (bucket) of the dataset's "
            "own remote location, or anywhere for a local one.",
        ),
    ] = ["file"]
    cancel_grace_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="How long a cancelled run may take to reach a node "
            "boundary before its worker process is killed.",
        ),
    ] = 10.0
    worker_start_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 120.0
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * MIB)] = MIB
    body_timeout_seconds: Annotated[
        float,
        Field(gt=0, le=3600, description="A request body must have arrived within this (408)."),
    ] = 30.0
    header_timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Request headers must have arrived within this after the connection "
            "opened or its previous response ended (408, or a close when nothing came).",
        ),
    ] = 10.0
    max_connections: Annotated[
        int,
        Field(
            ge=1,
            le=100_000,
            description="Open connections at most; one past this is answered 503 and closed.",
        ),
    ] = 512
    sse_heartbeat_seconds: Annotated[
        float, Field(gt=0, le=60, description="Comment heartbeat interval of event streams.")
    ] = 15.0
    sse_max_seconds: Annotated[
        float, Field(gt=0, le=86400, description="Longest an event stream stays open.")
    ] = 3600.0
    log_level: str = "info"
    log_json: Annotated[
        bool, Field(description="Log JSON lines with request_id and run_id (API process).")
    ] = False
    run_log_level: Annotated[
        str, Field(description="Lowest level of the records kept in each run's log.")
    ] = "INFO"
    run_log_cap: Annotated[
        int, Field(ge=0, le=1_000_000, description="Most log records kept per run.")
    ] = 10_000
    output_inline_max_bytes: Annotated[
        int, Field(ge=0, le=16 * MIB, description="Largest free output returned inline.")
    ] = 64 * 1024
    webhook_urls: Annotated[
        list[str],
        Field(
            max_length=20,
            description="Where the end of every run is POSTed (JSON, signed). "
            "Set here only, never by a request.",
        ),
    ] = []
    webhook_secret: Annotated[
        SecretStr | None,
        Field(
            description="Signs webhook deliveries (Standard Webhooks): `whsec_` + base64, "
            "or any string, whose UTF-8 bytes are then the HMAC key."
        ),
    ] = None
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    webhook_retries: Annotated[int, Field(ge=0, le=10)] = 3
    worker_log_level: Annotated[
        str, Field(description="Level of the plain log handler in worker processes.")
    ] = "WARNING"
    api_keys: Annotated[
        list[ApiKey],
        Field(
            max_length=1000,
            description="API keys by hash. When set, every endpoint but /healthz and "
            "/readyz needs `Authorization: Bearer <key>`, and each key sees only its own runs "
            "(admin keys see all).",
        ),
    ] = []
    insecure: Annotated[
        bool,
        Field(description="Allow listening beyond loopback without API keys."),
    ] = False
    allowed_hosts: Annotated[
        list[Annotated[str, StringConstraints(max_length=255)]],
        Field(
            max_length=100,
            description="Without API keys, the Host names served besides loopback ones "
            "(localhost, *.localhost, 127.0.0.1, [::1]); `*` serves any. Ignored with keys.",
        ),
    ] = []
    cors_origins: Annotated[
        list[Annotated[str, StringConstraints(max_length=255)]],
        Field(max_length=100, description="Origins allowed by CORS. Default: none (CORS off)."),
    ] = []
    docs: Annotated[
        bool | None,
        Field(description="Serve /docs. Default: on without API keys, off with them."),
    ] = None

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> Settings:
        names = [key.name for key in self.api_keys]
        hashes = [key.sha256 for key in self.api_keys]
        if len(set(names)) != len(names) or len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: every key needs a name and a hash of its own")
        return self

    @model_validator(mode="after")
    def _no_open_door(self) -> Settings:
        if not is_loopback(self.host) and not self.api_keys and not self.insecure:
            raise ValueError(
                f"refusing to listen on {self.host} without API keys: anyone who can reach "
                "it could run the project's pipelines and read every run. Configure "
                "api_keys (see `kedro-runs new-key`), or pass --insecure to accept that"
            )
        return self

    @model_validator(mode="after")
    def _cors_origins_are_origins(self) -> Settings:
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"cors_origins: {origin!r} is not an http(s) origin")
        return self

    @model_validator(mode="after")
    def _allowed_hosts_are_names(self) -> Settings:
        for host in self.allowed_hosts:
            if host != "*" and not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", host):
                # A URL, a port or a pattern would never match a Host and fail silently.
                raise ValueError(
                    f"allowed_hosts: {host!r} is not a host name (no scheme, port or "
                    "pattern; `*` alone allows any)"
                )
        return self

    @property
    def docs_enabled(self) -> bool:
        return self.docs if self.docs is not None else not self.api_keys

    @model_validator(mode="after")
    def _webhooks_need_a_secret(self) -> Settings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("webhook_urls need webhook_secret: every delivery is signed")
        for url in self.webhook_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {url!r} is not http(s)")
        return self

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> Settings:
        if self.cluster:
            if not self.store_url().startswith("postgresql"):
                raise ValueError(
                    "cluster mode needs a PostgreSQL database (database=postgresql+psycopg://"
                    "…): the replicas share the queue through it"
                )
            if self.heartbeat_seconds * 2 > self.lease_seconds:
                raise ValueError(
                    "heartbeat_seconds must be at most half of lease_seconds, or a live "
                    "replica could be declared dead between two heartbeats"
                )
        elif self.workers == 0:
            raise ValueError("workers=0 needs cluster mode: other replicas must run the runs")
        return self

    @model_validator(mode="after")
    def _packaged_mode_needs_conf(self) -> Settings:
        if self.package is not None and self.conf_source is None:
            raise ValueError(
                "packaged mode (package) needs conf_source: the project's conf/ directory"
            )
        return self

    def project_root(self) -> Path:
        """The project directory; relative dataset paths resolve against it."""
        return (self.project or Path.cwd()).resolve()

    def store_url(self) -> str:
        """The run store's SQLAlchemy URL."""
        if self.database:
            return self.database
        return f"sqlite:///{self.resolved_state_dir() / 'runs.db'}"

    def resolved_state_dir(self) -> Path:
        return (self.state_dir or self.project_root() / ".kedro-runs").resolve()
