"""mailroom: a mail platform API server."""

__version__ = "0.1.0"
