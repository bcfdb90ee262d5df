"""The searching side of a trial's dev evaluations: report each to Optuna, tell the run to stop when pruned.

The searching process runs each trial as a normal run (``bench.grid.runner.run_locked``) with an evaluation hook:
the worker prints each periodic dev evaluation as a protocol line and waits for the answer (``bench/protocol.py``,
``--report-evaluations``); this hook reports the selection metric to the trial (``trial.report``) and answers
"stop" when the pruner says so, so the run ends there with record status ``pruned``. The worker never opens the
study, and the storage address never reaches the run's process.
"""

from __future__ import annotations

from typing import Any

from bench.grid.runner import EvaluationHook


def trial_reporter(trial: Any) -> EvaluationHook:
    """The ``on_evaluation`` hook of ``trial``'s run (an ``optuna.Trial`` of a study with its pruner)."""

    def on_evaluation(event: dict[str, Any]) -> str | None:
        step, metric = event["step"], event["selection_metric"]
        value = event["metrics"][metric]
        trial.report(value, step)
        if trial.should_prune():
            return f"pruned at step {step} (dev {metric} {value:.2f})"
        return None

    return on_evaluation
