"""The run domain: what a run is, how it moves, and the service that drives it.

Nothing in this package imports a web framework, a database library, Kedro or pluggy.
"""
