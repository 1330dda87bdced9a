"""The runs table's order: keys sorted by a sort key, kept in blocks.

A busy poll moves a thousand rows of a 100k-row table to new places. In one flat
list every move (or one splice of them all) copies the whole order; in blocks of
a few hundred keys a move is two bisections and a short ``memmove``, and finding
the n-th key is one more bisection over the block offsets.

Those bisections and the calls around them are most of a move, and comparing
tuples was most of a bisection. So with ``prefix`` each block keeps the float its
sort keys lead with in an ``array``: bisections compare those, and whole sort
keys only where the floats tie; one call moves all of a poll's keys. Measured on
100k rows sorted by status, merging a poll of 1,000 changed rows that nearly all
move (``RunSet.apply``) took a median of about 6 ms on a quiet machine, against
about 9 ms with tuple bisections and one call per move (two thirds of the time,
with the same polls interleaved in one process).
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

BLOCK = 512
"""Keys per block after a rebuild; a block splits when it doubles."""

SortKey = tuple[Any, ...]

_first = itemgetter(0)


class SortedKeys:
    """Unique keys in ascending order of their (unique) sort keys."""

    __slots__ = ("_dirty", "_firsts", "_keys", "_len", "_offsets", "_prefix", "_ps", "_sks")

    def __init__(
        self, sks: Sequence[SortKey] = (), keys: Sequence[Hashable] = (), *, prefix: bool = False
    ) -> None:
        """``keys`` and their sort keys ``sks``, already in ascending order.

        With ``prefix``, every sort key starts with a float that never orders it
        after a greater sort key (it may tie with it): bisections compare those
        floats, and the sort keys only among ties.
        """
        self._prefix = prefix
        self._keys: list[list[Hashable]] = [
            list(keys[i : i + BLOCK]) for i in range(0, len(keys), BLOCK)
        ]
        self._sks: list[list[SortKey]] = [
            list(sks[i : i + BLOCK]) for i in range(0, len(sks), BLOCK)
        ]
        # What is bisected: the leading floats, or the sort keys (the same lists).
        self._ps: list[Any] = (
            [array("d", map(_first, block)) for block in self._sks] if prefix else self._sks
        )
        self._firsts: list[Any] = [block[0] for block in self._ps]
        self._len = len(keys)
        self._offsets: list[int] = []
        self._dirty = True

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Hashable]:
        return itertools.chain.from_iterable(self._keys)

    def _where(self) -> list[int]:
        if self._dirty:
            self._offsets = list(itertools.accumulate((len(b) for b in self._keys), initial=0))
            self._dirty = False
        return self._offsets

    def at(self, index: int) -> Hashable:
        """The key at ``index`` (0-based, ascending)."""
        if not 0 <= index < self._len:
            raise IndexError(index)
        offsets = self._where()
        block = bisect_right(offsets, index) - 1
        return self._keys[block][index - offsets[block]]

    def _find(self, sk: SortKey) -> tuple[int, int]:
        """(block, index) where ``sk`` is or would go; the order is not empty.

        :meth:`remove_many` and :meth:`insert_many` repeat the in-block part inline.
        """
        prefix = self._prefix
        p = sk[0] if prefix else sk
        block = self._block(p, sk)
        ps = self._ps[block]
        i = bisect_left(ps, p)
        if prefix and i < len(ps) and ps[i] == p:
            i = bisect_left(self._sks[block], sk, i, bisect_right(ps, p, i))
        return block, i

    def _block(self, p: Any, sk: SortKey) -> int:
        """The block where ``sk`` (led by ``p``) is or would go; not empty."""
        firsts = self._firsts
        block = bisect_right(firsts, p)
        if self._prefix and block and firsts[block - 1] == p:  # blocks start with ties on p
            block = bisect_right(self._sks, sk, bisect_left(firsts, p, 0, block), block, key=_first)
        return block - 1 if block else 0

    def index(self, sk: SortKey, key: Hashable) -> int | None:
        """Where ``key`` (whose sort key is ``sk``) stands, or ``None``."""
        if not self._keys:
            return None
        block, i = self._find(sk)
        keys = self._keys[block]
        if i == len(keys) or keys[i] != key:
            return None
        return self._where()[block] + i

    def remove(self, sk: SortKey, key: Hashable) -> bool:
        """Take ``key`` out; ``False`` when it is not where ``sk`` says."""
        return self.remove_many(((sk, key),))

    def insert(self, sk: SortKey, key: Hashable) -> None:
        """Put ``key`` where ``sk`` says (``sk`` must not be in the order yet)."""
        self.insert_many(((sk, key),))

    # A poll moves a thousand keys: the two loops below inline the in-block part
    # of ``_find``, as a call would cost about as much as a bisection.

    def remove_many(self, pairs: Iterable[tuple[SortKey, Hashable]]) -> bool:
        """Take out each (sort key, key); ``False`` at the first key that is not
        where its sort key says (the keys before it are out)."""
        prefix = self._prefix
        firsts, keys_b, ps_b, sks_b = self._firsts, self._keys, self._ps, self._sks
        find_block = self._block
        self._dirty = True
        for sk, key in pairs:
            if not keys_b:
                return False
            p = sk[0] if prefix else sk
            block = find_block(p, sk)
            keys, ps = keys_b[block], ps_b[block]
            i = bisect_left(ps, p)
            if i == len(keys) or keys[i] != key:  # absent, or not first among ties on p
                if not prefix:
                    return False
                i = bisect_left(sks_b[block], sk, i, bisect_right(ps, p, i))
                if i == len(keys) or keys[i] != key:
                    return False
            del keys[i], ps[i]
            if prefix:
                del sks_b[block][i]
            if not keys:
                del keys_b[block], ps_b[block], firsts[block]
                if prefix:
                    del sks_b[block]
            elif not i:
                firsts[block] = ps[0]
            self._len -= 1
        return True

    def insert_many(self, pairs: Iterable[tuple[SortKey, Hashable]]) -> None:
        """Put in each (sort key, key); no sort key may be in the order yet."""
        prefix = self._prefix
        firsts, keys_b, ps_b, sks_b = self._firsts, self._keys, self._ps, self._sks
        find_block = self._block
        self._dirty = True
        for sk, key in pairs:
            self._len += 1
            p = sk[0] if prefix else sk
            if not keys_b:
                keys_b.append([key])
                if prefix:
                    ps_b.append(array("d", (p,)))
                    sks_b.append([sk])
                else:
                    ps_b.append([sk])
                firsts.append(ps_b[0][0])
                continue
            block = find_block(p, sk)
            keys, ps = keys_b[block], ps_b[block]
            i = bisect_left(ps, p)
            if prefix:
                sks = sks_b[block]
                if i < len(ps) and ps[i] == p:
                    i = bisect_left(sks, sk, i, bisect_right(ps, p, i))
                sks.insert(i, sk)
            ps.insert(i, p)
            keys.insert(i, key)
            if not i:
                firsts[block] = ps[0]
            if len(keys) > 2 * BLOCK:
                half = len(keys) // 2
                keys_b[block : block + 1] = [keys[:half], keys[half:]]
                ps_b[block : block + 1] = [ps[:half], ps[half:]]
                if prefix:
                    sks_b[block : block + 1] = [sks[:half], sks[half:]]
                firsts[block : block + 1] = [ps[0], ps[half]]
