"""One lock per run id, so two ``bench run`` processes on the same results folder never run a run twice.

The lock is ``fcntl.flock`` on ``<results>/.locks/<run_id>.lock``: the kernel drops it when the holding
process dies, however it dies (SIGKILL included), so a killed ``bench run`` never blocks the next one. The
file holds the holder's pid for the message; lock files are left in place (deleting a flock'ed file races
with a process about to lock it) and are tiny.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path


class RunLock:
    """A held lock; release with :meth:`release` or by leaving the ``with`` block."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / ".locks" / f"{run_id}.lock"


def try_lock(out_dir: Path, run_id: str) -> RunLock | None:
    """Take the run's lock without waiting; None if another live process holds it."""
    path = lock_path(out_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return RunLock(path, fd)


def holder(out_dir: Path, run_id: str) -> str:
    """The pid written by the lock's holder, for messages ("?" if unknown)."""
    try:
        return lock_path(out_dir, run_id).read_text().strip() or "?"
    except OSError:
        return "?"


_TEMP_RUN_ID = re.compile(r"(?:_|^\.)([0-9a-f]{16})\.(?:json|pt)\.")


def remove_stale_temp_files(out_dir: Path) -> list[Path]:
    """Delete temporary files of atomic writes left by killed processes; return what was removed.

    A temporary file (``.<name>.<random>.tmp``) belongs to the run id in its name; it is stale when no live
    process holds that run's lock. Records are never temporary files, so nothing finished is touched.
    """
    removed = []
    out_dir = Path(out_dir)
    for tmp in [*out_dir.glob(".*.tmp"), *(out_dir / "checkpoints").glob(".*.tmp")]:
        match = _TEMP_RUN_ID.search(tmp.name)
        if not match:
            continue
        lock = try_lock(out_dir, match.group(1))
        if lock is None:
            continue  # a live run is writing it
        with lock:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
