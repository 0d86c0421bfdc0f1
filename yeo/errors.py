"""Errors the user can fix: printed as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration; the message names the file and the fault."""

    exit_code = 1  # run.py's exit status when a run stops on it (a config check's is 2)


class DataError(UserError):
    """A dataset that cannot be used as given."""


class ConfigError(UserError):
    """A configuration value that cannot work."""


class ReaderError(ConfigError):
    """A user's dataset reader (``data.reader``) that cannot be imported or misbehaves."""

    exit_code = 2  # a configuration fault, even when found inside the run
