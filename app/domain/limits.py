"""Limits on what a caller may put in ``params``, and why.

Kedro merges ``params`` into its configuration and resolves it with OmegaConf, so
a caller string containing ``${`` is an interpolation: it can read other
parameters or environment variables, and a few hundred bytes of nested
references expand to gigabytes. Such strings are refused, keys included. The
other bounds keep one request from costing the service more than a normal run.
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
                    # Kedro reads dotted keys as paths (``a.b`` sets a: {b: ...});
                    # nest the value instead, so what is stored is what runs.
                    raise ParamsRejected(
                        f"{path} - key {key[:40]!r} must be non-empty and contain no '.'; "
                        "nest objects instead"
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


def validated_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` unchanged if within the limits; raises ValueError (for pydantic
    validators) naming what is wrong otherwise."""
    if params is not None:
        try:
            check_params(params)
        except ParamsRejected as error:
            raise ValueError(str(error)) from None
    return params
