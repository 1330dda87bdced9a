"""The built-in themes live in the top-level ``themes/`` folder and are found from a
built wheel as from this (editable) checkout.

The wheel test builds the project with pip (hatchling is the backend) and installs
it, without dependencies, into a fresh virtual environment whose only other path is
this environment's site-packages (for Textual and friends; a path line, so the
editable install's own ``.pth`` there is not run and cannot put ``src/`` first).
Every step has a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILTINS = {
    "jobwatch-colorblind",
    "jobwatch-dark",
    "jobwatch-high-contrast",
    "jobwatch-light",
    "jobwatch-mono",
}
PROBE = (
    "import json, jobwatch\n"
    "from jobwatch.tui.theming import builtin_dir, builtin_themes\n"
    "print(json.dumps({'package': jobwatch.__file__, 'folder': str(builtin_dir()),"
    " 'themes': [t.name for t in builtin_themes()]}))\n"
)


def run(args: list[str], *, cwd: Path, timeout: float = 240) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def probe(python: str, cwd: Path) -> dict[str, object]:
    return json.loads(run([python, "-c", PROBE], cwd=cwd, timeout=60).splitlines()[-1])


def test_the_wheel_carries_the_themes_and_an_install_finds_them(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("jobwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"jobwatch/themes/{n}.toml" for n in BUILTINS} <= names
    assert not any(n.startswith("jobwatch/tui/themes/") for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = str(env_dir / "bin" / "python")
    site = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp_path,
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    found = probe(python, tmp_path)
    assert str(found["package"]).startswith(str(env_dir)), found  # the wheel, not src/
    assert str(found["folder"]).startswith(str(env_dir)), found
    assert set(found["themes"]) == BUILTINS  # type: ignore[arg-type]


def test_an_editable_install_reads_the_checkouts_themes_folder(tmp_path: Path) -> None:
    found = probe(sys.executable, tmp_path)  # from elsewhere: no relative path involved
    assert Path(str(found["package"])).resolve().is_relative_to(REPO / "src"), found
    assert Path(str(found["folder"])).resolve() == REPO / "themes"
    assert set(found["themes"]) == BUILTINS  # type: ignore[arg-type]
    assert not (REPO / "src" / "jobwatch" / "tui" / "themes").exists()
