"""Command line: ``jobwatch [VERB] …``; no verb opens the monitor.

``parser`` builds the arguments, ``selection`` picks and opens the sources,
``verbs`` and ``monitor`` carry out a command, ``main`` turns errors into one line.
"""

from jobwatch.cli.main import main
from jobwatch.cli.monitor import monitor_app, monitor_options
from jobwatch.cli.parser import build_parser

__all__ = ["build_parser", "main", "monitor_app", "monitor_options"]
