"""The headless rules of stuck runs, late jobs, hooks' payloads and terminal
notifications (triage/), with injected clocks."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from jobwatch.config import ConfigError, parse_config
from jobwatch.config.live import hook_argv, parse_span
from jobwatch.core.columns import BY_NAME, Cell
from jobwatch.core.reasons import Severity, row_severity
from jobwatch.core.row import RunRow
from jobwatch.core.status import Status
from jobwatch.sources.activity import Activity, Schedule
from jobwatch.triage.hooks import payload_bytes
from jobwatch.triage.live import LiveWatch
from jobwatch.triage.schedules import Schedules, lateness_of
from jobwatch.triage.stuck import FLOOR_S, RowActivity, StuckWatch, stuck_after
from jobwatch.triage.terminal import osc_notification

T0 = 1_800_000_000.0


def row(run_id: str = "r1", *, status: Status = Status.RUNNING, **kw: object) -> RunRow:
    base: dict[str, object] = dict(
        source="local",
        id=run_id,
        job="sync",
        label=None,
        status=status,
        status_raw=None,
        created_at=T0,
        started_at=T0,
        ended_at=None,
        duration_ms=None,
        total=None,
        succeeded=None,
        failed=None,
        partial=False,
        archived=False,
        problem=None,
    )
    base.update(kw)
    return RunRow(**base)  # type: ignore[arg-type]


# -- stuck -------------------------------------------------------------------------------


def test_the_threshold_is_the_default_until_a_job_has_history() -> None:
    assert stuck_after([5.0] * 4, 900.0) == 900.0
    assert stuck_after([5.0] * 5, 900.0) == FLOOR_S  # 3 x 5 s is under the floor
    assert stuck_after([400.0, 10.0, 10.0, 10.0, 10.0], 900.0) == 1200.0  # rests long: later


def test_a_quiet_run_is_stuck_once_and_again_after_it_moved() -> None:
    watch = StuckWatch(60.0)
    act = Activity("local", "r1", "sync", T0, T0 + 10, None)
    assert not watch.check([act], T0 + 69).stuck
    first = watch.check([act], T0 + 71)
    assert list(first.stuck) == [("local", "r1")] and len(first.new) == 1
    assert first.new[0].quiet_for(T0 + 71) == pytest.approx(61)
    again = watch.check([act], T0 + 200)
    assert again.stuck and not again.new  # announced once
    moved = Activity("local", "r1", "sync", T0, T0 + 300, None)
    assert not watch.check([moved], T0 + 310).stuck
    assert len(watch.check([moved], T0 + 400).new) == 1  # a new stop is news again


def test_learned_history_makes_one_job_stricter_and_leaves_others_alone() -> None:
    watch = StuckWatch(900.0)
    watch.learn({("local", "chatty"): [2.0] * 6})
    acts = [
        Activity("local", "a", "chatty", T0, T0, None),
        Activity("local", "b", "other", T0, T0, None),
    ]
    report = watch.check(acts, T0 + FLOOR_S + 1)
    assert set(report.stuck) == {("local", "a")}


def test_progress_moves_seen_between_polls_count_as_activity() -> None:
    seen = RowActivity()
    seen.observe([row(total=10, succeeded=1)], T0 + 5)
    assert seen.activity()[0].active_at == T0  # first sight: only its start is known
    seen.observe([row(total=10, succeeded=1)], T0 + 50)
    assert seen.activity()[0].active_at == T0
    seen.observe([row(total=10, succeeded=2)], T0 + 60)
    assert seen.activity()[0].active_at == T0 + 60
    seen.observe([row(status=Status.SUCCEEDED, total=10, succeeded=10)], T0 + 70)
    assert seen.activity() == []
    seen.observe([row("r2")], T0 + 80)  # no counters: no signal, never judged
    assert seen.activity() == []


def test_a_stuck_row_says_so_in_problem_and_is_a_fault() -> None:
    r = row(stuck_since=T0 + 60, problem=None)
    cell = BY_NAME["problem"].text(r, Cell(now=T0 + 60 + 22 * 60))
    assert cell == "stuck 22m"
    assert row_severity(r) is Severity.FAULT
    assert "stuck" in (BY_NAME["problem"].values or (lambda _r: ()))(r)
    ended = row(status=Status.SUCCEEDED, stuck_since=T0)
    assert not ended.stuck and BY_NAME["problem"].text(ended, Cell(now=T0)) == ""


# -- late --------------------------------------------------------------------------------


def test_a_job_is_late_after_its_period_and_grace_and_announced_once() -> None:
    sched = Schedule("local", "backup", every_s=3600, grace_s=600)
    assert lateness_of(sched, T0, T0 + 3600 + 599) is None
    late = lateness_of(sched, T0, T0 + 3600 + 601)
    assert late is not None and late.late_by == pytest.approx(601)
    book = Schedules([sched], now=T0)
    assert book.lateness(("local", "backup"), T0, T0 + 4300) is not None
    assert book.lateness(("local", "other"), T0, T0 + 99_999) is None
    found = book.late({("local", "backup"): T0}, T0 + 4300)
    assert len(book.news(found)) == 1 and book.news(found) == []
    # a run started: no longer late; the next missed slot is news again
    assert book.late({("local", "backup"): T0 + 4300}, T0 + 4400) == []
    book.news([])
    later = book.late({("local", "backup"): T0 + 4300}, T0 + 4300 + 4201)
    assert len(book.news(later)) == 1


def test_a_job_that_never_ran_is_late_one_period_after_it_was_scheduled() -> None:
    book = Schedules([Schedule("local", "backup", every_s=60, since=T0)], now=T0 + 1)
    assert book.lateness(("local", "backup"), None, T0 + 59) is None
    assert book.lateness(("local", "backup"), None, T0 + 61) is not None


def test_cron_lines_expect_the_next_slot_after_the_last_start() -> None:
    local = datetime(2027, 1, 15, 2, 30).astimezone()
    sched = Schedule("ci", "nightly", cron="0 3 * * *", grace_s=900)
    start = local.timestamp()
    assert lateness_of(sched, start, start + 30 * 60 + 899) is None
    late = lateness_of(sched, start, start + 30 * 60 + 901)
    assert late is not None and late.expected_at == start + 30 * 60


def test_the_config_says_schedules_hooks_and_stuck_after() -> None:
    config = parse_config(
        'stuck_after = "2m"\nterminal_notify = "osc777"\n'
        '[[schedules]]\njob = "backup"\nevery = "1h"\ngrace = "10m"\n'
        '[[schedules]]\njob = "nightly"\nsource = "ci"\ncron = "0 3 * * *"\n'
        '[hooks]\non_failure = "notify --urgent"\non_late = ["sh", "-c", "cat > x"]\n'
        'timeout = "5s"\n'
    )
    live = config.live
    assert live.stuck_after == 120 and live.terminal_notify == "osc777"
    assert [(s.job, s.every_s, s.cron, s.grace_s) for s in live.schedules] == [
        ("backup", 3600, None, 600),
        ("nightly", None, "0 3 * * *", 0),
    ]
    assert live.hooks.on_failure == ("notify", "--urgent") and live.hooks.timeout == 5
    assert not config.warnings
    with pytest.raises(ConfigError, match="cron"):
        parse_config('[[schedules]]\njob = "x"\ncron = "every day"\n')
    with pytest.raises(ConfigError, match="one of every or cron"):
        parse_config('[[schedules]]\njob = "x"\n')
    with pytest.raises(ConfigError, match="empty"):
        parse_config('[hooks]\non_failure = ""\n')


def test_spans_and_hook_commands() -> None:
    assert parse_span("90") == 90 and parse_span("10m") == 600 and parse_span("1.5h") == 5400
    with pytest.raises(ValueError):
        parse_span("soon")
    assert hook_argv("notify 'a b' $HOME") == ("notify", "a b", "$HOME")  # no shell


# -- what is announced, and how -----------------------------------------------------------


def test_only_runs_that_fail_after_the_first_sync_are_news() -> None:
    now = [T0]
    live = LiveWatch(clock=lambda: now[0])
    assert live.observe([row("old", status=Status.FAILED, ended_at=T0 - 5)], first=True) == []
    now[0] = T0 + 10
    new = live.observe([row("new", status=Status.FAILED, ended_at=T0 + 9)])
    assert [r.id for r in new] == ["new"]
    assert live.observe([row("new", status=Status.FAILED, ended_at=T0 + 9)]) == []
    stale = row("ancient", status=Status.FAILED, started_at=T0 - 9000, ended_at=T0 - 8000)
    assert live.observe([stale]) == []  # ended long before the watch began


def test_a_hook_payload_is_redacted() -> None:
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    body = {
        "run": {
            "id": "r1",
            "error": {"message": f"push failed: token {secret}"},
            "config": {"password": "hunter2", "argv": ["--token", "abc123xyz"]},
        }
    }
    text = payload_bytes("failure", body).decode()
    assert secret not in text and "hunter2" not in text and "abc123xyz" not in text
    data = json.loads(text)
    assert data["event"] == "failure" and data["run"]["id"] == "r1"


def test_terminal_notifications_cannot_carry_escapes() -> None:
    assert osc_notification("off", "t", "b") == ""
    nine = osc_notification("osc9", "jobwatch: sync failed", "run-1")
    assert nine == "\x1b]9;jobwatch: sync failed: run-1\x07"
    evil = osc_notification("osc777", "job;x\x1b]0;pwn\x07", "body\x07\x1b[2J")
    assert evil.startswith("\x1b]777;notify;") and evil.endswith("\x07")
    inner = evil[len("\x1b]777;notify;") : -1]
    assert "\x1b" not in inner and "\x07" not in inner
    assert inner.count(";") == 1  # title and body only


def test_a_first_block_read_before_the_writer_started_still_times_the_next_gap() -> None:
    """The command starts first; a store slow to open starts the writer later than
    the first line was read. The gap to the next line is still from that line (it
    was measured from the writer's start, so a 0.7 s pause read as 0.44 s)."""
    from jobwatch.sources.local.logsink import LineBatch, OutputActivity

    activity = OutputActivity(start=100.0)
    activity.seen([LineBatch(1, 99.7, "stdout", ["1"], {})])
    last, quiet = activity.seen([LineBatch(2, 100.4, "stdout", ["2"], {})])
    assert last == 100.4
    assert quiet == pytest.approx(700.0)
