"""Reading runs for callers: views, pages, events, logs and outputs, each only for a
caller that may see the run. Reads run on the service's reader threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from app.domain.callers import Caller
from app.domain.ledger import RunLedger
from app.domain.ports import StoredLogLine
from app.domain.runs import TERMINAL_STATUSES, Run, RunEvent, RunStatus, node_progress
from app.domain.save_versions import is_save_version
from app.domain.views import RunListPage, RunView, decode_cursor, encode_cursor
from app.errors import RunNotFound, RunStateConflict

MAX_PAGE = 200


def visible(run: Run | None, run_id: str, caller: Caller) -> Run:
    """``run`` if ``caller`` may see it. Raises RunNotFound otherwise: another caller's
    run is answered exactly as a run that does not exist."""
    if run is None or not caller.may_see(run.owner):
        raise RunNotFound(f"No run with id {run_id}.")
    return run


def cancellable(run: Run | None, run_id: str, caller: Caller) -> Run:
    """``run``, if ``caller`` may see it and it has not ended. Raises RunNotFound,
    RunStateConflict."""
    run = visible(run, run_id, caller)
    if run.status in TERMINAL_STATUSES:
        raise RunStateConflict(f"Run {run_id} already ended as {run.status}.")
    return run


class RunQueries:
    """Read-only questions about runs. ``waiting_for(run_id, caller)`` names the runs
    in flight that a queued run waits for and that ``caller`` may see."""

    def __init__(
        self,
        ledger: RunLedger,
        waiting_for: Callable[[str, Caller], Awaitable[list[str]]],
    ) -> None:
        self._store = ledger.store
        self.read = ledger.read
        self._waiting_for = waiting_for

    async def resolve(self, run_id: str, caller: Caller) -> str:
        """The id of the run ``run_id`` names: ``run_id`` itself, or, when it has the shape
        of a save version (Kedro's run id), the id of the run ``caller`` may see that was
        given that save version. Any other id is returned as it is, so what follows
        answers it exactly as a run that does not exist (another caller's included)."""
        if not is_save_version(run_id):
            return run_id
        run = await self.read(lambda: self._store.find_run_by_save_version(run_id))
        return run.run_id if run is not None and caller.may_see(run.owner) else run_id

    async def view(self, run_id: str, caller: Caller) -> RunView:
        """The run with its node progress. Raises RunNotFound."""

        def load() -> tuple[Run | None, list[RunEvent]]:
            run = self._store.get_run(run_id)
            if run is None:
                return None, []
            return run, self._store.list_events(run_id, 0, 100_000)

        run, events = await self.read(load)
        run = visible(run, run_id, caller)
        return RunView(run, node_progress(run, events), await self._waiting_for(run_id, caller))

    async def list_runs(
        self,
        statuses: Sequence[RunStatus],
        pipeline: str | None,
        cursor: str | None,
        limit: int,
        caller: Caller,
    ) -> RunListPage:
        before = decode_cursor(cursor) if cursor else None
        owner = None if caller.admin else caller.name
        page = await self.read(
            lambda: self._store.list_runs(statuses, pipeline, before, min(limit, MAX_PAGE), owner)
        )
        views = [RunView(run, [], await self._waiting_for(run.run_id, caller)) for run in page.runs]
        next_cursor = encode_cursor(page.next_cursor) if page.next_cursor else None
        return RunListPage(views, next_cursor)

    async def events(self, run_id: str, after: int, limit: int, caller: Caller) -> list[RunEvent]:
        def load() -> tuple[Run | None, list[RunEvent]]:
            run = self._store.get_run(run_id)
            return run, self._store.list_events(run_id, after, min(limit, 1000)) if run else []

        run, events = await self.read(load)
        visible(run, run_id, caller)
        return events

    async def logs(
        self, run_id: str, after: int, min_level: int, limit: int, caller: Caller
    ) -> tuple[list[StoredLogLine], int]:
        def load() -> tuple[Run | None, tuple[list[StoredLogLine], int]]:
            run = self._store.get_run(run_id)
            if run is None:
                return None, ([], 0)
            return run, self._store.list_logs(run_id, after, min_level, min(limit, 1000))

        run, (lines, dropped) = await self.read(load)
        visible(run, run_id, caller)
        return lines, dropped

    async def outputs(self, run_id: str, caller: Caller) -> dict[str, object] | None:
        def load() -> tuple[Run | None, dict[str, object] | None]:
            run = self._store.get_run(run_id)
            return run, self._store.get_outputs(run_id) if run else None

        run, outputs = await self.read(load)
        visible(run, run_id, caller)
        return outputs

    async def status_of(self, run_id: str, caller: Caller) -> RunStatus:
        run = await self.read(lambda: self._store.get_run(run_id))
        return visible(run, run_id, caller).status
