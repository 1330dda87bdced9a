"""jobwatch: a terminal monitor for job runs."""

__version__ = "0.1.0"
