"""The monitor over time: runs change in a real store under an open monitor, poll
after poll, and the selection, the detail pane and the table's border tell the truth
(issue 12: the detail follows its row, the cursor follows the news, marks and the
filter say what they hold)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from jobwatch.core import Progress, Run, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import NOW, at, make_app, plain, ready, seed_store, settle

RUNNING = ("local", "run-000000000005")
FAILED = ("local", "run-000000000002")


def job(name: str, minutes_ago: float, status: Status = Status.SUCCEEDED, **kw: Any) -> Run:
    ended = at(minutes_ago - 0.5) if status.is_terminal else None
    return Run(
        id=name,
        source="local",
        job=f"job-{name}",
        status=status,
        status_raw=status.value,
        created_at=at(minutes_ago),
        started_at=at(minutes_ago),
        ended_at=kw.pop("ended_at", ended),
        **kw,
    )


async def write(path: Path, *runs: Run, **updates: dict[str, Any]) -> None:
    """Add ``runs`` and apply ``updates`` (run id -> fields) in the real store."""
    async with SqliteStore(path) as writer:
        if runs:
            await writer.add_many(list(runs))
        for run_id, fields in updates.items():
            await writer.update(run_id, lambda r, f=fields: r.evolve(**f))  # type: ignore[misc]


async def poll(app: JobwatchApp, pilot: Any) -> None:
    await app.poll_once()
    await settle(app, pilot, "detail")


def table(app: JobwatchApp) -> RunsTable:
    return app.main.query_one(RunsTable)


def summary(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#detail-summary").content)


def status_line(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#status").content, width=200)


def shown(app: JobwatchApp) -> list[tuple[str, str]]:
    return [app.runs.key_at(i) for i in range(len(app.runs))]


# -- item 1: the detail pane follows the selected run's row ------------------------------


async def test_the_detail_follows_a_run_from_running_to_succeeded(store_path: Path) -> None:
    """New runs arrive in the same polls (the order moves, as in the demo): the
    detail pane and the log title still follow the selected run's changes."""
    older = [job(f"old-{i:02d}", 10 + i) for i in range(12)]
    long = job("long", 180, Status.RUNNING, progress=Progress(total=120, succeeded=40))
    await write(store_path, *older, long)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(app, pilot)
            assert table(app).select_key(("local", "long"))
            await settle(app, pilot, "detail")
            assert app.loaded_key == ("local", "long")
            assert "running" in summary(app) and "40/120" in summary(app)

            await write(
                store_path, job("new-1", 1), long={"progress": Progress(total=120, succeeded=80)}
            )
            await poll(app, pilot)
            assert table(app).cursor_key == ("local", "long")
            assert "80/120" in summary(app)

            done = {
                "status": Status.SUCCEEDED,
                "status_raw": "succeeded",
                "ended_at": NOW,
                "progress": Progress(total=120, succeeded=120),
            }
            await write(store_path, job("new-2", 0.5), long=done)
            await poll(app, pilot)
            text = summary(app)
            assert "✓ succeeded" in text and "running" not in text
            assert "ended" in text and "2027-01-15 12:00:00 UTC" in text
            assert "120/120" in text
            assert "succeeded" in str(app.main.query_one(LogView).border_title)


async def test_an_unchanged_poll_does_not_fetch_the_detail_again(store_path: Path) -> None:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            await pilot.press("j", "j")
            await settle(app, pilot, "detail")
            loads = app.detail_loads
            for _ in range(3):
                await poll(app, pilot)
            assert app.detail_loads == loads
            await write(store_path, job("other", 1))  # another run changed, not this one
            await poll(app, pilot)
            assert app.detail_loads == loads
            await pilot.press("r")  # r fetches it again, whatever its row says
            await settle(app, pilot, "detail")
            assert app.detail_loads == loads + 1


# -- item 2: the selection follows the news -------------------------------------------------


async def test_the_cursor_follows_the_newest_until_the_user_moves(store_path: Path) -> None:
    await write(store_path, *[job(f"run-{i:02d}", 30 + i) for i in range(20)])
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            t = table(app)
            assert t.cursor_index == 0 and t.following

            await write(store_path, *[job(f"a-{i}", 10 - i) for i in range(3)])
            await poll(app, pilot)
            assert t.cursor_index == 0 and t.cursor_key == ("local", "a-2")
            assert app.loaded_key == ("local", "a-2") and t.new_count == 0

            await pilot.press("j", "j")
            picked, screen_row = t.cursor_key, t.cursor_index - t.scroll_offset.y
            assert not t.following
            for n, (batch, expected) in enumerate(((5, 7), (4, 11))):
                await write(store_path, *[job(f"b{n}-{i}", 5 - i * 0.1) for i in range(batch)])
                await poll(app, pilot)
                assert t.cursor_key == picked and t.cursor_index == expected
                assert t.cursor_index - t.scroll_offset.y == screen_row  # the view moved along
            assert t.new_count == 9 and "↑ 9 new" in str(t.border_title)
            assert app.loaded_key == picked

            await pilot.press("g")
            assert t.cursor_index == 0 and t.following and t.new_count == 0
            assert "new" not in str(t.border_title or "")
            await write(store_path, job("c-1", 0.1))
            await poll(app, pilot)
            assert t.cursor_key == ("local", "c-1") and app.loaded_key == ("local", "c-1")


async def test_following_the_newest_does_not_count_its_failure_as_seen(store_path: Path) -> None:
    """A failed run selected because the cursor follows the newest is still unseen:
    nobody looked at it yet. Selecting it oneself counts."""
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            await write(store_path, job("boom", 0.5, Status.FAILED))
            await poll(app, pilot)
            boom = ("local", "boom")
            assert table(app).cursor_key == boom and app.loaded_key == boom
            assert boom in app.runs.unseen and "1 unseen" in status_line(app)
            await pilot.press("j", "k")
            assert boom not in app.runs.unseen


async def test_the_cursor_stays_in_view_when_the_table_first_overflows(store_path: Path) -> None:
    """At 80x24 the table shows 8 runs: 5 fit without scrolling, 4 more arriving
    above push the selected run below the edge, and the view must follow it (a
    table that did not scroll yet could not be scrolled until its next layout)."""
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            t = table(app)
            await pilot.press("G")
            picked = t.cursor_key
            await write(store_path, *[job(f"new-{i}", 1 - i * 0.1) for i in range(4)])
            await poll(app, pilot)
            assert t.cursor_key == picked and t.cursor_index == 8
            top, rows = int(t.scroll_offset.y), t.size.height - 1
            assert rows == 8 and top <= t.cursor_index < top + rows
            assert "↑ 4 new" in str(t.border_title)
            assert "↑ 4 new" in html.unescape(app.export_screenshot()).replace("\xa0", " ")


async def test_sorted_by_status_a_changed_run_does_not_drag_the_cursor(store_path: Path) -> None:
    """Polls under the status sort: the selected run that finishes would land far
    down among the succeeded runs, so the cursor keeps its row; a run that moves to
    a place on screen takes the cursor along; runs above still count as new."""
    running = [job(f"r{i}", 600 + i, Status.RUNNING) for i in range(5)]  # oldest of all
    finished = [job(f"s{i:02d}", 20 + i) for i in range(40)]
    await write(store_path, *running, *finished)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            await pilot.press("s", "s")
            assert app.runs.sort == "status"
            t = table(app)
            assert t.cursor_key == ("local", "s00") and t.cursor_index == 5  # kept its run
            await pilot.press("g", "j", "j")
            assert t.cursor_key == ("local", "r2") and t.cursor_index == 2

            succeeded = {"status": Status.SUCCEEDED, "ended_at": NOW}
            await write(store_path, r2=succeeded)
            await poll(app, pilot)
            assert app.runs.index_of(("local", "r2")) == len(app.runs) - 1  # far away
            assert t.cursor_index == 2 and t.cursor_key == ("local", "r3")
            assert t.scroll_offset.y == 0 and app.loaded_key == ("local", "r3")

            await write(store_path, job("r-new", 1, Status.RUNNING))
            await poll(app, pilot)
            assert t.cursor_key == ("local", "r3") and t.cursor_index == 3
            assert t.new_count == 1

            failed = {"status": Status.FAILED, "ended_at": NOW}
            await write(store_path, r3=failed)
            await poll(app, pilot)
            # Running r-new, r0, r1, r4, then the failed band: on screen, so it follows.
            assert t.cursor_key == ("local", "r3") and t.cursor_index == 4
            assert "failed" in summary(app)


# -- item 6: what just happened ---------------------------------------------------------------


async def test_last_change_sort_puts_a_long_run_that_just_failed_first(store_path: Path) -> None:
    await write(
        store_path,
        job("fresh", 5),
        job("long", 180, Status.FAILED, ended_at=at(1)),
        job("older", 10),
    )
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            assert [k[1] for k in shown(app)] == ["fresh", "older", "long"]
            await pilot.press("s")
            assert app.runs.sort == "changed"
            assert [k[1] for k in shown(app)] == ["long", "fresh", "older"]
            assert "sort: changed ▼" in str(table(app).border_title)


async def test_next_and_previous_failure_keys(store_path: Path) -> None:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            t = table(app)
            await pilot.press("right_square_bracket")
            assert t.cursor_key == ("letta-demo", "run-000000000004")  # timed out
            await pilot.press("right_square_bracket")
            assert t.cursor_key == FAILED
            await pilot.press("right_square_bracket")  # none below: stays
            assert t.cursor_key == FAILED
            assert any("no failure below" in n.message for n in app._notifications)
            await pilot.press("left_square_bracket")
            assert t.cursor_key == ("letta-demo", "run-000000000004")


async def test_filter_says_how_many_match_and_reads_a_time_window(store_path: Path) -> None:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            box = app.main.query_one("#filter")
            await pilot.press("slash", *"since:1h")
            # ended 30 min ago (timed out), running since 10 min
            assert [k[1] for k in shown(app)] == ["run-000000000005", "run-000000000004"]
            assert str(box.border_title) == "2 of 5 match"
            await pilot.press("space", *"job:nothing")
            assert len(app.runs) == 0 and str(box.border_title) == "no match"
            await pilot.press("enter")
            assert table(app).border_subtitle == "no match"
            await pilot.press("escape")
            assert not table(app).border_subtitle and len(app.runs) == 5


# -- item 7: marks say what they hold ------------------------------------------------------------


def footer_marks(app: JobwatchApp) -> str | None:
    active = app.screen.active_bindings
    return active["U"].binding.description if "U" in active else None


async def test_marks_are_counted_cleared_and_marked_all(store_path: Path) -> None:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            assert footer_marks(app) is None  # nothing marked: no key offered
            await pilot.press("space", "space")
            await pilot.pause()
            assert "2 marked" in status_line(app) and footer_marks(app) == "2 marked"
            await pilot.press("M")
            await pilot.pause()
            assert app.runs.marked == set(shown(app)) and footer_marks(app) == "5 marked"
            await pilot.press("U")
            await pilot.pause()
            assert not app.runs.marked and "marked" not in status_line(app)
            assert footer_marks(app) is None


async def test_the_dialog_names_marked_runs_the_filter_hides(store_path: Path) -> None:
    """Marks survive a filter change (mark under one filter, act under another), so
    the status line counts the hidden ones and the confirmation names them."""
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(160, 48)) as pilot:
            await ready(app, pilot)
            assert table(app).cursor_key == RUNNING
            await pilot.press("space")  # marks the running run
            await pilot.press("slash", *"status:failed", "enter")
            assert shown(app) == [FAILED] and app.runs.marked == {RUNNING}
            assert "1 marked, 1 hidden" in status_line(app)
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            body = plain(app.screen.query_one("#confirm-body").content)
            assert "Not on screen, hidden by the filter (1):" in body
            assert "run-000000000005  running  report" in body
            await pilot.press("escape")


# -- item 12: a click selects the row clicked ------------------------------------------------------


async def test_a_click_selects_the_row_clicked(store_path: Path) -> None:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            # Widget rows: 0 is the border, 1 the header, 2 the first run.
            await pilot.click(RunsTable, offset=(20, 4))
            assert table(app).cursor_index == 2 and table(app).cursor_key == shown(app)[2]
            await pilot.click(RunsTable, offset=(20, 2))
            assert table(app).cursor_key == shown(app)[0]
            await pilot.click(RunsTable, offset=(20, 1))  # the header: nothing moves
            assert table(app).cursor_key == shown(app)[0]
