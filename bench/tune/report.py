"""The in-run side of a search trial: report each dev evaluation to Optuna, stop when the pruner says so.

The searching process runs each trial as a normal run subprocess (``bench.grid.runner.run_one``) and passes the
trial's address in the environment variable ``PTBENCH_TUNE_TRIAL`` (JSON: storage, study, trial_id, pruner),
outside the hashed spec (a storage URL may carry a password and must not land in records). The run opens the
study itself, which the journal file and RDB storages allow from any process, so pruning needs no channel back
to the parent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from bench.training.trainer import StopTraining

ENV = "PTBENCH_TUNE_TRIAL"


def trial_env(storage: str, study: str, trial_id: int, pruner: str) -> dict[str, str]:
    return {ENV: json.dumps({"storage": storage, "study": study, "trial_id": trial_id, "pruner": pruner})}


def trial_reporter(metric: str) -> Callable[[int, dict[str, float]], None] | None:
    """An ``on_evaluate`` hook for the trainer, or None when this run was not started by a search."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    import optuna

    from bench.tune.storage import build_pruner, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    address = json.loads(raw)
    study = optuna.load_study(
        study_name=address["study"],
        storage=open_storage(address["storage"]),
        pruner=build_pruner(address["pruner"]),
    )
    trial = optuna.trial.Trial(study, address["trial_id"])

    def on_evaluate(step: int, metrics: dict[str, float]) -> None:
        trial.report(metrics[metric], step)
        if trial.should_prune():
            raise StopTraining(f"pruned at step {step} (dev {metric} {metrics[metric]:.2f})")

    return on_evaluate
