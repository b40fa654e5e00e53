"""The package version (one place: the CLI and selfcheck read it too)."""

__version__ = "0.1.0"
