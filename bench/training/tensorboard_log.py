"""``--log-dir``: live TensorBoard event files for each run, written by its worker process.

Each run writes under ``<log-dir>/<name>/`` (:func:`run_log_name`: the record's file stem,
``<method>_<task>_seed<seed>_<run_id>``; a ``bench tune`` trial ``<study>/trial<N>_<stem>``) with
``torch.utils.tensorboard.SummaryWriter``. Scalars:

==================  ===========================================================================
tag                 value (x: the global optimiser step)
==================  ===========================================================================
train/loss          mean training loss of each ``train.log_every`` window (as ``loss_history``)
train/lr/<group>    learning rate of every optimiser group (its name: the method's, ``head``)
time/step_ms        mean step time of the window in ms (the record's step timer)
dev/<metric>        each periodic dev evaluation (×100)
test/<metric>       once at the end, at the best step (the state that was tested)
==================  ===========================================================================

The folder is not part of the spec: ``--log-dir`` never changes a run id. The writer is called only at window
ends and evaluations (``bench/training/curves.py``) and its file writes happen in TensorBoard's own writer thread,
so the step timer never includes them. A resumed run (``--checkpoint-every``) opens the writer with
``purge_step`` at its first step, so TensorBoard hides what the killed attempt wrote after its checkpoint; a
run started again from step 1 replaces its earlier curve the same way.
"""

from __future__ import annotations

from pathlib import Path


class TensorBoardLogger:
    """A ``bench.training.curves.Logger`` that writes TensorBoard scalars to ``folder`` (opened at ``start``)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._writer = None

    def start(self, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - tensorboard loads only with --log-dir

        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.folder), purge_step=first_step)

    def log_train(self, step: int, loss: float, lrs: dict[str, float], step_ms: float) -> None:
        self._writer.add_scalar("train/loss", loss, step)
        for group, lr in lrs.items():
            self._writer.add_scalar(f"train/lr/{group}", lr, step)
        self._writer.add_scalar("time/step_ms", step_ms, step)

    def log_eval(self, step: int, metrics: dict[str, float], split: str = "dev") -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(f"{split}/{name}", value, step)
        self._writer.flush()  # evaluations are rare: make them visible at once

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
