"""What a caller's params may not do to the catalog.

The project author's catalog is trusted; caller params are data. When params change
how a dataset resolves, the service compares the result with the project's own
resolution (no params) and refuses a run whose params would

- change which class is built or how it behaves: the ``type`` at any nesting depth
  (wrappers such as ``PartitionedDataset`` and ``CachedDataset`` hold a nested
  ``dataset``), ``backend``, ``file_format``, ``load_args.engine`` /
  ``save_args.engine``, ``fs_args`` or ``credentials``. Kedro 1.7's own guard only
  looks for ``runtime_params:`` in the raw ``type`` string, so an indirection such as
  ``type: ${_types.t}`` gets past it; comparing resolved values does not care how the
  value was reached;
- move a dataset to a protocol outside ``allowed_protocols`` (local files only by
  default), or, for local files, outside the data root once symlinks are resolved;
- give a path Kedro or fsspec could read in more than one way: backslashes,
  percent-encoded separators or dots, over-long paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.errors import FieldError

# Keys of a dataset config that choose a class or how it reads and writes. A caller's
# params may not change any of them, at any nesting depth.
BEHAVIOUR_KEYS = ("type", "backend", "file_format", "fs_args", "credentials")
ENGINE_KEYS = ("load_args", "save_args")
MAX_PATH_CHARS = 4096
MAX_COMPONENT_CHARS = 255
# Encoded '/', '\' and '.': some filesystems decode them, which would turn a name into
# a traversal after the check.
_ENCODED = re.compile(r"%(?:2f|5c|2e)", re.IGNORECASE)


@dataclass(frozen=True)
class ResolvedDataset:
    """What the guard needs of one dataset as resolved: where and how it behaves."""

    location: str | None  # the filepath/path as configured (absolute for local files)
    behaviour: tuple[tuple[str, str], ...]  # (dotted key, JSON of the value)


def behaviour(config: dict[str, Any], prefix: str = "") -> tuple[tuple[str, str], ...]:
    """The class-and-behaviour-choosing values of a dataset config, nested configs
    included, as sorted ``(dotted key, JSON)`` pairs."""
    found: list[tuple[str, str]] = []
    for key in BEHAVIOUR_KEYS:
        if key in config:
            found.append((prefix + key, _fingerprint(config[key])))
    for key in ENGINE_KEYS:
        args = config.get(key)
        if isinstance(args, dict) and "engine" in args:
            found.append((f"{prefix}{key}.engine", _fingerprint(args["engine"])))
    nested = config.get("dataset")
    if isinstance(nested, dict):
        found.extend(behaviour(nested, prefix + "dataset."))
    elif nested is not None:
        found.append((prefix + "dataset", _fingerprint(nested)))  # a type shorthand
    return tuple(sorted(found))


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


@dataclass(frozen=True)
class Policy:
    """Where params may move datasets: protocols (``file`` is local paths) and, for
    local paths, the data root."""

    data_root: str
    allowed_protocols: frozenset[str] = frozenset({"file"})


def params_driven_errors(
    names: Iterable[str],
    resolve: Callable[[str], ResolvedDataset],
    resolve_default: Callable[[str], ResolvedDataset],
    policy: Policy,
) -> list[FieldError]:
    """One FieldError per dataset of ``names`` whose resolution with the caller's params
    (``resolve(name) -> ResolvedDataset``) breaks a rule of this module when compared
    with the project's own (``resolve_default``)."""
    errors = []
    for name in sorted(names):
        moved, usual = resolve(name), resolve_default(name)
        if moved.behaviour != usual.behaviour:
            changed = sorted({k for k, _ in set(moved.behaviour) ^ set(usual.behaviour)}, key=str)
            errors.append(
                _error(
                    f"params may not change the type or behaviour of dataset {name!r} "
                    f"({', '.join(changed[:5])})",
                    "type_selection",
                )
            )
        elif moved.location != usual.location and moved.location is not None:
            problem = location_problem(moved.location, policy)
            if problem:
                code, why = problem
                errors.append(_error(f"params may not move dataset {name!r} ({why})", code))
    return errors


def location_problem(location: str, policy: Policy) -> tuple[str, str] | None:
    """Why params may not point a dataset at ``location``, as (code, reason); None if
    they may. Codes: ``bad_path``, ``protocol_not_allowed``, ``path_outside_data_root``."""
    if len(location) > MAX_PATH_CHARS:
        return "bad_path", f"a path longer than {MAX_PATH_CHARS} characters"
    if "\\" in location or _ENCODED.search(location) or "\x00" in location:
        return "bad_path", "backslashes, NUL and percent-encoded '/', '\\' or '.' are refused"
    protocol, path = _split_protocol(location)
    if protocol not in policy.allowed_protocols:
        allowed = ", ".join(sorted(policy.allowed_protocols))
        return "protocol_not_allowed", f"protocol {protocol[:20]!r} is not one of {allowed}"
    if protocol != "file":
        return None
    if any(len(part) > MAX_COMPONENT_CHARS for part in path.split("/")):
        return "bad_path", f"a path component longer than {MAX_COMPONENT_CHARS} characters"
    if not _is_under(path, policy.data_root):
        return "path_outside_data_root", "outside the project's data directory"
    return None


def _split_protocol(location: str) -> tuple[str, str]:
    if "://" not in location:
        return "file", location
    protocol, _, rest = location.partition("://")
    protocol = protocol.lower()
    if protocol in {"file", "local"}:
        return "file", rest
    return protocol, rest


def _is_under(path: str, root: str) -> bool:
    """Whether ``path`` is inside ``root`` once both are made absolute and every
    symlink on the way is resolved (a link under data/ may point anywhere)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return os.path.commonpath([real, real_root]) == real_root


def _error(message: str, code: str) -> FieldError:
    return FieldError(("body", "params"), message, code)
