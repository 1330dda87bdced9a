"""Archive and unarchive for the stores (SQLite and PostgreSQL): both change the
run in place through their own ``update``, under the one rules module, so the
two verbs are written once here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from jobwatch.core import Action
from jobwatch.sources.protocol import ActionResult, SourceBase

if TYPE_CHECKING:
    from jobwatch.core import Run  # the model loads pydantic: not on the start path


class StoreArchiving(SourceBase):
    """``archive``/``unarchive`` over a store's ``resolve`` and ``update``."""

    if TYPE_CHECKING:

        async def resolve(self, ref: str) -> str: ...

        async def update(
            self,
            run_id: str,
            change: Callable[[Run], Run],
            *,
            release: bool = False,
            see_abort: bool = False,
        ) -> Run: ...

    async def archive(self, run_id: str) -> ActionResult:
        return await self._set_archived(run_id, Action.ARCHIVE, True)

    async def unarchive(self, run_id: str) -> ActionResult:
        return await self._set_archived(run_id, Action.UNARCHIVE, False)

    async def _set_archived(self, run_id: str, action: Action, value: bool) -> ActionResult:
        self.refuse_early(action, run_id)
        run_id = await self.resolve(run_id)

        def change(run: Run) -> Run:
            self.check(action, run)
            return run.evolve(archived=value)

        run = await self.update(run_id, change)
        return ActionResult(run, f"{action.value}d {run_id}")
