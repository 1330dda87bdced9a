"""The monitor's actions on runs: which runs a key means, asking first, carrying out.

What may be done and the question asked come from :mod:`jobwatch.core.rules`;
the work goes through the app's :class:`~jobwatch.sources.poller.Poller`, which
routes each run to its source and shows the result at once.
"""

from __future__ import annotations

import getpass
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text

from jobwatch.core import Action
from jobwatch.core.errors import JobwatchError
from jobwatch.core.format import GLYPHS
from jobwatch.core.redact import clean
from jobwatch.core.rules import Target, plan
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.table_model.runset import Key

if TYPE_CHECKING:
    from jobwatch.sources.protocol import Source
    from jobwatch.tui.app import JobwatchApp


class RunActions:
    """Abort, archive, unarchive and copy-id for the marked or selected runs."""

    def __init__(self, app: JobwatchApp) -> None:
        self.app = app

    def _targets(self) -> list[Key]:
        """The marked runs, when there are any (those on screen in table order,
        then the ones the filter hides), else the selected one. Marks survive a
        filter change (see :meth:`RunSet.hidden_marks`)."""
        runs = self.app.runs
        marked = [k for k in runs.marked if runs.row_of(k) is not None]
        if marked:
            where = {k: runs.index_of(k) for k in marked}
            return sorted(marked, key=lambda k: (where[k] is None, where[k] or 0, k))
        table = self.app._table()
        return [table.cursor_key] if table is not None and table.cursor_key else []

    def target(self, key: Key) -> Target:
        """What the rules and the confirmation see of the run shown at ``key``."""
        row = self.app.runs.row_of(key)
        assert row is not None  # _targets only names runs it knows
        feed = self.app.feed_for(key)
        return Target(
            row,
            feed.source if feed is not None else None,
            clean(row.job or row.label or ""),
            GLYPHS[row.status],
            hidden=self.app.runs.index_of(key) is None,
        )

    def ask(self, action: Action) -> None:
        verb = action.value
        keys = self._targets()
        if not keys:
            self.app.notify(f"nothing to {verb}: no run selected", severity="warning")
            return
        decided = plan(action, [self.target(k) for k in keys], read_only=self.app.read_only)
        allowed = [keys[i] for i in decided.allowed]
        if not allowed:
            self.app.notify(
                "\n".join(clean(r) for r in decided.refused),
                title=f"nothing to {verb}",
                severity="error",
            )
            return
        question = decided.confirmation
        if question is None:  # harmless and undoable: no dialog
            self._perform(action, allowed)
            return
        body = Text("\n".join(question.lines()) + "\n\n")
        body.append(question.footer, style="dim")
        self.app.push_screen(
            ConfirmScreen(question.title, body, yes_label=question.yes_label),
            partial(self._confirmed, action, allowed),
        )

    def _confirmed(self, action: Action, keys: list[Key], yes: bool | None) -> None:
        if yes:
            self._perform(action, keys)
        else:
            self.app.notify(f"{action.value} cancelled: nothing was changed", timeout=2)

    def _perform(self, action: Action, keys: list[Key]) -> None:
        self.app.run_worker(self._carry_out(action, keys), group="actions", exit_on_error=False)

    async def _carry_out(self, action: Action, keys: list[Key]) -> None:
        """Each run goes to the source that owns it; its new state is on screen as
        soon as the source answers (the poller hands it to the table at once)."""
        done, failed = 0, []
        by = f"{self._who()} (jobwatch monitor)"
        for key in keys:
            row = self.app.runs.row_of(key)
            if row is None or self.app.feed_for(key) is None:
                failed.append(f"{clean(key[1])}: no longer shown")
                continue
            try:
                result = await self.app.poller.act(
                    action, key, by=by, read_only=self.app.read_only, current=row
                )
            except JobwatchError as exc:
                failed.append(clean(str(exc)))
                continue
            except Exception as exc:
                failed.append(f"{clean(key[1])}: {clean(str(exc))}")
                continue
            done += 1
            self.app.runs.marked.discard(key)
            self.app.marks_changed()
            if len(keys) == 1:
                self.app.notify(clean(result.message), timeout=3)
        if len(keys) > 1 and done:
            self.app.notify(f"{action.value}: {done} of {len(keys)} done", timeout=3)
        if failed:
            self.app.notify("\n".join(failed), title=f"{action.value} refused", severity="error")
        self.app.update_status()

    @staticmethod
    def _who() -> str:
        try:
            return getpass.getuser()
        except Exception:
            return "someone"

    def show_diff(self) -> None:
        """The selected run's snapshot against its job's last success (``D``)."""
        table = self.app._table()
        key = table.cursor_key if table is not None else None
        feed = self.app.feed_for(key)
        if key is None or feed is None:
            self.app.notify("nothing to diff: no run selected", severity="warning")
            return
        self.app.run_worker(
            self._diff(feed.source, key), group="diff", exclusive=True, exit_on_error=False
        )

    async def _diff(self, source: Source, key: Key) -> None:
        from jobwatch.sources.snapshot_pair import compare
        from jobwatch.tui.screens.diff import DiffScreen

        try:
            compared = await compare(source, await source.get(key[1]))
        except Exception as exc:
            self.app.notify(clean(str(exc)), title="cannot diff", severity="error")
            return
        lines = compared.text_lines()
        title = f"snapshot diff {clean(key[1])}"
        self.app.push_screen(DiffScreen(title, lines, header=len(compared.header())))

    def copy_id(self) -> None:
        table = self.app._table()
        if table is None or table.cursor_key is None:
            return
        run_id = table.cursor_key[1]
        self.app.copy_to_clipboard(run_id)  # OSC 52: reaches the local clipboard over SSH
        self.app.notify(f"copied {clean(run_id)}", timeout=2)
