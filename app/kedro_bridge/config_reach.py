"""What of the project's configuration a caller's params can reach, as the project's own
config loader sees it.

Which files are catalog, credentials or globals files is the loader's decision (its
``config_patterns``, which a project's ``settings.py`` may change), never a guess from
file names: a catalog file named ``catalog/parameters_x.yml`` is a catalog file (and a
parameters file too), and must be treated as one. Credentials that params reach are
compared, as digests, with the project's own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.errors import FieldError

# Configuration that decides what a run reads, writes or authenticates with.
GUARDED_KEYS = ("catalog", "credentials", "globals")
_MARKER = "runtime_params"


def params_reach(loader: Any) -> frozenset[str]:
    """The keys of ``GUARDED_KEYS`` for which a file ``loader`` would read mentions
    ``runtime_params``.

    Conservative: a key the loader cannot answer for (a config loader without
    ``_read_raw_config``, a file it cannot read, a parse error) counts as reached.
    """
    read_raw = getattr(loader, "_read_raw_config", None)
    if read_raw is None:
        return frozenset(GUARDED_KEYS)
    reached = set()
    for key in GUARDED_KEYS:
        try:
            # The loader's own discovery (patterns, base and run env, hidden files).
            files: set[Path] = read_raw(key)[4]
            if any(_MARKER in _text(loader, path) for path in files):
                reached.add(key)
        except Exception:  # anything unexpected: assume params reach it
            reached.add(key)
    return frozenset(reached)


def _text(loader: Any, path: Path) -> str:
    # Raw file text: the parsed credentials are already resolved (``oc.env`` resolves
    # every interpolation in them), so only the text still shows ``runtime_params``.
    with loader._fs.open(path.as_posix()) as file:
        return str(file.read().decode("utf-8", errors="replace"))


def resolve_credential_digests(loader: Any) -> dict[str, str] | None:
    """Each credentials entry as ``loader`` (with its runtime params) resolves it, as a
    digest; ``{}`` when the project has none, None when they do not resolve. Resolving
    uses Kedro's process-global resolvers: call it under the inspector's lock.

    Credentials that read params are compared per request rather than refused at
    start-up: a project whose runs never change them (only its defaults ever resolve)
    keeps working, and any request that would change one is refused."""
    from kedro.config import MissingConfigException

    try:
        credentials = loader["credentials"]
    except MissingConfigException:
        return {}  # as Kedro's context: no credentials files, no credentials
    except Exception:  # a run with these params would fail on them too
        return None
    return credential_digests(credentials)


def credential_digests(credentials: Mapping[str, Any]) -> dict[str, str]:
    """{credentials name: SHA-256 of its resolved value}: comparable, never a secret."""
    return {str(name): _digest(value) for name, value in credentials.items()}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def credentials_errors(
    moved: Mapping[str, str] | None, usual: Mapping[str, str] | None
) -> list[FieldError]:
    """One FieldError if the credentials resolved with the caller's params (digests, or
    None when they do not resolve) differ from the project's own."""
    if moved == usual:
        return []
    if moved is None or usual is None:
        which = "they resolve with these params and not without, or the other way round"
    else:
        changed = sorted(name for name in {*moved, *usual} if moved.get(name) != usual.get(name))
        which = ", ".join(repr(name) for name in changed[:5])
    message = f"params may not change credentials ({which})"
    return [FieldError(("body", "params"), message, "credentials_changed")]
