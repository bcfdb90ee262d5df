"""The HTML page's per-run drill-down: one collapsible ``<details>`` per run record.

Each holds the run's status and error, its headline numbers and costs, its curves as small tables (the dev
history and, when recorded, the windowed training loss ``loss_history``), the contention facts when recorded,
and the full spec as JSON, so a reader can trace every number of the tables back to one record.
"""

from __future__ import annotations

import html
import json

import pandas as pd

MAX_CURVE_ROWS = 40  # longer histories are thinned to every k-th entry (plus the last) in the drill-down


def _table(headers: list[str], rows: list[list[object]]) -> str:
    out = ['<table class="history"><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_text(c))}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _thin(entries: list[dict]) -> list[dict]:
    if len(entries) <= MAX_CURVE_ROWS:
        return entries
    step = -(-len(entries) // MAX_CURVE_ROWS)
    return entries[::step] + ([entries[-1]] if (len(entries) - 1) % step else [])


def run_details(run: pd.Series) -> str:
    """One run's ``<details>`` element (``run``: a row of ``load_runs``)."""
    rec = run["record"]
    metrics = rec.get("metrics") or {}
    status = f"{run['status']}" + (f": {run['error']}" if run["error"] else "")
    summary = f"{run['row']} · {run['suite']}/{run['task']} · seed {run['seed']} · {run['status']} · {run['run_id']}"
    facts = [
        ["status", status],
        [f"test {run['metric']}", run["score"]],
        [f"dev {run['metric']}", run["dev_score"]],
        ["best step", metrics.get("best_step")],
        ["steps", rec.get("steps")],
        ["trainable params", rec.get("trainable_params")],
        ["train time (s)", rec.get("train_time_s")],
        ["ms/step (median)", rec.get("step_time_ms_median")],
        [
            f"peak memory {run['mem_kind'] or ''} (MiB)",
            None if pd.isna(run["peak_mem_bytes"]) else run["peak_mem_bytes"] / 2**20,
        ],
        ["contention", _contention(rec.get("contention"))],
    ]
    body = [
        f'<details class="run" id="run-{html.escape(run["run_id"])}">',
        f"<summary>{html.escape(summary)}</summary>",
    ]
    body.append(_table(["field", "value"], facts))
    dev = _thin(metrics.get("dev_history") or [])
    if dev:
        names = sorted({k for e in dev for k in (e.get("metrics") or {})})
        rows = [
            [e.get("step"), *[(e.get("metrics") or {}).get(n) for n in names], e.get("loss")] for e in dev
        ]
        body.append("<p>dev history</p>" + _table(["step", *names, "training loss"], rows))
    else:
        body.append('<p class="note">no dev history recorded</p>')
    loss = _thin(metrics.get("loss_history") or [])
    if loss:
        rows = [[e.get("step"), e.get("loss"), e.get("lr")] for e in loss]
        body.append("<p>training loss (window mean)</p>" + _table(["step", "loss", "lr"], rows))
    else:
        body.append('<p class="note">no loss_history in this record</p>')
    if rec.get("traceback"):
        body.append(f"<pre>{html.escape(str(rec['traceback']))}</pre>")
    body.append(f"<pre>{html.escape(json.dumps(rec.get('spec'), indent=1, sort_keys=True))}</pre>")
    body.append("</details>")
    return "\n".join(body)


def _contention(info: object) -> str:
    if not isinstance(info, dict):
        return "not recorded (not known)"
    if not info.get("contended"):
        return "not contended"
    return f"contended: {info.get('why') or 'no reason given'}"


def drilldown(runs: pd.DataFrame) -> str:
    """Every run's ``<details>``, in the table's order (row, suite, task, seed)."""
    return "\n".join(run_details(run) for _, run in runs.iterrows())
