"""Limits on what a caller may put in ``params``, and why.

Kedro merges ``params`` into its configuration and resolves it with OmegaConf, so
a caller string containing ``${`` is an interpolation: it can read other
parameters or environment variables, and a few hundred bytes of nested
references expand to gigabytes. Such strings are refused, keys included. The
other bounds keep one request from costing the service more than a normal run.

Keys with ``.`` are paths, as on Kedro's command line (``--params model.lr=0.1``):
:func:`nested_params` expands them, so what is stored and shown is the nesting that runs.
"""

from __future__ import annotations

import math
from typing import Any

MAX_PARAMS_DEPTH = 16
MAX_PARAMS_KEYS = 1000
MAX_STRING_CHARS = 64 * 1024
MAX_LIST_ITEMS = 1000


class ParamsRejected(ValueError):
    """``params`` breaks a limit; the message names the offending path."""


def check_params(params: dict[str, Any]) -> None:
    """Raise :class:`ParamsRejected` if ``params`` breaks any limit of this module.

    Messages read ``<path> - <what>``: no colon after a key, so a key named like a
    secret (``token``) does not make the message itself look like one to redaction."""
    keys = 0

    def visit(value: Any, path: str, depth: int) -> None:
        nonlocal keys
        if depth > MAX_PARAMS_DEPTH:
            raise ParamsRejected(f"{path} - nested deeper than {MAX_PARAMS_DEPTH} levels")
        if isinstance(value, dict):
            keys += len(value)
            if keys > MAX_PARAMS_KEYS:
                raise ParamsRejected(f"params: more than {MAX_PARAMS_KEYS} keys in all")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ParamsRejected(f"{path} - keys must be strings")
                _check_string(key, f"{path} - key {key[:40]!r}")
                if key == "" or "." in key:
                    # nested_params has expanded every dotted key before this check.
                    raise ParamsRejected(
                        f"{path} - key {key[:40]!r} must be non-empty and contain no '.'"
                    )
                visit(item, f"{path}.{_short(key)}", depth + 1)
        elif isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                raise ParamsRejected(f"{path} - a list longer than {MAX_LIST_ITEMS} items")
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]", depth + 1)
        elif isinstance(value, str):
            _check_string(value, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ParamsRejected(f"{path} - NaN and Infinity are not allowed")
        elif value is None or isinstance(value, bool | int):
            return
        else:
            raise ParamsRejected(f"{path} - unsupported value type {type(value).__name__}")

    visit(params, "params", 0)


def _short(key: str) -> str:
    """A key as a problem shows it: never more than 40 characters of caller input."""
    return key if len(key) <= 40 else key[:39] + "…"


def _check_string(text: str, where: str) -> None:
    if len(text) > MAX_STRING_CHARS:
        raise ParamsRejected(f"{where} - a string longer than {MAX_STRING_CHARS} characters")
    if "\x00" in text:
        raise ParamsRejected(f"{where} - NUL characters are not allowed")
    if "${" in text:
        raise ParamsRejected(
            f"{where} - '${{' is not allowed (Kedro would resolve it as an interpolation)"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ParamsRejected(f"{where} - not valid Unicode (lone surrogate)") from error


def nested_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every dotted key, at any level, read as a path and nested:
    ``{"model.lr": 0.1, "model": {"seed": 1}}`` is ``{"model": {"lr": 0.1, "seed": 1}}``.

    Raises :class:`ParamsRejected` when two keys set the same value or one sets a value
    inside the other's (``{"a": 1, "a.b": 2}``), for an empty segment (``"a..b"``), and
    for more nesting than :data:`MAX_PARAMS_DEPTH` (checked while expanding, so a key of
    thousands of dots costs nothing)."""

    def expand(value: Any, path: str, depth: int) -> Any:
        if depth > MAX_PARAMS_DEPTH:
            raise ParamsRejected(f"{path} - nested deeper than {MAX_PARAMS_DEPTH} levels")
        if isinstance(value, list):
            return [expand(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        nested: dict[Any, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or "." not in key:
                _merge(nested, key, expand(item, f"{path}.{_short(str(key))}", depth + 1), path)
                continue
            parts = key.split(".", MAX_PARAMS_DEPTH + 1)
            if len(parts) > MAX_PARAMS_DEPTH or "" in parts:
                raise ParamsRejected(
                    f"{path} - key {key[:40]!r} is not a path of at most {MAX_PARAMS_DEPTH} "
                    "non-empty names joined by '.'"
                )
            leaf: Any = expand(item, f"{path}.{_short(key)}", depth + len(parts))
            for part in reversed(parts[1:]):
                leaf = {part: leaf}
            _merge(nested, parts[0], leaf, path)
        return nested

    expanded: dict[str, Any] = expand(params, "params", 0)
    return expanded


def _merge(target: dict[Any, Any], key: Any, value: Any, path: str) -> None:
    """Put ``value`` at ``target[key]``, merging objects; raise on any other overlap."""
    if key not in target:
        target[key] = value
        return
    existing = target[key]
    where = f"{path}.{_short(str(key))}"
    if not (isinstance(existing, dict) and isinstance(value, dict)):
        raise ParamsRejected(
            f"{where} - given twice, by a dotted key and by another key; give it once"
        )
    for inner_key, inner_value in value.items():
        _merge(existing, inner_key, inner_value, where)


def validated_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` with dotted keys nested (:func:`nested_params`), if within the limits;
    raises ValueError (for pydantic validators) naming what is wrong otherwise."""
    if params is None:
        return None
    try:
        nested = nested_params(params)
        check_params(nested)
    except ParamsRejected as error:
        raise ValueError(str(error)) from None
    return nested
