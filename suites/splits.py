"""The ``dept`` split protocol (docs/protocol.md#splits): test sets carved from public data, bit-exact with the lineage.

GLUE/SuperGLUE test labels are hidden, so:

* small tasks: full train; the validation set shuffled, its first ``n // 2`` rows are dev, the rest test;
* large tasks (QQP, QNLI, SST-2): train shuffled, its first 1,000 rows are dev, the rest train (in shuffled
  order); the full validation set is test;
* MNLI: full train; dev = validation_mismatched; test = validation_matched.

The shuffle is ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` on the CPU, indexing
rows in HF order, which the loaders keep equal to file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from suites.errors import TaskDataError
from suites.task import RowSet, Splits, Task

PROTOCOL = "dept"
LARGE_DEV_SIZE = 1000


def shuffled_indices(n: int, seed: int) -> list[int]:
    """The lineage's permutation of ``range(n)``: a seeded CPU generator and ``torch.randperm``."""
    import torch  # noqa: PLC0415 - torch only when splits are made; listing tasks or metrics stays light

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def load_splits(task: Task, data_dir: Path | str | None, seed: int = 42) -> Splits:
    """Train/dev/test Examples of ``task`` under the ``dept`` protocol; ``data_dir=None`` reads the Hub.

    ``info`` records the protocol, seed, family, source, sha256 of every local file, row counts before and
    after splitting, how each split was taken, and the loaders' notes (malformed rows, WSC/MRPC repairs).
    """
    import torch  # noqa: PLC0415 - torch only when splits are made; listing tasks or metrics stays light

    data_dir = Path(data_dir).resolve() if data_dir is not None else None
    reads: dict[str, RowSet] = {}

    def rows(split: str) -> list[dict[str, Any]]:
        reads[split] = task.read(split, data_dir)
        return reads[split].rows

    family = task.split_family
    if family == "small":
        train, validation = rows("train"), rows("validation")
        if not validation:
            raise TaskDataError(f"task {task.name!r}: the validation split is empty")
        order = shuffled_indices(len(validation), seed)
        half = len(validation) // 2
        dev, test = [validation[i] for i in order[:half]], [validation[i] for i in order[half:]]
        taken = {
            "train": "train, file order",
            "dev": f"validation[randperm({len(validation)})[:{half}]]",
            "test": f"validation[randperm({len(validation)})[{half}:]]",
        }
    elif family == "large":
        full, test = rows("train"), rows("validation")
        if len(full) <= LARGE_DEV_SIZE:
            raise TaskDataError(
                f"task {task.name!r}: train has {len(full)} rows, need more than {LARGE_DEV_SIZE}"
            )
        order = shuffled_indices(len(full), seed)
        dev, train = [full[i] for i in order[:LARGE_DEV_SIZE]], [full[i] for i in order[LARGE_DEV_SIZE:]]
        taken = {
            "train": f"train[randperm({len(full)})[{LARGE_DEV_SIZE}:]]",
            "dev": f"train[randperm({len(full)})[:{LARGE_DEV_SIZE}]]",
            "test": "validation, file order",
        }
    else:  # "mnli"
        train, dev, test = rows("train"), rows("validation_mismatched"), rows("validation_matched")
        taken = {"train": "train", "dev": "validation_mismatched", "test": "validation_matched"}

    info: dict[str, Any] = {
        "protocol": PROTOCOL,
        "task": task.name,
        "suite": task.suite,
        "seed": seed,
        "family": family,
        "source": "hub" if data_dir is None else str(data_dir),
        "torch": torch.__version__,
        "rows": {split: len(rowset.rows) for split, rowset in reads.items()},
        "sizes": {"train": len(train), "dev": len(dev), "test": len(test)},
        "taken": taken,
        "files": {},
        "malformed_rows": 0,
    }
    for rowset in reads.values():
        info["files"].update(rowset.files)
        info["malformed_rows"] += rowset.malformed
        _merge_notes(info, rowset.notes)
    return Splits(
        train=[task.format(r) for r in train],
        dev=[task.format(r) for r in dev],
        test=[task.format(r) for r in test],
        info=info,
    )


def _merge_notes(info: dict[str, Any], notes: dict[str, Any]) -> None:
    """Fold one split's loader notes into ``info``: counts add up, lists extend, the rest is set."""
    for key, value in notes.items():
        if isinstance(value, dict):
            _merge_notes(info.setdefault(key, {}), value)
        elif isinstance(value, list):
            info.setdefault(key, []).extend(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            info[key] = info.get(key, 0) + value
        else:
            info[key] = value


def check_local_files(task: Task, data_dir: Path | str) -> None:
    """Raise ``TaskDataError`` (one line: the path searched and the file expected) if a split's file is missing.

    The runner calls this before planning, so a missing file is one clear error instead of one failed run
    per method and seed.
    """
    for split in task.split_names:
        task._local_path(split, Path(data_dir).resolve())
