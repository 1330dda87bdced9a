"""The one registry of vendor kinds: what a config file, the demo and the contract
suite all read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobwatch.core import Status
from jobwatch.sources.vendors import VENDORS, adapter, source_class
from jobwatch.sources.vendors.base import VendorConfig, VendorSource

_FRESH = """
import json, sys
from jobwatch.config import parse_config
from jobwatch.config.schema import SOURCE_KINDS

before = sorted(SOURCE_KINDS)
kinds = json.loads(sys.argv[1])
text = "".join(f'[sources.s-{k}]\\nkind = "{k}"\\n' for k in kinds)
try:
    parse_config(text)
except Exception as exc:  # the vendors' own settings are missing: that is fine here
    message = str(exc)
else:
    message = ""
print(json.dumps({"before": before, "after": sorted(SOURCE_KINDS), "message": message}))
"""


@pytest.mark.parametrize("kind", VENDORS)
def test_every_registered_kind_has_an_adapter(kind: str) -> None:
    module = adapter(kind)
    cls = source_class(kind)
    assert issubclass(cls, VendorSource) and kind == cls.KIND and cls.SYSTEM
    configs = [v for v in vars(module).values() if isinstance(v, type)]
    assert any(issubclass(c, VendorConfig) and kind == c.KIND for c in configs)
    status_map = module.STATUS_MAP
    assert status_map and all(s is None or isinstance(s, Status) for s in status_map.values())


def test_a_config_file_finds_every_kind_in_a_fresh_process() -> None:
    """Nothing imports the adapters before the config needs a kind it does not know."""
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, json.dumps(list(VENDORS))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert not set(VENDORS) & set(seen["before"])
    assert set(VENDORS) <= set(seen["after"])
    assert "is not one of" not in seen["message"]


def test_an_unknown_kind_lists_the_registered_ones() -> None:
    from jobwatch.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as refused:
        parse_config('[sources.x]\nkind = "acme"\n')
    assert all(kind in str(refused.value) for kind in VENDORS)
    with pytest.raises(KeyError, match="not a vendor kind"):
        adapter("acme")
