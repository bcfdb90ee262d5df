"""Errors raised while finding, reading and converting task data."""

from __future__ import annotations

from bench.errors import InputError


class TaskDataError(InputError):
    """Task data cannot be found or read.

    The message is one line that names the task, the path searched and the file expected, or, for malformed
    rows, the file, the line number and the reason, so the user can fix the data dir without a traceback.
    """


class RowError(ValueError):
    """One row of a data file cannot be converted; the reader counts it as malformed (see ``readers``)."""
