"""Errors the user can fix: printed as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration; the message names the file and the fault."""


class DataError(UserError):
    """A dataset that cannot be used as given."""


class ConfigError(UserError):
    """A configuration value that cannot work."""
