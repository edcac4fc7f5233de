"""The service's own extension points: pluggy hooks laid out as Kedro lays out its own
(markers, specs, manager), plugins loaded from the ``kedro_runs`` entry point group,
and the built-in plugins (metrics)."""
