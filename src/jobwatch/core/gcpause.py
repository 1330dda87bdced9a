"""Pausing the cyclic garbage collector around building many small objects."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building 100k small objects triggers full collections that walk everything
    built so far (three quarters of the load time, measured); none of it can be
    garbage yet, so the collector waits until the batch is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_loaded() -> None:
    """Move everything alive now out of the collector's sight.

    After the first sync the table's 100k rows live as long as the app; without
    this every full collection (triggered by ordinary drawing) walks all of them,
    tens of milliseconds each time, measured as most of a busy poll's cost. Rows
    replaced later are freed by reference counting as before."""
    gc.freeze()
