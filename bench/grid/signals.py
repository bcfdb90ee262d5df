"""Process lifetime for ``bench run``: SIGTERM as an interrupt, and workers that die with their parent.

SIGINT raises ``KeyboardInterrupt`` already; :func:`install` makes SIGTERM raise :class:`Terminated` (a
``KeyboardInterrupt``), so both unwind the same way: the running worker is stopped, its run is recorded as
``cancelled`` and ``bench`` exits 130 (SIGINT) or 143 (SIGTERM). A SIGKILLed ``bench`` cannot unwind; its
worker asks the kernel (Linux ``PR_SET_PDEATHSIG``) to be killed when the parent dies, so no orphan keeps
training a run that the next ``bench run`` will start again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM received."""


def exit_code(exc: KeyboardInterrupt) -> int:
    return 143 if isinstance(exc, Terminated) else 130


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def install():
    """Make SIGTERM raise ``Terminated`` (main thread only); returns the previous handler for :func:`restore`."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def restore(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Linux: have the kernel send SIGKILL to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        return
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before prctl ran
        os._exit(1)
