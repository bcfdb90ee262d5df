"""The tables ``bench perf`` prints: one row per (method, variant) timed, and the target ratios. Shared by the
synthetic mode (``bench/cli/perf.py``) and the real-job mode (``bench/perf/task_cli.py``)."""

from __future__ import annotations

from rich.table import Table


def _tflops(row: dict) -> str:
    """Achieved TFLOP/s, and the share of the GPU's datasheet peak when it is known."""
    if row.get("tflops_per_s") is None:
        return "-"
    peak = row.get("device_peak_tflops")
    share = f" ({100 * row['tflops_per_s'] / peak:.0f}% of {peak:g})" if peak else ""
    return f"{row['tflops_per_s']:.3f}{share}"


def rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    columns = (
        "method",
        "variant",
        "ms/step",
        "p90",
        "tokens/s",
        "TFLOP/s",
        "peak mem MB",
        "trainable",
        "note",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "variant", "note") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["label"], row["variant"], "-", "-", "-", "-", "-", "-", row["error"][:80])
            continue
        table.add_row(
            row["label"],
            row["variant"],
            f"{row['ms_per_step']:.1f}",
            f"{row['ms_per_step_p90']:.1f}",
            f"{row['tokens_per_s']:,.0f}",
            _tflops(row),
            f"{row['peak_mem_over_baseline_bytes'] / 2**20:.1f}",
            f"{row['trainable_params']:,}",
            row["memory_kind"],
        )
    return table


def targets_table(targets: list[dict]) -> Table:
    table = Table(title="targets (ratio <= target)", header_style="bold")
    for col in ("ratio", "measured", "target", "met"):
        table.add_column(col)
    for r in targets:
        table.add_row(r["ratio"], f"{r['value']:.3f}", f"{r['target']:.3f}", "yes" if r["met"] else "NO")
    return table
