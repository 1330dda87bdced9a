"""Salted fingerprints of the secrets a snapshot had before it was redacted.

Snapshots are stored redacted, so two different passwords both read ``***`` and a
diff could not tell "the secret changed" from "it stayed the same" — the one
question asked after "what changed since it last worked?". At write time, next to
the redacted snapshot, each value the redactor changed gets a short
HMAC-SHA256 under a random key of the store (kept 0600 in the local store, never
in a run document). Why HMAC and not a hash: an unsalted hash of a short
password can be looked up or guessed offline by anyone who sees the run document
(``jobwatch serve``, an exported ``--json``); a keyed one cannot without the key.
Why short (16 hex): it only has to tell two values apart, and the less it says
the better. The value itself is never kept.

``fingerprints`` is pure: the key is handed in by whoever holds the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

from jobwatch.core.redact import REDACTED

__all__ = ["FP_META", "Path", "fingerprints", "key_id", "pointer", "read_fingerprints"]

FP_META = "snapshot_fingerprints"
"""The key in ``Run.metadata``: ``{"key": <key id>, "values": [[<pointer>, <fp>], …]}``.
Pairs, not a mapping: a pointer such as ``/env/DB_PASSWORD`` would read as a
secret field name to the redactor, which would mask its fingerprint on the way
out (``--json``, ``jobwatch serve``) and leave a remote diff nothing to compare."""
FP_HEX = 16

Path = tuple[str | int, ...]


def key_id(key: bytes) -> str:
    """Names the key without revealing it: fingerprints under different keys (two
    stores, two hosts) cannot be compared, and the diff must know that."""
    return hmac.new(key, b"jobwatch key id", hashlib.sha256).hexdigest()[:8]


def pointer(path: Path) -> str:
    """A JSON pointer (RFC 6901) for a path of keys and list indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _fp(key: bytes, value: Any) -> str:
    data = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:FP_HEX]


def _changed(raw: Any, shown: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every place where the redacted ``shown`` differs from ``raw`` (walked in
    parallel), with the raw value there."""
    if isinstance(raw, dict) and isinstance(shown, dict):
        for k, v in raw.items():
            if k in shown:
                yield from _changed(v, shown[k], (*path, k))
            # A key the sanitizer rewrote: its value is compared under the new key.
        return
    if isinstance(raw, list | tuple) and isinstance(shown, list | tuple) and len(raw) == len(shown):
        for i, (a, b) in enumerate(zip(raw, shown, strict=True)):
            yield from _changed(a, b, (*path, i))
        return
    if raw != shown or (isinstance(shown, str) and REDACTED in shown):
        yield path, raw


def fingerprints(raw: Any, shown: Any, key: bytes) -> dict[str, Any]:
    """The metadata entry for a snapshot: a fingerprint of each raw value that the
    redacted ``shown`` hides or changes, by its JSON pointer."""
    values = [[pointer(path), _fp(key, value)] for path, value in _changed(raw, shown, ())]
    return {"key": key_id(key), "values": values}


def read_fingerprints(metadata: Any) -> tuple[str, dict[str, str]] | None:
    """(key id, {pointer: fp}) from a run's metadata, or None when it has none or
    they are not in the shape written here (a vendor's metadata, say)."""
    if not isinstance(metadata, dict):
        return None
    entry = metadata.get(FP_META)
    if not isinstance(entry, dict):
        return None
    kid, values = entry.get("key"), entry.get("values")
    if not isinstance(kid, str) or not isinstance(values, list):
        return None
    pairs = (v for v in values if isinstance(v, list | tuple) and len(v) == 2)
    return kid, {str(p): str(fp) for p, fp in pairs if isinstance(fp, str)}
