"""``bench perf --eval``'s label-scoring table: one-pass scoring against the per-label loop, greedy generation
and one plain forward, for the label sets of SST-2 (2), CB (3) and STS-B (26) (docs/performance.md#label-scoring).

For each label set, on one synthetic batch (every source position real) with ``PERF.eval_method``'s prompt
attached, four things are timed, interleaved step by step so that a busy machine slows all alike:

* ``score``: ``predict(..., "score")``, the one-pass scoring (``bench/backbones/*_scoring.py``);
* ``per-label``: the former loop (``reference_scores``: one forward per label; T5: encoder once, one decoder
  run per label), with the argmax;
* ``generate``: greedy generation capped at the longest label's tokens plus EOS (what a trained model writes);
* ``forward``: one plain forward of the batch with its gold targets (``loss``), the floor of any evaluation.

The targets: decoder scoring at least 2x faster than the per-label loop on CB and 8x on STS-B; T5 scoring at
most as slow as greedy generation. The median of ``--steps`` steps after ``--warmup``, in this process.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

TASKS = (("sst2", "glue"), ("cb", "superglue"), ("stsb", "glue"))
# (family, task) -> (measured key, "min" | "max", bound): speed-up >= bound, or ratio <= bound.
TARGETS = {
    ("decoder", "cb"): ("speedup", "min", 2.0),
    ("decoder", "stsb"): ("speedup", "min", 8.0),
    **{("seq2seq", task): ("score_vs_generate", "max", 1.0) for task, _ in TASKS},
}
MODES = ("score", "per-label", "generate", "forward")


def _calls(backbone, batch: dict, labels: list[str]) -> dict[str, Any]:
    """The four timed calls of one label set (``MODES``)."""
    from bench.backbones import decoder_scoring, seq2seq_scoring

    def per_label():
        if backbone.family == "decoder":
            scores = decoder_scoring.reference_scores(backbone, batch, labels)
        else:
            enc, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
            scores = seq2seq_scoring.reference_scores(backbone, enc, mask, labels)
        return [labels[i] for i in scores.argmax(1).tolist()]

    return {
        "score": lambda: backbone.predict(batch, "score", labels),
        "per-label": per_label,
        "generate": lambda: backbone.predict(batch, "generate", labels),
        "forward": lambda: backbone.loss(batch),
    }


def scoring_rows(
    model: str, batch: int, seq_len: int, steps: int, warmup: int, overrides: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per label set: the four medians (ms), the ratios, the target and whether it is met.

    An encoder has a class head and scores nothing: no rows."""
    import torch

    from bench.backbones.models import load_config, model_family
    from bench.measurement.measure import StepTimes, sync
    from bench.perf.cases import PerfCase
    from bench.perf.defaults import PERF
    from bench.perf.loops import build, examples
    from suites import get_task

    family = model_family(load_config(model))
    if family == "encoder":
        return []
    case = PerfCase("scoring", PERF.eval_method, "score", model, batch, seq_len, steps, warmup, overrides)
    backbone, _ = build(case)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone.to(device)
    backbone.train(False)
    rows = []
    for task, suite in TASKS:
        labels = get_task(task, suite).label_strings()
        backbone.max_new_tokens = max(len(backbone._target_ids(t)) for t in labels)
        data = [type(e)(e.source, labels[i % len(labels)], 0) for i, e in enumerate(examples(batch, seq_len))]
        encoded = backbone.encode(data, labels).batch(slice(None))
        inputs = {k: v.to(device) for k, v in encoded.items()}
        calls = _calls(backbone, inputs, labels)
        times = {mode: StepTimes(warmup) for mode in MODES}
        with torch.inference_mode():
            for _ in range(warmup + steps):
                for mode in MODES:
                    sync(device)
                    start = time.perf_counter()
                    calls[mode]()
                    sync(device)
                    times[mode].add(time.perf_counter() - start)
        ms = {mode: times[mode].median_ms() for mode in MODES}
        row = {
            "family": family,
            "model": model,
            "method": PERF.eval_method,
            "task": task,
            "labels": len(labels),
            "max_new_tokens": backbone.max_new_tokens,
            "device": str(device),
            **{f"{mode.replace('-', '_')}_ms": value for mode, value in ms.items()},
            "speedup": ms["per-label"] / ms["score"],
            "score_vs_generate": ms["score"] / ms["generate"],
            "score_vs_forward": ms["score"] / ms["forward"],
        }
        rows.append({**row, **_target(row)})
    return rows


def _target(row: dict[str, Any]) -> dict[str, Any]:
    key, kind, bound = TARGETS.get((row["family"], row["task"]), (None, None, None))
    if key is None:
        return {"target": None, "met": None}
    met = row[key] >= bound if kind == "min" else row[key] <= bound
    text = f"speed-up >= {bound:g}x" if kind == "min" else f"score / generate <= {bound:g}"
    return {"target": text, "met": met}


def scoring_table(rows: list[dict[str, Any]]) -> Table:
    """The rows as printed by ``bench perf --eval``."""
    first = rows[0] if rows else {"family": "-", "model": "-", "method": "-"}
    table = Table(
        title=f"label scoring, {first['family']} ({first['model']}, {first['method']}'s prompt), ms per batch",
        header_style="bold",
    )
    columns = ("task", "labels", "score", "per-label", "speed-up", "generate", "score/gen", "forward")
    for col in (*columns, "score/fwd", "target", "met"):
        table.add_column(col, justify="left" if col in ("task", "target") else "right")
    for r in rows:
        table.add_row(
            r["task"],
            str(r["labels"]),
            f"{r['score_ms']:.1f}",
            f"{r['per_label_ms']:.1f}",
            f"{r['speedup']:.2f}x",
            f"{r['generate_ms']:.1f}",
            f"{r['score_vs_generate']:.2f}",
            f"{r['forward_ms']:.1f}",
            f"{r['score_vs_forward']:.2f}",
            r["target"] or "-",
            "-" if r["met"] is None else ("yes" if r["met"] else "NO"),
        )
    return table
