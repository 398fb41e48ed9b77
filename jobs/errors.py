"""Errors a job reports on one line before exiting non-zero."""


class JobError(RuntimeError):
    """A stage failed (a child process, a timeout waiting for shards, ...)."""
