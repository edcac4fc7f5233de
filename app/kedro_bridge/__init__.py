"""The only package that imports Kedro: opening a project and its session, validating
and planning runs, and executing them inside worker processes."""
