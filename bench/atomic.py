"""The one atomic file write: a temporary file in the target's folder, fsync, ``os.replace``.

Readers see either the old file or the complete new one, so a killed run never leaves half a record, artifact
or checkpoint. ``atomic_dir`` does the same for a folder (a converted model).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` (``mode`` "w" or "wb"); on a clean exit it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary sibling folder to fill; on a clean exit it is renamed to ``path``.

    A folder cannot replace a non-empty one, so when two processes fill the same ``path`` at once (two grid
    workers converting one model on first use) the first rename wins and the later writer's copy is dropped:
    both wrote the same thing, and readers only ever see one complete folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another writer finished first: keep its folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
