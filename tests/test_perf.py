"""``bench perf`` times each method in the harness loop, in a bare loop and through PEFT, in separate
processes, and reports the Performance issue's ratios (printed, never asserted: timings are not unit tests)."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.perf import plan_cases, ratios


@pytest.mark.slow
def test_perf_table_and_ratios_on_a_tiny_model(tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "perf.json"
    args = ["perf", "--model", str(tiny_bert_dir), "--methods", "pt,dept", "--batch", "2", "--seq-len", "16"]
    assert main([*args, "--steps", "2", "--warmup", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {(r["label"], r["variant"]): r for r in data["rows"]}
    assert set(rows) == {
        ("pt", "harness"),
        ("pt", "bare"),
        ("pt", "peft"),
        ("dept", "harness"),
        ("dept", "bare"),
    }
    for row in rows.values():
        assert row["ms_per_step"] > 0 and row["tokens_per_s"] > 0
        assert row["memory_kind"] == "cpu_rss"
        # FLOPs are counted on any device; a CPU has no datasheet peak to compare with.
        assert row["tflops_per_s"] > 0 and row["device_peak_tflops"] is None
    # Same method, same trainable tensors whichever loop runs it; PEFT's prompt has the same size too.
    assert rows[("pt", "harness")]["trainable_params"] == rows[("pt", "bare")]["trainable_params"]
    assert rows[("pt", "peft")]["virtual_tokens"] == rows[("pt", "harness")]["virtual_tokens"] == 100
    names = {r["ratio"] for r in data["ratios"]}
    assert {"pt: harness / bare time", "pt: harness / PEFT time", "pt: harness / PEFT memory"} <= names
    assert "targets" in capsys.readouterr().out


def test_ratios_arithmetic():
    def row(label, variant, ms, mem, virtual):
        return {
            "label": label,
            "variant": variant,
            "ms_per_step": ms,
            "peak_mem_over_baseline_bytes": mem,
            "virtual_tokens": virtual,
        }

    rows = [
        row("pt", "harness", 100, 10, 100),
        row("pt", "bare", 98, 10, 100),
        row("dept", "harness", 90, 9, 60),
    ]
    by_name = {r["ratio"]: r for r in ratios(rows, seq_len=256)}
    assert abs(by_name["pt: harness / bare time"]["value"] - 100 / 98) < 1e-12
    dept = by_name["dept / pt time (target (m+s)/(l+s) + 5%)"]
    assert dept["value"] == 0.9 and abs(dept["target"] - (316 / 356 + 0.05)) < 1e-12 and dept["met"]


def test_lpt_brings_pt_at_the_same_prompt_length():
    cases = plan_cases(["pt"], ["harness", "peft"], "minilm", 2, 16, 1, 0, {})
    assert [(c.label, c.variant) for c in cases] == [("pt", "harness"), ("pt", "peft")]


def test_peft_lora_uses_our_rank_and_modules(tiny_bert_dir):
    """PEFT's LoRA gets our config's rank, alpha and target modules, so both train the same tensors."""
    from bench.perf import PerfCase, run_case

    def case(variant):
        return PerfCase("lora", "lora", variant, str(tiny_bert_dir), 2, 16, 1, 0, {"rank": "4"})

    ours, peft = run_case(case("bare")), run_case(case("peft"))
    assert ours["trainable_params"] == peft["trainable_params"]


@pytest.mark.slow
def test_eval_modes_are_timed_on_t5(tiny_t5_dir, tmp_path):
    out = tmp_path / "perf.json"
    args = ["perf", "--model", str(tiny_t5_dir), "--methods", "pt", "--variants", "bare", "--eval"]
    assert (
        main([*args, "--batch", "2", "--seq-len", "16", "--steps", "2", "--warmup", "1", "--out", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    rows = {(r["label"], r["variant"]): r for r in data["rows"]}
    assert set(rows) == {("pt", "bare"), ("eval", "score"), ("eval", "generate")}
    assert rows[("eval", "generate")]["max_new_tokens"] == 2  # "0" and [SEP]: a trained model's answer length
    assert "eval: score / generate time (>= 3x faster)" in {r["ratio"] for r in data["ratios"]}
    scoring = {r["task"]: r for r in data["scoring"]}  # the label-scoring table (bench/perf/scoring.py)
    assert {t: r["labels"] for t, r in scoring.items()} == {"sst2": 2, "cb": 3, "stsb": 26}
    for r in scoring.values():
        assert r["family"] == "seq2seq" and r["target"] == "score / generate <= 1"
        assert r["speedup"] == r["per_label_ms"] / r["score_ms"] and r["forward_ms"] > 0
    assert scoring["stsb"]["max_new_tokens"] == 4  # "2", ".", "4" and [SEP] with the MiniLM tokenizer


def test_label_scoring_table_on_a_decoder(tiny_llama_dir, capsys):
    from bench.cli import console
    from bench.perf.scoring import scoring_rows, scoring_table
    from bench.terminal import show

    rows = scoring_rows(str(tiny_llama_dir), 2, 16, 1, 0, {})
    assert [(r["task"], r["family"]) for r in rows] == [
        ("sst2", "decoder"),
        ("cb", "decoder"),
        ("stsb", "decoder"),
    ]
    assert [r["target"] for r in rows] == [None, "speed-up >= 2x", "speed-up >= 8x"]
    show(console, scoring_table(rows))
    assert "label scoring, decoder" in capsys.readouterr().out


def test_best_of_repeats_keeps_the_fastest_median_and_lowest_peak():
    from bench.perf import best_of

    rows = [
        {"label": "pt", "variant": "bare", "ms_per_step": 12.0, "peak_mem_over_baseline_bytes": 5},
        {"label": "pt", "variant": "harness", "error": "exit 1: boom"},
        {"label": "pt", "variant": "bare", "ms_per_step": 10.0, "peak_mem_over_baseline_bytes": 7},
        {"label": "pt", "variant": "harness", "ms_per_step": 11.0, "peak_mem_over_baseline_bytes": 6},
    ]
    best = {r["variant"]: r for r in best_of(rows)}
    assert best["bare"]["ms_per_step"] == 10.0 and best["bare"]["peak_mem_over_baseline_bytes"] == 5
    assert best["bare"]["ms_per_step_repeats"] == [12.0, 10.0]
    assert best["harness"]["ms_per_step"] == 11.0  # a failed repeat does not hide a good one


@pytest.mark.slow
def test_precisions_side_by_side_on_a_cpu(tiny_bert_dir, tmp_path, capsys):
    """fp32 and bf16 are timed, tf32 is reported as not available (a CPU has no TF32), and each row's
    bf16/fp32 ratios are the quotients of the two rows."""
    out = tmp_path / "perf.json"
    args = ["perf", "--model", str(tiny_bert_dir), "--methods", "pt", "--variants", "harness,bare"]
    args += [
        "--batch",
        "2",
        "--seq-len",
        "16",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--precision",
        "fp32,tf32,bf16",
    ]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tf32: not available on this device" in printed and "bf16/fp32 time" in printed
    data = json.loads(out.read_text())
    assert data["precision"]["timed"] == ["fp32", "bf16"] and set(data["precision"]["unavailable"]) == {
        "tf32"
    }
    rows = {(r["variant"], r["precision"]): r for r in data["rows"]}
    assert set(rows) == {(v, p) for v in ("harness", "bare") for p in ("fp32", "bf16")}
    assert {r["precision_ran"] for r in data["rows"]} == {"fp32", "bf16"}
    entry = next(e for e in data["precision"]["compared"] if e["variant"] == "bare")
    ratio = rows[("bare", "bf16")]["ms_per_step"] / rows[("bare", "fp32")]["ms_per_step"]
    assert abs(entry["ratios"]["bf16/fp32 time"] - ratio) < 1e-12
    harness_bare = [t["precision"] for t in data["ratios"] if t["ratio"] == "pt: harness / bare time"]
    assert harness_bare == ["fp32", "bf16"]  # the targets, once per precision


def test_bad_or_missing_precision_is_one_line(tiny_bert_dir, capsys):
    assert main(["perf", "--model", str(tiny_bert_dir), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--precision 'fp16' is not allowed" in err and "fp32, tf32, bf16" in err
    assert main(["perf", "--model", str(tiny_bert_dir), "--precision", "tf32"]) == 2
    assert "none of these precisions runs on this device" in capsys.readouterr().err


def test_empty_variants_times_only_the_evaluation(tiny_t5_dir, tmp_path, monkeypatch):
    """``--variants ""`` (scripts/label_scoring_perf.sh) times no training loop, only --eval's rows."""
    import bench.perf
    import bench.perf.scoring

    timed = []
    monkeypatch.setattr(bench.perf, "run_in_subprocess", lambda case: timed.append(case.variant) or {})
    monkeypatch.setattr(bench.perf.scoring, "scoring_rows", lambda *args: [])
    out = tmp_path / "perf.json"
    args = [
        "perf",
        "--model",
        str(tiny_t5_dir),
        "--methods",
        "pt",
        "--variants",
        "",
        "--eval",
        "--out",
        str(out),
    ]
    main(args)
    assert timed and set(timed) == {"score", "generate"}
