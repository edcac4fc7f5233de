"""A small Kedro project that the kedro-runs tests run for real."""
