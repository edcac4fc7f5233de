"""Project settings. Kedro defaults are kept except for the project hooks.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the
full list of settings and their default values.
"""

from spaceflights_demo.hooks import RunLoggingHooks

# Project hooks, executed in last-in-first-out order.
HOOKS = (RunLoggingHooks(),)

# Keyword arguments for the default OmegaConfigLoader.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
