"""Column widths: every column within its policy, extra room shared by flex, and
which problem words are faults; the column setting written back to the config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rich.cells import cell_len

from jobwatch.config import ConfigError, ConfigValueError, parse_config
from jobwatch.config.write import save_columns, with_columns
from jobwatch.core.columns import BY_NAME, COLUMNS, GAP, layout
from jobwatch.core.reasons import Severity, severity
from jobwatch.core.status import Status

LETTA_ID = "run-7c663870-b99a-4c1e-9d7e-4f6c1a2b3c4d"
LONG_PROBLEM = "context_window_overflow_in_system_prompt"
RESERVED = 2  # the monitor's mark and its gap


@pytest.mark.parametrize("width", [80, 100, 120, 160, 200, 300])
@pytest.mark.parametrize("several", [False, True])
def test_every_column_stays_within_its_policy(width: int, several: bool) -> None:
    chosen = layout(width, several=several, reserved=RESERVED)
    names = [c.name for c, _ in chosen]
    assert {"status", "id", "job"} <= set(names)
    for column, cells in chosen:
        assert cells >= column.width.min, column.name
        assert column.width.max is not None, f"{column.name} has no maximum"
        assert cells <= column.width.max, column.name
    used = sum(w for _, w in chosen) + GAP * (len(chosen) - 1)
    assert used <= width - RESERVED


def test_at_200_columns_id_problem_and_progress_are_not_cut() -> None:
    widths = dict((c.name, w) for c, w in layout(200, several=True, reserved=RESERVED))
    assert widths["id"] >= cell_len(LETTA_ID)
    assert widths["problem"] >= cell_len(LONG_PROBLEM)
    assert widths["progress"] >= cell_len("████████████ 469/500 ✗31~") - 4
    assert widths["job"] <= 40  # it used to take every spare cell (about 95)


def test_at_120_columns_common_problems_fit_and_flex_shares_the_rest() -> None:
    widths = dict((c.name, w) for c, w in layout(120, reserved=RESERVED))
    assert widths["problem"] >= cell_len("max_tokens_exceeded")
    assert widths["id"] >= cell_len("run-000000000002")
    assert "progress" in widths
    # Extra room went by flex share: job (3) and problem (3) grew more than id (2).
    grew = {n: widths[n] - BY_NAME[n].width.min for n in ("id", "job", "problem")}
    assert grew["job"] >= grew["id"] and grew["problem"] >= grew["id"] > 0


def test_at_80_columns_optional_columns_go_by_priority() -> None:
    names = [c.name for c, _ in layout(80, reserved=RESERVED)]
    assert "problem" in names and "progress" not in names and "source" not in names


@pytest.mark.parametrize(
    ("problem", "status", "expected"),
    [
        ("end_turn", Status.SUCCEEDED, Severity.NORMAL),
        ("user-request", Status.SUCCEEDED, Severity.NORMAL),
        ("user-request", Status.PAUSED, Severity.NORMAL),
        ("aborted", Status.ABORTED, Severity.NORMAL),
        ("user_abort", Status.ABORTED, Severity.NORMAL),
        ("stop_sequence", Status.SUCCEEDED, Severity.NORMAL),
        ("cancelled", Status.ABORTED, Severity.NORMAL),
        ("requires_approval", Status.SUCCEEDED, Severity.NOTICE),
        ("max_steps", Status.SUCCEEDED, Severity.NOTICE),
        ("auth-session-validate-dependency-failed", Status.ABORTED, Severity.FAULT),
        ("max_tokens_exceeded", Status.FAILED, Severity.FAULT),
        ("exit-2", Status.FAILED, Severity.FAULT),
        ("end_turn", Status.FAILED, Severity.FAULT),  # a failed run is a fault anyway
        ("lost", Status.UNKNOWN, Severity.FAULT),
        ("something-new", Status.SUCCEEDED, Severity.FAULT),
        (None, Status.FAILED, None),
    ],
)
def test_which_problem_words_are_faults(
    problem: str | None, status: Status, expected: Severity | None
) -> None:
    assert severity(problem, status) is expected


# -- the columns setting -------------------------------------------------------------------

CONFIG = """# my jobwatch
refresh = 2.0  # fast
theme = "jobwatch-light"

[sources.local]
kind = "sqlite"
path = "/tmp/runs.db"
"""


def test_columns_are_added_before_the_first_table_and_nothing_else_changes() -> None:
    text = with_columns(CONFIG, ["status", "id", "job", "problem"])
    assert text.startswith("# my jobwatch\nrefresh = 2.0  # fast\n")
    assert 'columns = ["status", "id", "job", "problem"]\n\n[sources.local]' in text
    config = parse_config(text)
    assert config.columns == ["status", "id", "job", "problem"]
    assert config.refresh == 2.0 and config.theme == "jobwatch-light"
    again = with_columns(text, ["status", "job"])
    assert again == text.replace('"id", "job", "problem"', '"job"')


def test_a_multiline_columns_array_is_left_alone() -> None:
    text = 'columns = [\n  "status",\n  "job",\n]\n'
    with pytest.raises(ConfigError, match="safely"):
        with_columns(text, ["status"])


def test_save_columns_keeps_the_mode_and_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o640)
    save_columns(path, ["status", "job"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert parse_config(path.read_text()).columns == ["status", "job"]
    fresh = tmp_path / "sub" / "config.toml"
    save_columns(fresh, ["status"])
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert fresh.read_text() == 'columns = ["status"]\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "sub"]


def test_unknown_columns_in_the_config_are_one_clear_error() -> None:
    with pytest.raises(ConfigValueError, match="unknown column"):
        parse_config('columns = ["status", "nope"]\n')
    assert parse_config("").columns is None
    assert all(parse_config(f'columns = ["{c.name}"]').columns == [c.name] for c in COLUMNS)
