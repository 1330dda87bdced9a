"""Command line: ``jobwatch [VERB] …``. No verb opens the monitor.

Every error is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobwatch.core.errors import (
    JobwatchError,
)
from jobwatch.core.redact import clean

if TYPE_CHECKING:
    pass

from jobwatch.cli.parser import build_parser
from jobwatch.cli.verbs import EXIT_ERROR, EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(args.func(args))
    except JobwatchError as exc:
        print(f"jobwatch: {clean(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `jobwatch list | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so in one line; JOBWATCH_DEBUG=1 for the trace
        if os.environ.get("JOBWATCH_DEBUG"):
            raise
        name = type(exc).__name__
        print(
            f"jobwatch: internal error ({name}): {clean(str(exc))} "
            "(set JOBWATCH_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
