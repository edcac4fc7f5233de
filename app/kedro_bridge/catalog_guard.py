"""What a caller's params may change in the catalog: where data lives, nothing else.

The project author's catalog is trusted; caller params are data. When params change
how a dataset resolves, the service compares the result with the project's own
resolution (no params), value by value, at every nesting depth (the ``dataset`` of a
``PartitionedDataset`` or ``CachedDataset``, the ``checkpoint`` of an
``IncrementalDataset``, ``load_args``, ``fs_args``: every mapping, with a ``type`` or
without). It is an allowlist:

- params may change a *location*: a value under a key of ``LOCATION_KEYS``
  (``filepath``, ``path``, ``filename``, ``url``, ``from_url``, ``location``,
  ``temppath``), which must then pass ``location_rules``: a protocol in
  ``allowed_protocols`` (local files only by default, so no URL; a remote one keeps
  the protocol and host of the dataset's own remote location), and for a local
  path, under the data root once symlinks are resolved, absolute, without glob
  characters, backslashes or percent-encoded separators, under the part of its
  default location that params do not choose, and not onto, into or over any other
  dataset's default location (a versioned dataset's is its directory of versions), nor
  into or over its own;
- params may change nothing else. Any other value that differs (``type``,
  ``versioned``, ``overwrite``, ``method``, ``credentials``, ``load_args`` and
  ``save_args`` entries such as an API's ``headers`` or ``proxies``, a table name, a
  query) is refused, naming the dataset and the key, never the value: a denylist of
  keys missed whatever kedro-datasets adds next, and ``load_args`` hold options that
  reach the network or choose code (``proxies``, ``verify``, a JDBC ``driver``, an
  XSLT ``stylesheet``). A ``type`` (or a ``dataset`` type shorthand) is
  ``type_selection``: Kedro 1.7's own guard only looks for ``runtime_params:`` in the
  raw ``type`` string, so ``type: ${_types.t}`` gets past it; comparing resolved values
  does not care how a value was reached.

Credentials are compared as digests (``hide_credentials``; the credentials files
themselves in ``config_reach``), so no secret is kept or shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import FieldError
from app.kedro_bridge.location_rules import (
    Policy,
    local_key,
    location_problem,
    placement_problem,
    split_protocol,
)

# Policy is re-exported: callers build it with the rest of the guard.
__all__ = [
    "LOCATION_KEYS",
    "Policy",
    "ResolvedDataset",
    "hide_credentials",
    "locations",
    "options",
    "params_driven_errors",
    "project_dataset_names",
    "protected_locations",
]

# Keys whose (string) value names where a dataset's data lives, at any depth: the only
# values params may change. Kedro makes the first three absolute for local files.
LOCATION_KEYS = frozenset(
    {"filepath", "path", "filename", "url", "from_url", "location", "temppath"}
)
# The last part of an option's key that makes a change to it a class choice.
_TYPE_KEYS = ("type", "dataset")
_SHOWN_KEY_CHARS = 80  # keys may come from params (a mapping value): bound what is shown


@dataclass(frozen=True)
class ResolvedDataset:
    """What the guard needs of one dataset as resolved: every value, nested ones too,
    as sorted ``(dotted key, value)`` pairs, split into locations and the rest."""

    locations: tuple[tuple[str, str], ...]  # the location as configured (local: absolute)
    options: tuple[tuple[str, str], ...]  # JSON of every other value

    @classmethod
    def of(cls, config: dict[str, Any]) -> ResolvedDataset:
        found_locations, found_options = [], []
        for key, value in _leaves(config):
            if key[-1] in LOCATION_KEYS and isinstance(value, str):
                found_locations.append((".".join(key), value))
            else:
                found_options.append((".".join(key), _fingerprint(value)))
        return cls(tuple(sorted(found_locations)), tuple(sorted(found_options)))


def _leaves(
    config: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key path, value) of every value of ``config`` that is not a non-empty mapping;
    ``credentials`` (a digest here) counts as one value."""
    for key, value in config.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value and key != "credentials":
            yield from _leaves(value, path)
        else:
            yield path, value


def locations(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Every location of a dataset config, at any depth, as ``(dotted key, location)``."""
    return ResolvedDataset.of(config).locations


def options(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Every other value of a dataset config, at any depth, as ``(dotted key, JSON)``."""
    return ResolvedDataset.of(config).options


def hide_credentials(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every ``credentials`` value (at any depth) replaced by a digest:
    comparable, but no secret stays in this process's copy."""
    hidden: dict[str, Any] = {}
    for key, value in config.items():
        if key == "credentials":
            # A dict, not a string: Kedro would look a string up as a credentials name.
            hidden[key] = {"sha256": hashlib.sha256(_fingerprint(value).encode()).hexdigest()}
        elif isinstance(value, dict):
            hidden[key] = hide_credentials(value)
        else:
            hidden[key] = value
    return hidden


def _fingerprint(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def params_driven_errors(
    names: Iterable[str],
    resolve: Callable[[str], ResolvedDataset],
    resolve_default: Callable[[str], ResolvedDataset],
    policy: Policy,
    protected: Mapping[str, tuple[str, ...]] | None = None,
) -> list[FieldError]:
    """One FieldError per dataset of ``names`` whose resolution with the caller's params
    (``resolve(name) -> ResolvedDataset``) breaks a rule of this module when compared
    with the project's own (``resolve_default``). ``protected`` is what
    ``protected_locations`` gives for every dataset of the project. Codes:
    ``type_selection``, ``param_changes_dataset_option``, and those of
    ``location_rules``."""
    errors = []
    for name in sorted(names):
        moved, usual = resolve(name), resolve_default(name)
        # Params may change a location's value, never where the locations are: a mapping
        # in place of a location string (``{"path": ...}``) is not a location Kedro reads.
        moved_at = {key for key, _ in moved.locations}
        usual_at = {key for key, _ in usual.locations}
        changed = sorted(
            {key for key, _ in set(moved.options) ^ set(usual.options)} | (moved_at ^ usual_at)
        )
        if changed:
            errors.append(_option_error(name, changed))
            continue
        problem = _moved_location_problem(name, moved, usual, policy, protected or {})
        if problem:
            code, why = problem
            errors.append(_error(f"params may not move dataset {name!r} ({why})", code))
    return errors


def _option_error(name: str, changed: list[str]) -> FieldError:
    shown = ", ".join(key[:_SHOWN_KEY_CHARS] for key in changed[:5])
    if any(key.rsplit(".", 1)[-1] in _TYPE_KEYS for key in changed):
        message = f"params may not change the type or behaviour of dataset {name!r} ({shown})"
        return _error(message, "type_selection")
    message = (
        f"params may not change {shown} of dataset {name!r}: params may change only "
        "where a dataset's data lives"
    )
    return _error(message, "param_changes_dataset_option")


def _moved_location_problem(
    name: str,
    moved: ResolvedDataset,
    usual: ResolvedDataset,
    policy: Policy,
    protected: Mapping[str, tuple[str, ...]],
) -> tuple[str, str] | None:
    defaults = dict(usual.locations)
    for key, location in sorted(set(moved.locations) - set(usual.locations)):
        problem = location_problem(location, policy) or placement_problem(
            name, location, defaults.get(key), protected
        )
        if problem:
            return problem
    return None


def protected_locations(
    names: Iterable[str], resolve_default: Callable[[str], ResolvedDataset]
) -> dict[str, tuple[str, ...]]:
    """Every local default location of each dataset of ``names``, one name per file
    (``local_key``): where params may not move any other dataset."""
    protected: dict[str, tuple[str, ...]] = {}
    for name in names:
        split = (split_protocol(location) for _, location in resolve_default(name).locations)
        local = tuple(local_key(path) for protocol, path in split if protocol == "file")
        if local:
            protected[name] = local
    return protected


def project_dataset_names(config: Mapping[str, Any], pipelines: Iterable[Any]) -> set[str]:
    """Every dataset of a project: its catalog's entries (not its patterns) and every
    dataset a registered pipeline (``.datasets()``) names."""
    names = {name for name in config if "{" not in name}
    for registered in pipelines:
        names |= registered.datasets()
    return names


def _error(message: str, code: str) -> FieldError:
    return FieldError(("body", "params"), message, code)
