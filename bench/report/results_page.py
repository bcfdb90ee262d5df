"""``docs/results.md``, the CPU results page, as text: its prose around the tables of ``page_sections``, from
the records ``scripts/results_page.py`` selects (the grids' own runs) and the report it made of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bench.report import provenance
from bench.report.load import by_cell
from bench.report.page_sections import (
    METHODS,
    PLAIN_METHODS,
    TASKS,
    UNLISTED,
    Cells,
    TrainTargets,
    decoder_section,
    earlier_section,
    incomplete,
    minilm_section,
    plain_section,
    verdict,
)


def render(
    records: list[dict[str, Any]],
    decoder: list[dict[str, Any]],
    earlier: Cells,
    plain: Cells,
    train_targets: TrainTargets,
    earlier_results: str,
    rel: str,
    unrun: Sequence[str] = (),
) -> str:
    """The page's Markdown. ``records``: the MiniLM grid's; ``decoder``: the SmolLM2 grid's; ``earlier``: the
    earlier recipe's records by cell; ``plain``: the plain-PEFT rows by cell; ``train_targets``: a task's
    training targets (the majority class); ``earlier_results``: the earlier records' folder, as the page names
    it; ``rel``: the report folder relative to the page; ``unrun``: registered methods the page's grids leave
    out (the script reads them from the registry, which ``bench report`` may not import)."""
    cells = by_cell(records)
    plain_rows = [r for rows in plain.values() for r in rows]
    today = dt.date.today().isoformat()
    busy, wall = provenance.busy_s, provenance.wall_s
    lines = [
        "# Results on a CPU",
        "",
        f"Made by `python scripts/results_page.py` on {today}, on a 2-core CPU machine without a GPU, from "
        f"{len(records)} MiniLM records, {len(decoder)} SmolLM2 records and {len(plain_rows)} plain-PEFT runs. "
        f"Wall time: MiniLM {busy(records) / 60:.0f} min with at least one run going (gaps between runs "
        f"left out; {wall(records) / 60:.0f} min summed over runs, which ran {provenance.workers(records)} at a time), "
        f"SmolLM2 {busy(decoder) / 60:.0f} min ({wall(decoder) / 60:.0f} min summed), plain PEFT "
        f"{sum(r['train_time_s'] for r in plain_rows) / 60:.0f} min of training. Libraries (the records' "
        f"`env.packages`): {provenance.packages(records + decoder)} (`results/constraints.txt`); a prompt-tuning run on "
        "another machine's CPU can end on other predictions ([a run depends on the machine]"
        "(quick-recipe.md#a-run-depends-on-the-machine)).",
        "",
        "Quick presets (`--preset quick`: MiniLM, 1,000 training rows, 200 steps of 16; `quick-decoder`: SmolLM2, "
        "100 steps of 8) as they ship, nothing overridden; seeds 42, 43, 44; test scores on the protocol's test "
        "rows (at most 500). The MiniLM recipe is PEFT's own (a constant rate without warm-up, the checkpoint's "
        "dropout, AdamW's decay 0.01 on everything trained, the prompt in front of `[CLS]`, the last step kept), "
        "so ptbench's PT and LoRA are the plain PEFT run; [the quick recipe](quick-recipe.md) says why, and what "
        "the harness's earlier recipe scored instead. SmolLM2 keeps its best dev checkpoint. Intervals are 95% "
        "hierarchical bootstraps (seeds and test rows resampled together, paired over rows), so seed-to-seed "
        "spread counts.",
        "",
        "## What this page cannot show",
        "",
        "- These are small backbones (MiniLM, 22.7M parameters; SmolLM2, 135M) on CPU budgets of a few hundred "
        "steps: the ranking of methods here need not hold on T5-Base at the papers' 30,000+ steps.",
        "- No T5-Base run is on this page (the machine that made it had no T5 weights offline), so nothing here "
        "is comparable to the papers' tables.",
        "- Three seeds give wide intervals; a difference inside them is not a finding.",
        "- STS-B is not among the quick examples: in 200 steps on MiniLM neither ptbench nor a plain PEFT run "
        "reaches a Pearson clearly above 0 ([the quick recipe](quick-recipe.md#sts-b)); MRPC is shown but left "
        "out of the verdict on the majority class (its table below says why); RTE is not run at this budget.",
        *(
            [
                "- Registered methods not run on this page: "
                + ", ".join(f"`{m}`" for m in unrun)
                + " (`bench run --preset quick --methods NAME` runs one; their pages in [Methods](methods/index.md) "
                "give their parameter counts)."
            ]
            if unrun
            else []
        ),
        "",
        "## MiniLM: every method against the trivial baseline",
        "",
    ]
    failing = minilm_section(cells, lines, train_targets)
    lines += [
        verdict(
            incomplete(cells, METHODS, TASKS),
            failing,
            "Every listed method beats the baseline on every listed task ("
            + ", ".join(t for _, t in TASKS if t not in UNLISTED)
            + "; mean over seeds above the majority class).",
            "Not above the baseline: ",
        ),
        "",
        "## ptbench against a plain PEFT run of the same budget",
        "",
        "The plain run (`scripts/plain_peft.py`): the same rows, steps, batch, prompt length and learning rate, "
        "PEFT's defaults (random prompt before `[CLS]`, LoRA r=8 α=8 on q/v), one rate for everything, constant "
        "rate, no warm-up, last step kept, raw sentences as BERT pairs. "
        + provenance.machines(records, plain_rows),
        "",
    ]
    behind = plain_section(cells, plain, lines)
    lines += [
        verdict(
            incomplete(cells, PLAIN_METHODS, TASKS) + incomplete(plain, PLAIN_METHODS, TASKS, "plain "),
            behind,
            "ptbench's mean is at least the plain run's on every task.",
            "ptbench's mean is below the plain run's: ",
        )
        + (
            " With the quick recipe ptbench's PT and LoRA train bit for bit as the plain run on one machine "
            "([the quick recipe](quick-recipe.md#ptbench-with-pefts-recipe-is-the-plain-run)); where a seed's "
            "predictions differ, the two sides ran on different machines or library versions "
            "([a run depends on the machine](quick-recipe.md#a-run-depends-on-the-machine))."
            if behind
            else ""
        ),
        "",
    ]
    if earlier:
        lines += [
            "## The harness's earlier recipe",
            "",
            "From 2026-12-02 to 2026-12-07 the quick preset trained with the harness's own recipe (linear decay after 20 "
            "warm-up steps, the backbone's dropout off, the best of two dev evaluations kept, PT's prompt from "
            f"vocabulary rows after `[CLS]`); its records, made on earlier machines, are in `{earlier_results}`. "
            "The same runs with the shipped recipe, paired over test rows "
            "([why the recipe changed](quick-recipe.md#what-the-quick-preset-ships)):",
            "",
        ]
        earlier_section(cells, earlier, lines)
    lines += ["## SmolLM2-135M (decoder, label scoring): PT, DePT, EPT on SST-2", ""]
    decoder_section(by_cell(decoder), lines)
    if records:
        lines += [
            "## Figures and the significance table",
            "",
            f"![trade-off]({rel}/figures/tradeoff_params.png)",
            "",
            "Average test score against trainable parameters (log axis), mean over seeds. It shows where each "
            "method sits in size and score on this backbone and budget; it cannot say which method is better on "
            "T5-Base, and differences inside the intervals above are not findings.",
            "",
            f"![learning curves]({rel}/figures/curves.png)",
            "",
            "Training loss against step, one line per method, mean and band over the seeds: whether a method's "
            "loss was still falling when its 200 steps ended (every run evaluated dev once, at its last step, so "
            "there is no dev curve).",
            "",
            f"The full report of the MiniLM records (every figure, learning curves, tables): `{rel}/`.",
            "",
        ]
    return "\n".join(lines)
