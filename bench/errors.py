"""The one input-error base class: only an ``InputError`` is "bad input" (one line, exit code 2).

A leaf module (it imports nothing from the project), so ``methods/`` and ``suites/`` may raise it too. It
subclasses ``ValueError`` so callers that catch ``ValueError`` keep working; a plain ``ValueError`` raised in
the ``bench`` process is a bug and shows as an internal error (exit code 1, traceback under ``--debug``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class InputError(ValueError):
    """A bad value given by the user (flag, config field, name, file); the message is one line that names the
    value and what is allowed."""


@contextlib.contextmanager
def bad_input(where: str = "") -> Iterator[None]:
    """Inside, a ``ValueError`` is bad input: for the hooks whose contract says so (a method config's
    ``validate(dims)``, a method's ``check_sources``), which ``methods/`` raise without knowing the CLI.
    ``where`` prefixes the message (e.g. the method and model)."""
    try:
        yield
    except ValueError as exc:
        raise InputError(f"{where}{exc}") from None
