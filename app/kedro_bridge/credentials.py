"""The secrets of a Kedro project, for redaction: what its credentials hold."""

from __future__ import annotations

import logging
from typing import Any

from app.domain.redaction import credential_secrets_in

logger = logging.getLogger("kedro_runs.redaction")


def credential_secrets(session: Any) -> set[str]:
    """The secret strings of the project's credentials (``conf/*/credentials*``), as
    Kedro's config loader resolves them (``${oc.env:...}`` included): every string
    (lists and nested mappings included) but those naming who or where (``username``,
    ``host``, ...), and every secret in a secret's shape (a connection string's
    password). Empty when the project has none or they cannot be read (which is
    logged, never raised)."""
    try:
        credentials = session.load_context().config_loader["credentials"]
    except Exception as error:  # redaction must not keep a process from starting
        logger.warning("could not read the project's credentials: %s", type(error).__name__)
        return set()
    return credential_secrets_in(dict(credentials))
