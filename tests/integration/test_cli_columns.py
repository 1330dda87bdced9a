"""``jobwatch list --columns``: chosen columns, or the config's (the chooser's) ones."""

from __future__ import annotations

from pathlib import Path

from test_cli import seed

from conftest import run_cli


def test_list_columns_by_name_and_from_the_config(store_path: Path, tmp_path: Path) -> None:
    seed(store_path)
    result = run_cli(store_path, "list", "--columns", "status,job")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["running\tbackup", "failed\tetl"]

    config = tmp_path / "config.toml"
    config.write_text('columns = ["id", "problem"]\n')
    config.chmod(0o600)
    result = run_cli(store_path, "list", "--config", str(config), "--columns")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "run-aaaa00000002\texit-2"
    # Without the flag, the documented fields stay as scripts know them.
    result = run_cli(store_path, "list", "--config", str(config))
    assert len(result.stdout.splitlines()[0].split("\t")) == 8

    bad = run_cli(store_path, "list", "--columns", "status,nope")
    assert bad.returncode == 2 and "unknown column(s) nope" in bad.stderr
