"""Write a whole report folder from the records; the same records always give the same files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import InputError
from bench.report import figures, html, published, stats, tables
from bench.report.load import Filters, load_runs

FIGURE_CAPTIONS = {
    "tradeoff_params": "Suite average (test, headline metric) against trainable parameters, log x (EPT Figure 1 layout).",
    "tradeoff_time": "Average over the table's tasks against training time per run and ms/step; marker size: peak memory.",
    "prompt_length": "Average score and ms/step against the number of prompt tokens (rows from --sweep ...num_tokens=...).",
    "per_task": "Headline test metric per task: bars are means over seeds, error bars one sd, dots the seeds.",
    "gates": "Learned gate weights over the projection subspaces per task (mean over seeds).",
}


@dataclass
class ReportOptions:
    results: Path
    out: Path
    filters: Filters = field(default_factory=Filters)
    vs: str | None = None  # None: the method "ept" (its one row, e.g. ept[placeholder-v0]) when present
    with_published: bool = False
    resamples: int = 1000
    bootstrap_seed: int = 0


def build_report(options: ReportOptions) -> dict[str, Path]:
    """Render every output into ``options.out`` (replaced wholesale); returns {name: path}."""
    runs = load_runs(options.results, options.filters)
    if runs.empty:
        raise InputError(
            f"no run records in {options.results} match the filters ({options.filters.describe()})"
        )
    vs = options.vs
    if vs is None and runs["row"].nunique() > 1 and runs.loc[runs["method"] == "ept", "row"].nunique() == 1:
        # The default comparison: EPT's one row, labelled by its variant (ept[placeholder-v0], the harness's
        # placeholder design, not the paper's EPT, which has no released code).
        vs = "ept"
    reference = stats.resolve_reference(runs, vs) if vs else None  # bad --vs: fail before touching out
    out = Path(options.out)
    if out.exists():
        shutil.rmtree(out)  # rebuilt from records alone: nothing stale survives
    out.mkdir(parents=True)
    written: dict[str, Path] = {}

    def write(name: str, text: str) -> None:
        path = out / name
        path.write_text(text)
        written[name] = path

    summary = tables.summarize(runs)
    comparison = None
    if reference:
        comparison = stats.compare(runs, reference, options.resamples, options.bootstrap_seed)
        tables.add_significance_marks(summary, comparison)
        write("comparison.md", tables.comparison_markdown(comparison, reference))
        write("comparison.tex", tables.comparison_latex(comparison, reference))
        write("comparison.csv", comparison.to_csv(index=False, lineterminator="\n", float_format="%.6f"))

    legend = (
        "Cells: headline test metric x100, mean ± sample std over seeds (number of seeds); bold: best in column "
        "(highest score, lowest cost)."
        + (f" †: paired bootstrap against {reference} gives p < 0.05 (comparison.md)." if reference else "")
        + f" Costs: trainable parameters (mean per run, without task head), training time per run (mean), median"
        f" ms/step (median over runs), peak memory ({summary.mem_kind}, max over runs). Records: {options.filters.describe()}."
    )
    write(
        "results.md",
        tables.to_markdown(summary)
        + "\n"
        + legend
        + "\n\n## Failed runs\n\n"
        + tables.failed_markdown(summary),
    )
    write("results.tex", tables.to_latex(summary, legend))
    write("results.csv", tables.to_csv(summary))
    write("failed.md", tables.failed_markdown(summary))
    write("failed.csv", summary.failed.to_csv(index=False, lineterminator="\n"))

    pub = published.load_published() if options.with_published else None
    if pub is not None:
        write("published.md", published.published_markdown(pub, summary.columns))

    fig_dir = out / "figures"
    made: list[str] = []
    for name, paths in (
        ("tradeoff_params", figures.tradeoff_params(summary, fig_dir, pub)),
        ("tradeoff_time", figures.tradeoff_time(summary, fig_dir)),
        ("prompt_length", figures.prompt_length(summary, runs, fig_dir)),
        ("per_task", figures.per_task(runs, fig_dir)),
        ("gates", figures.gates(runs, fig_dir)),
    ):
        for path in paths:
            written[f"figures/{path.name}"] = path
        if paths:
            made.append(name)

    sections = [
        ("Results", tables.to_html(summary) + html.note(legend)),
        ("Failed runs", html.markdown_table_html(tables.failed_markdown(summary))),
    ]
    if comparison is not None:
        sections.append(
            (
                f"Paired bootstrap against {reference}",
                tables.comparison_html(comparison, reference)
                + html.note(
                    f"{options.resamples} resamples, seed {options.bootstrap_seed}; over test examples when both "
                    "runs stored predictions, else over seeds; 95% percentile interval; two-sided p."
                ),
            )
        )
    if pub is not None:
        sections.append(
            (
                "Published numbers (T5-Base; not our runs)",
                html.markdown_table_html(published.published_markdown(pub, summary.columns))
                + html.note(
                    "From docs/reports.md#published-numbers; only rows marked verified were checked. There is no EPT row."
                ),
            )
        )
    body = "".join(html.figure(f"figures/{name}.png", FIGURE_CAPTIONS[name]) for name in made)
    if "gates" not in made:
        body += html.note("No run recorded gate weights (method_record.gate_weights_best): no gates figure.")
    sections.append(("Figures", body))
    write("index.html", html.page("ptbench report", sections))
    return written
