"""Errors a job reports on one line before exiting non-zero."""


class ConfigError(ValueError):
    """A setting with a value that is not allowed; the message names the variable."""


class JobError(RuntimeError):
    """A stage failed (a child process, a timeout waiting for shards, ...)."""
