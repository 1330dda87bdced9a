"""``jobwatch diff RUN [OTHER]``: what changed in a run's configuration snapshot.

A read verb: it only reads (no file is changed), and prints the tree of changes
or, with ``--json``, the structured diff. A secret's value never appears, masked
or not (see :mod:`jobwatch.core.snapshot_diff`)."""

from __future__ import annotations

import argparse

from jobwatch.cli import output as render
from jobwatch.cli.selection import opened, out, selection
from jobwatch.core.errors import JobwatchError
from jobwatch.core.redact import clean
from jobwatch.sources.snapshot_pair import compare


async def diff_verb(args: argparse.Namespace) -> int:
    async with opened(selection(args), mode="runs") as poller:
        feed, run = await poller.find(args.run)
        other = None
        if args.other:
            other_feed, other = await poller.find(args.other)
            if other_feed is not feed:
                raise JobwatchError(
                    f"{clean(other.id)} is in source {clean(other_feed.name)}, "
                    f"{clean(run.id)} in {clean(feed.name)}: compare runs of one source"
                )
        compared = await compare(feed.source, run, other)
    if args.json:
        out(render.dumps(compared.as_json()))
    else:
        out("\n".join(compared.text_lines()))
    return 0
