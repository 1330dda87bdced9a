"""Adapters for the five seed systems; importing this registers their config kinds."""

from __future__ import annotations

import importlib

VENDORS = ("salesforce", "letta", "intuned", "modzy", "matatika")

for _name in VENDORS:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # an adapter not written yet must not break the rest
        if exc.name != f"{__name__}.{_name}":
            raise
