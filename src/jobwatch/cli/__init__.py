"""Command line: ``jobwatch [VERB] …``; no verb opens the monitor."""

from jobwatch.cli.main import build_parser, main, monitor_app, monitor_options

__all__ = ["build_parser", "main", "monitor_app", "monitor_options"]
