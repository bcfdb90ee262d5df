"""The one input-error base class: only an ``InputError`` is "bad input" (one line, exit code 2).

A leaf module (it imports nothing from the project), so ``methods/`` and ``suites/`` may raise it too. It
subclasses ``ValueError`` so callers that catch ``ValueError`` keep working; a plain ``ValueError`` raised in
the ``bench`` process is a bug and shows as an internal error (exit code 1, traceback under ``--debug``).
"""

from __future__ import annotations


class InputError(ValueError):
    """A bad value given by the user (flag, config field, name, file); the message is one line that names the
    value and what is allowed."""
