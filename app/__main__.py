"""The command line: ``kedro-runs serve`` (also ``python -m app serve``), ``new-key``,
``prune``, ``db upgrade|current`` and ``openapi``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kedro-runs",
        description="Run the pipelines of a Kedro project over HTTP. Every flag is also an "
        "environment variable: KEDRO_RUNS_<FLAG> (e.g. KEDRO_RUNS_WORKERS=4).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the service")
    serve.add_argument(
        "--project", type=Path, help="Kedro project directory (default: the current directory)"
    )
    serve.add_argument(
        "--package",
        help="packaged mode: import name of an installed "
        "Kedro project package (needs --conf-source)",
    )
    serve.add_argument("--env", help="Kedro configuration environment")
    serve.add_argument("--conf-source", type=Path, help="configuration directory")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    serve.add_argument(
        "--database",
        help="SQLAlchemy URL of the run store (default: SQLite in the state directory)",
    )
    serve.add_argument(
        "--state-dir", type=Path, help="state directory (default: <project>/.kedro-runs)"
    )
    serve.add_argument(
        "--cluster",
        action="store_const",
        const=True,
        default=None,
        help="serve as one of several replicas on one PostgreSQL --database",
    )
    serve.add_argument(
        "--lease-seconds",
        type=float,
        help="cluster mode: a replica silent this long is dead (default 10)",
    )
    serve.add_argument(
        "--cancel-grace-seconds",
        type=float,
        help="how long a cancelled run may take before its worker is killed",
    )
    serve.add_argument("--log-level", help="log level of the service (default info)")
    serve.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        default=None,
        help="allow listening beyond loopback without API keys (anyone who can reach the "
        "port can then run pipelines)",
    )
    serve.add_argument(
        "--log-json",
        action="store_const",
        const=True,
        default=None,
        help="log JSON lines with request_id and run_id",
    )
    new_key = commands.add_parser(
        "new-key", help="make an API key: prints the key once, and the settings entry to add"
    )
    new_key.add_argument("--name", required=True, help="who holds it (owner of its runs)")
    new_key.add_argument("--admin", action="store_true", help="the key sees every key's runs")
    from app.db_command import add_parser as add_db_parser
    from app.prune_command import add_parser as add_prune_parser

    add_prune_parser(commands)
    add_db_parser(commands)
    openapi = commands.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument(
        "--output",
        type=Path,
        default=Path("openapi/openapi.json"),
        help="where to write it (default openapi/openapi.json; - for stdout)",
    )
    openapi.add_argument(
        "--no-keys",
        action="store_true",
        help="describe a service without API keys (no operation requires a key); by "
        "default the document is a keyed deployment's, as committed",
    )
    return parser


def _settings(arguments: argparse.Namespace) -> Any:
    from app.settings import Settings

    given = {
        key: value
        for key, value in vars(arguments).items()
        if key != "command" and value is not None
    }
    return Settings(**given)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    from app.kedro_bridge.project import disable_telemetry

    disable_telemetry()  # before anything imports Kedro (it configures logging on import)
    if arguments.command == "openapi":
        return _write_openapi(arguments.output, keys=not arguments.no_keys)
    if arguments.command == "new-key":
        return _new_key(arguments.name, arguments.admin)
    if arguments.command == "prune":
        return _prune(arguments)
    if arguments.command == "db":
        return _db(arguments)
    try:
        settings = _settings(arguments)
    except ValidationError as error:
        print(f"kedro-runs: invalid settings:\n{_explain(error)}", file=sys.stderr)
        return 2
    if arguments.command == "serve":
        return _serve(settings)
    return 2


def _explain(error: ValidationError) -> str:
    """One line per problem, without pydantic's echo of every input."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}" if where else f"  - {message}")
    return "\n".join(lines)


def openapi_document(*, keys: bool = True) -> str:
    """The app's OpenAPI document: stable key order, trailing newline. With ``keys`` (as
    committed: the deployment teams generate clients for), of a service with API keys;
    without, of one with none, as such a service serves it."""
    import json

    from app.main import create_app
    from app.settings import ApiKey, Settings

    # Any key will do: the document says a key is required, never which.
    api_keys = [ApiKey(name="openapi", sha256="0" * 64)] if keys else []
    document = create_app(Settings(api_keys=api_keys)).openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _new_key(name: str, admin: bool) -> int:
    import hashlib
    import json
    import secrets

    from app.settings import ApiKey

    key = "kr_" + secrets.token_urlsafe(32)
    try:
        entry = ApiKey(name=name, sha256=hashlib.sha256(key.encode()).hexdigest(), admin=admin)
    except ValidationError as error:
        print(f"kedro-runs: invalid key name:\n{error}", file=sys.stderr)
        return 2
    print(f"key (shown once; give it to {name}): {key}")
    print("add to KEDRO_RUNS_API_KEYS (a JSON list):")
    print(json.dumps([entry.model_dump()]))
    return 0


def _prune(arguments: argparse.Namespace) -> int:
    from app.prune_command import run

    try:
        return run(arguments)
    except ValidationError as error:
        print(f"kedro-runs: invalid settings:\n{_explain(error)}", file=sys.stderr)
        return 2


def _db(arguments: argparse.Namespace) -> int:
    from app.db_command import run

    try:
        return run(arguments)
    except ValidationError as error:
        print(f"kedro-runs: invalid settings:\n{_explain(error)}", file=sys.stderr)
        return 2


def _write_openapi(output: Path, *, keys: bool) -> int:
    document = openapi_document(keys=keys)
    if str(output) == "-":
        sys.stdout.write(document)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _serve(settings: Any) -> int:
    from app.errors import ProjectError, StartupRefused
    from app.kedro_bridge.project import check_location, check_requirements
    from app.main import create_app
    from app.serving import bind_listener, ensure_descriptors, serve
    from app.wiring import project_location

    try:
        check_location(project_location(settings))
    except ProjectError as error:
        print(f"kedro-runs: {error}", file=sys.stderr)
        return 2
    try:
        # Before anything else starts (no project imported, no store opened, no worker
        # spawned): a taken port is one line and a quick exit.
        listener = bind_listener(settings.host, settings.port)
    except StartupRefused as refusal:
        print(f"kedro-runs: {refusal}", file=sys.stderr)
        return 1
    try:
        # Here, not in the app's start-up, so a missing requirement is one line, no traceback.
        check_requirements(project_location(settings))
    except ProjectError as error:
        listener.close()
        print(f"kedro-runs: {error}", file=sys.stderr)
        return 2
    ensure_descriptors(settings.max_connections)
    # uvicorn runs the lifespan shutdown (which records interrupted runs), then
    # re-raises the signals it caught with the handlers that were in place before it.
    # Make those no-ops, so a stop exits with the status DrainingServer says.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    return serve(create_app(settings), settings, listener)


if __name__ == "__main__":
    sys.exit(main())
