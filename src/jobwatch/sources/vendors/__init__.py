"""The vendor adapters, and the one registry that names them.

Adding a system is one adapter module in this folder (its ``KIND`` is the module's
name; it registers its config kind and defines a :class:`VendorSource` subclass
and its ``STATUS_MAP``), its stand-in in ``tests/standins``, one line in
:data:`VENDORS` and one line in the contract suite's factories
(``tests/integration/test_source_contract.py``, which fails while the two
disagree). The config file finds kinds through this tuple, the demo builds its
vocabulary from it.

A tuple rather than an entry-points group: the adapters ship inside jobwatch and
are held to its rules (redaction, the transition rules, the contract suite), so
there is no outside plugin to discover; a tuple works from a plain checkout and an
editable install alike (an entry point only exists after ``pip install`` has
written the metadata again), and reading it costs no scan of every installed
distribution on the way to the first screen.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobwatch.sources.vendors.base import VendorSource

VENDORS: tuple[str, ...] = ("salesforce", "letta", "intuned", "modzy", "matatika")
"""Every vendor kind, by the name of its adapter module."""


def adapter(kind: str) -> ModuleType:
    """The adapter module of a registered vendor kind (imported, so registered)."""
    if kind not in VENDORS:
        raise KeyError(f"{kind!r} is not a vendor kind: {', '.join(VENDORS)}")
    return importlib.import_module(f"{__name__}.{kind}")


def source_class(kind: str) -> type[VendorSource]:
    """The :class:`VendorSource` subclass of a vendor kind."""
    from jobwatch.sources.vendors.base import VendorSource

    module = adapter(kind)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, VendorSource) and kind == value.KIND:
            return value
    raise LookupError(f"{module.__name__} defines no VendorSource with KIND = {kind!r}")


for _kind in VENDORS:  # importing an adapter registers its config kind
    adapter(_kind)
