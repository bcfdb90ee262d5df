"""What a search leaves behind: per-study counts and best trial, the trials table, plots and summary files.

Read-only over a study (``bench tune`` writes them after searching; ``bench tune show`` prints the table).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any


def _states(study, names) -> int:
    import optuna

    wanted = tuple(getattr(optuna.trial.TrialState, n) for n in names)
    return len(study.get_trials(deepcopy=False, states=wanted))


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summarise(study) -> dict[str, Any]:
    """Counts per state and the best trial of a study (what the summary table and files show)."""
    counts = {n.lower(): _states(study, (n,)) for n in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    best = None
    if counts["complete"]:
        trial = study.best_trial
        best = {
            "number": trial.number,
            "value": trial.value,
            "params": trial.params,
            "run_id": trial.user_attrs.get("run_id"),
            "metric": trial.user_attrs.get("metric"),
        }
    return {"study": study.study_name, **study.user_attrs, "trials": counts, "best": best}


def trials_table(study, top: int | None = None):
    """Rich table of a study's trials, best first (complete), then pruned and failed."""
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    order = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "FAIL": 3, "WAITING": 4}
    trials = sorted(trials, key=lambda t: (order[t.state.name], -(t.value or -math.inf), t.number))
    if top:
        trials = trials[:top]
    attrs = study.user_attrs
    table = Table(
        title=f"{study.study_name}: {attrs.get('method')} on {attrs.get('suite')}/{attrs.get('task')} "
        f"({attrs.get('preset')}), dev objective",
        header_style="bold",
    )
    for col in ("trial", "state", "dev", "last reported", "params", "run_id"):
        table.add_column(col, justify="right" if col in ("trial", "dev") else "left")
    for t in trials:
        last = max(t.intermediate_values) if t.intermediate_values else None
        table.add_row(
            str(t.number),
            t.state.name.lower(),
            f"{t.value:.2f}" if t.value is not None else "-",
            f"step {last}: {t.intermediate_values[last]:.2f}" if last is not None else "-",
            ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()),
            t.user_attrs.get("run_id", "-"),
        )
    return table


def write_plots(study, folder: Path) -> list[Path]:
    """Optuna's matplotlib plots: optimisation history, intermediate values (pruning), parameter importances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    plots = {
        "history": vis.plot_optimization_history,
        "intermediate": vis.plot_intermediate_values,
        "importances": vis.plot_param_importances,
    }
    for name, plot in plots.items():
        try:
            axes = plot(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances need >= 2 complete trials
            (folder / f"{name}.txt").write_text(f"not plotted: {exc}\n")
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written


def summary_markdown(summaries: list[dict[str, Any]]) -> str:
    """One row per study: trials by state and the best dev score with its settings."""
    lines = [
        "| study | method | task | preset | trials | complete | pruned | failed | best dev | best trial | best params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        c, best = s["trials"], s["best"]
        value = f"{best['value']:.2f}" if best else "-"
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items()) if best else "-"
        lines.append(
            f"| {s['study']} | {s.get('method')} | {s.get('task')} | {s.get('preset')} | "
            f"{c['complete'] + c['pruned'] + c['fail'] + c['running']} | {c['complete']} | {c['pruned']} | "
            f"{c['fail']} | {value} | {best['number'] if best else '-'} | {params} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(summaries: list[dict[str, Any]], folder: Path) -> list[Path]:
    """``summary.md`` and ``summary.csv`` in ``folder``."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "summary.md"
    md.write_text(
        "Objective: the task's dev selection metric (maximised); the test split is never evaluated during a "
        "search. Every study got the same number of trials.\n\n" + summary_markdown(summaries)
    )
    rows = []
    for s in summaries:
        best = s["best"] or {}
        rows.append(
            {
                "study": s["study"],
                "method": s.get("method"),
                "task": s.get("task"),
                "preset": s.get("preset"),
                **{f"trials_{k}": v for k, v in s["trials"].items()},
                "best_dev": best.get("value"),
                "best_trial": best.get("number"),
                "best_run_id": best.get("run_id"),
                **{f"param.{k}": v for k, v in (best.get("params") or {}).items()},
            }
        )
    csv = folder / "summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [md, csv]
