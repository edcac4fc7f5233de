"""The committed OpenAPI document is the app's: regenerate with `kedro-runs openapi`."""

from __future__ import annotations

from pathlib import Path

from app.__main__ import openapi_document

COMMITTED = Path(__file__).parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_document(), (
        "openapi/openapi.json is stale: run `kedro-runs openapi` and commit the result"
    )
