"""Write a whole report folder from the records; the same records always give the same files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import InputError
from bench.report import comparison as comparisons
from bench.report import curves, drilldown, figures, html, pscp, published, stats, table, tables, tradeoff
from bench.report.load import Filters, load_runs

FIGURE_CAPTIONS = {  # figures whose caption does not depend on the records (the others write their own)
    "prompt_length": "Average score and ms/step against the number of prompt tokens (rows from --sweep ...num_tokens=...).",
    "per_task": "Headline test metric per task: bars are means over seeds, error bars one sd, dots the seeds.",
    "gates": "Learned gate weights over the projection subspaces per task (mean over seeds).",
}


MISSING = {  # what the page says when a figure has nothing to draw
    "tradeoff_params": "No row has every task of a suite with a parameter count: no parameter trade-off figure.",
    "tradeoff_time": "No row has every task of a suite with a training time (outside contention): no time figure.",
    "tradeoff_memory": "No row has every task of a suite with a peak memory (outside contention): no memory figure.",
    "curves": "No run recorded a dev history: no learning curves.",
    "prompt_length": "No method has rows with two or more prompt lengths (bench run --sweep pt.num_tokens=...): "
    "no prompt-length figure.",
    "per_task": "No successful run: no per-task figure.",
    "gates": "No run recorded gate weights (method_record.gate_weights_best): no gates figure.",
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
    pscp_betas: pscp.Betas = field(default_factory=pscp.Betas)
    include_contended: bool = False  # time/memory figures keep runs measured under contention
    with_multitask: bool = False  # the published multi-task "(m)" rows too (needs with_published)


@dataclass
class _Folder:
    """The report folder and every file written into it."""

    out: Path
    written: dict[str, Path] = field(default_factory=dict)

    def write(self, name: str, text: str) -> None:
        path = self.out / name
        path.write_text(text)
        self.written[name] = path


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
    folder = _Folder(out)

    summary = tables.summarize(runs)
    comparison = None
    if reference:
        comparison = stats.compare(runs, reference, options.resamples, options.bootstrap_seed)
        comparisons.add_significance_marks(summary, comparison)
        folder.write("comparison.md", comparisons.comparison_markdown(comparison, reference))
        folder.write("comparison.tex", comparisons.comparison_latex(comparison, reference))
        folder.write(
            "comparison.csv", comparison.to_csv(index=False, lineterminator="\n", float_format="%.6f")
        )
    legend = _legend(summary, reference, comparison, options.filters)
    _write_tables(folder, summary, legend)

    pub = published.load_published(options.with_multitask) if options.with_published else None
    if pub is not None:
        folder.write("published.md", published.published_markdown(pub, summary.columns))
    cost = pscp.pscp_frame(summary, runs, options.pscp_betas)
    folder.write("pscp.md", pscp.to_markdown(cost, options.pscp_betas))
    folder.write("pscp.tex", pscp.to_latex(cost, options.pscp_betas))
    folder.write("pscp.csv", cost.to_csv(index=False, lineterminator="\n", float_format="%.6g"))

    made = _draw_figures(folder, summary, runs, pub, options.include_contended)
    sections = [
        ("Results", tables.to_html(summary) + html.note(legend)),
        ("Failed runs", _html_or_note(tables.failed_table(summary), tables.NO_FAILED)),
    ]
    if comparison is not None:
        sections.append(
            (
                f"Paired bootstrap against {reference}",
                comparisons.comparison_html(comparison, reference)
                + html.note(
                    f"Hierarchical bootstrap ({options.resamples} resamples, seed {options.bootstrap_seed}) over "
                    "seeds and then test examples when every run stored predictions, else Welch's t-test over "
                    "seeds; 95% interval; two-sided p. Fewer than 2 seeds per side: no mark."
                ),
            )
        )
    if pub is not None:
        sections.append(
            (
                "Published numbers (T5-Base; not our runs)",
                table.to_html(published.published_table(pub, summary.columns))
                + html.note(
                    "From docs/reports.md#published-numbers: each row names its source; only rows marked verified "
                    "were read in it. There is no EPT row."
                ),
            )
        )
    sections += [
        (
            "Cost-aware score (PSCP)",
            table.to_html(pscp.pscp_table(cost)) + html.note(pscp.caption(options.pscp_betas)),
        ),
        ("Figures", _figures_html(made)),
        (
            "Runs",
            html.note("One entry per run record; open one for its details.") + drilldown.drilldown(runs),
        ),
    ]
    folder.write("index.html", html.page("ptbench report", sections))
    return folder.written


def _legend(summary: tables.Summary, reference: str | None, comparison, filters: Filters) -> str:
    """The results table's legend: what a cell holds, the marks (†, ‡) and the cost columns."""
    marks = ""
    if reference:
        marks += f" †: p < 0.05 against {reference} in a test that counts the seeds (comparison.md)."
        marks += comparisons.unmarked_note(comparison)
    if summary.contended:
        marks += (
            f" ‡: time and memory include runs measured under contention ({sum(summary.contended.values())} "
            "run(s) in all; record key contention; records without it count as not known)."
        )
    return (
        "Cells: headline test metric x100, mean ± sample std over seeds (number of seeds); bold: best in column "
        "(highest score, lowest cost)."
        + marks
        + f" Costs: trainable parameters (mean per run, without task head), training time per run (mean), median"
        f" ms/step (median over runs), peak memory ({summary.mem_kind}, max over runs). Records: {filters.describe()}."
    )


def _write_tables(folder: _Folder, summary: tables.Summary, legend: str) -> None:
    """results.{md,tex,csv} and failed.{md,csv}."""
    failed = tables.failed_markdown(summary)
    folder.write(
        "results.md", tables.to_markdown(summary) + "\n" + legend + "\n\n## Failed runs\n\n" + failed
    )
    folder.write("results.tex", tables.to_latex(summary, legend))
    folder.write("results.csv", tables.to_csv(summary))
    folder.write("failed.md", failed)
    folder.write("failed.csv", summary.failed.to_csv(index=False, lineterminator="\n"))


def _draw_figures(folder: _Folder, summary, runs, pub, include_contended: bool) -> dict[str, str]:
    """Every figure that has something to draw, into ``figures/``; returns {figure name: caption}."""
    fig_dir = folder.out / "figures"
    drawn = [
        (name, *tradeoff.tradeoff_figure(name, summary, runs, fig_dir, pub, include_contended))
        for name in tradeoff.COSTS
    ]
    drawn.append(("curves", *curves.learning_curves(runs, fig_dir)))
    for name, paths in (
        ("prompt_length", figures.prompt_length(summary, runs, fig_dir)),
        ("per_task", figures.per_task(runs, fig_dir)),
        ("gates", figures.gates(runs, fig_dir)),
    ):
        drawn.append((name, paths, FIGURE_CAPTIONS[name]))
    made: dict[str, str] = {}
    for name, paths, caption in drawn:
        for path in paths:
            folder.written[f"figures/{path.name}"] = path
        if paths:
            made[name] = caption
    return made


def _figures_html(made: dict[str, str]) -> str:
    """The drawn figures with their captions, then a note for each figure that had nothing to draw."""
    body = "".join(html.figure(f"figures/{name}.png", caption) for name, caption in made.items())
    return body + "".join(html.note(why) for name, why in MISSING.items() if name not in made)


def _html_or_note(data: table.Table | None, empty: str) -> str:
    return table.to_html(data) if data is not None else html.note(empty)
