"""Markers for kedro-runs hooks: decorate a plugin's methods with ``hook_impl``."""

from __future__ import annotations

import pluggy

PROJECT = "kedro_runs"

hook_spec = pluggy.HookspecMarker(PROJECT)
hook_impl = pluggy.HookimplMarker(PROJECT)
