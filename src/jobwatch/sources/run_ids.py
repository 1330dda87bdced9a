"""Run ids typed by people: a full id or a unique prefix (with or without ``run-``).

Both stores answer a prefix with one ``LIKE`` query; what the patterns are and
what the answer means is the same for both, so it is said once here."""

from __future__ import annotations

from collections.abc import Sequence

from jobwatch.core.errors import AmbiguousRunId, RunNotFound

CANDIDATES = 6
"""Rows a prefix query asks for: one more than the candidates an error names."""


def typed(ref: str) -> str:
    """``ref`` without surrounding blanks; an empty one is no run."""
    ref = ref.strip()
    if not ref:
        raise RunNotFound("empty run id")
    return ref


def prefix_patterns(ref: str) -> tuple[str, str]:
    """``LIKE`` patterns (escape character ``\\``) for ids starting with ``ref``,
    and with ``run-`` and then ``ref``."""
    pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return pattern, "run-" + pattern


def pick(ref: str, ids: Sequence[str], where: str) -> str:
    """The one id a prefix names among the ``ids`` that matched it."""
    if not ids:
        raise RunNotFound(f"no run {ref!r} in {where}")
    if len(ids) > 1:
        shown = ", ".join(ids[: CANDIDATES - 1])
        raise AmbiguousRunId(f"{ref!r} matches several runs: {shown}…")
    return ids[0]
