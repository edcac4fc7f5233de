"""Settings: every flag is also a KEDRO_RUNS_ environment variable; flags win."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.__main__ import _parser, _settings
from app.settings import Settings

ENVIRONMENT = {
    "KEDRO_RUNS_PROJECT": "/srv/project",
    "KEDRO_RUNS_ENV": "prod",
    "KEDRO_RUNS_CONF_SOURCE": "/srv/conf",
    "KEDRO_RUNS_HOST": "::1",
    "KEDRO_RUNS_PORT": "9001",
    "KEDRO_RUNS_WORKERS": "3",
    "KEDRO_RUNS_DATABASE": "sqlite:////tmp/elsewhere.db",
    "KEDRO_RUNS_STATE_DIR": "/srv/state",
    "KEDRO_RUNS_CANCEL_GRACE_SECONDS": "4.5",
    "KEDRO_RUNS_LOG_LEVEL": "debug",
}


def test_every_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.project == Path("/srv/project")
    assert settings.env == "prod"
    assert settings.conf_source == Path("/srv/conf")
    assert (settings.host, settings.port, settings.workers) == ("::1", 9001, 3)
    assert settings.store_url() == "sqlite:////tmp/elsewhere.db"
    assert settings.state_dir == Path("/srv/state")
    assert settings.cancel_grace_seconds == 4.5
    assert settings.log_level == "debug"


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDRO_RUNS_WORKERS", "3")
    monkeypatch.setenv("KEDRO_RUNS_PORT", "9001")
    settings = _settings(_parser().parse_args(["serve", "--workers", "5"]))
    assert settings.workers == 5
    assert settings.port == 9001


def test_defaults_are_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.workers >= 1
    assert settings.store_url() == f"sqlite:///{tmp_path.resolve() / '.kedro-runs' / 'runs.db'}"


def test_packaged_mode_needs_a_conf_source() -> None:
    with pytest.raises(ValidationError, match="conf_source"):
        Settings(package="some_project")
