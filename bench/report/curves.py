"""Learning curves: per task, the dev metric against the step and the training loss against the step.

One line per report row (the mean over its seeds at each step) with a min-max band over the seeds. Data:
``metrics["dev_history"]`` (``[{"step", "metrics": {...}, "loss"}]``, every record has it) and
``metrics["loss_history"]`` (``[{"step", "loss", "lr"}]``, one entry every ``train.log_every`` steps: the mean
training loss over that window; newer records only). Records without ``loss_history`` still give their dev
curve; when no run of a task has it, that task's loss panel is left out and the caption says so. A dev curve
needs two evaluations: when every run evaluated dev once (the quick preset keeps the last step, as a plain PEFT
run does), the figure is the loss panels alone and the caption says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.figures import PAGE_IN, palette, save, styled


def history(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table of every ok run's curves: row, suite, task, seed, kind ("dev" | "loss"), step, value.

    ``dev`` values are the run's headline metric (x100) on dev at each evaluation; ``loss`` values the
    windowed training loss of ``loss_history``."""
    out = []
    for _, run in runs[runs["status"] == "ok"].iterrows():
        metrics = run["record"].get("metrics") or {}
        base = {"row": run["row"], "suite": run["suite"], "task": run["task"], "seed": run["seed"]}
        for entry in metrics.get("dev_history") or []:
            value = (entry.get("metrics") or {}).get(run["metric"])
            if value is not None:
                out.append({**base, "kind": "dev", "step": int(entry["step"]), "value": float(value)})
        for entry in metrics.get("loss_history") or []:
            if entry.get("loss") is not None:
                out.append(
                    {**base, "kind": "loss", "step": int(entry["step"]), "value": float(entry["loss"])}
                )
    columns = ["row", "suite", "task", "seed", "kind", "step", "value"]
    return pd.DataFrame(out, columns=columns)


def band(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (row, step): mean, min, max over seeds and the number of seeds (``curves``: one kind, one task)."""
    return (
        curves.groupby(["row", "step"])["value"]
        .agg(mean="mean", low="min", high="max", seeds="count")
        .reset_index()
        .sort_values(["row", "step"])
    )


@styled
def learning_curves(runs: pd.DataFrame, out_dir: Path) -> tuple[list[Path], str]:
    """``figures/curves.{png,pdf}`` (one line of panels per task) and its caption; nothing without dev history."""
    import matplotlib.pyplot as plt

    data = history(runs)
    if data.empty:
        return [], ""
    tasks = sorted(dict.fromkeys((s, t) for s, t in zip(data["suite"], data["task"], strict=True)))
    with_loss = {(s, t) for s, t in tasks if ((data["task"] == t) & (data["kind"] == "loss")).any()}
    dev_steps = data[data["kind"] == "dev"].groupby("task")["step"].nunique()
    one_evaluation = bool(with_loss) and bool((dev_steps <= 1).all())  # a dot, not a curve: leave it out
    columns = ([] if one_evaluation else ["dev"]) + (["loss"] if with_loss else [])
    ncols = len(columns)
    fig, axes = plt.subplots(
        len(tasks), ncols, figsize=(PAGE_IN if ncols == 2 else 3.4, 1.9 * len(tasks)), layout="constrained",
        squeeze=False,
    )  # fmt: skip
    colors = palette(sorted(data["row"].unique()))
    for (suite, task), line in zip(tasks, axes, strict=True):
        part = data[(data["suite"] == suite) & (data["task"] == task)]
        metric = runs.loc[runs["task"] == task, "metric"].dropna().iloc[0]
        titles = {"dev": f"{task}: dev {metric}", "loss": f"{task}: training loss"}
        kinds = [(kind, titles[kind]) for kind in columns]
        for ax, (kind, title) in zip(line, kinds, strict=True):
            curve = band(part[part["kind"] == kind])
            if curve.empty:
                fig.delaxes(ax)  # this task's runs have no loss_history: no empty panel
                continue
            for row, one in curve.groupby("row"):
                ax.plot(one["step"], one["mean"], "o-", ms=2, lw=1, color=colors[row], label=row)
                ax.fill_between(one["step"], one["low"], one["high"], color=colors[row], alpha=0.2, lw=0)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.set_ylabel(metric if kind == "dev" else "loss (window mean)")
    legend: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    labels = sorted(legend)
    handles = [legend[label] for label in labels]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False)
    missing = sorted({t for s, t in tasks if (s, t) not in with_loss})
    caption = (
        "Dev headline metric and training loss (mean over the window of train.log_every steps) against the "
        "optimiser step; lines: mean over seeds, bands: min-max over seeds."
    )
    if one_evaluation:
        caption = (
            "Training loss (mean over the window of train.log_every steps) against the optimiser step; lines: "
            "mean over seeds, bands: min-max over seeds. Every run evaluated dev once, at its last step: no dev "
            "curve."
        )
    elif not with_loss:
        caption += " No record has loss_history (older records): dev curves only."
    elif missing:
        caption += f" No loss_history for {', '.join(missing)}: dev curve only there."
    return save(fig, out_dir, "curves"), caption
