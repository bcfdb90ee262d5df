"""Trade-off and learning-curve figures on synthetic records: labels never overlap in a crowded case, no empty
panel, published T5-Base points never share an axis with MiniLM runs, contended runs leave the time/memory
figures, and the learning curves draw a loss panel only from records that have ``loss_history``."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from bench.report import tradeoff
from bench.report.curves import band, history, learning_curves
from bench.report.figures import STYLE
from bench.report.labels import overlaps
from bench.report.load import load_runs
from bench.report.published import load_published
from bench.report.tables import summarize
from tests.test_report import make_record


def _crowd(out: Path, n: int = 12, model: str = "minilm", extra=None) -> None:
    """n settings of pt (num_tokens 1..n) on rte and mrpc, two seeds: n - 1 of them within 0.2 points and 5 % in
    count (their labels drawn at their points would pile up), the last one far off so the axis is wide."""
    for k in range(1, n + 1):
        for seed in (42, 43):
            for task in ("rte", "mrpc"):
                score = (60.0 + 0.02 * k if k < n else 66.0) + (seed - 42) * 0.5
                make_record(
                    out, "pt", task, seed, score, config={"num_tokens": k},
                    trainable=7680 + 30 * k, train_time=10.0 + 0.05 * k, rss_mib=1000 + k, model=model,
                    extra=extra(k, seed) if extra else None,
                )  # fmt: skip


def _figure(name: str, results: Path, published=None, include_contended: bool = False):
    runs = load_runs(results)
    with plt.rc_context(STYLE):
        found, contention = tradeoff.panels(name, summarize(runs), runs, published, include_contended)
        fig, caption = tradeoff.draw(name, found, contention, include_contended)
    return found, fig, caption


@pytest.mark.parametrize("name", list(tradeoff.COSTS))
def test_crowded_labels_do_not_overlap_and_no_empty_panel(tmp_path, name):
    _crowd(tmp_path)
    found, fig, caption = _figure(name, tmp_path, load_published() if name == "tradeoff_params" else None)
    for ax in fig.axes:
        texts = [t for t in ax.texts]
        crowded = "minilm" in ax.get_title() and not ax.get_title().startswith("published")
        assert len(texts) >= 12 if crowded else texts
        assert overlaps(fig, texts) == [], f"{ax.get_title()}: overlapping labels"
        assert ax.collections or ax.lines, f"empty panel {ax.get_title()}"
    titles = [ax.get_title() for ax in fig.axes]
    assert not any("SuperGLUE" in t for t in titles)  # no SuperGLUE task in these records: no panel for it
    assert "GLUE, minilm" in titles
    assert (
        "average of mrpc, rte" in caption and "seeds 42, 43" in caption and "budget 30 steps x 16" in caption
    )
    plt.close(fig)


def test_published_points_never_on_a_minilm_axis(tmp_path):
    _crowd(tmp_path, n=3)
    found, fig, _ = _figure("tradeoff_params", tmp_path, load_published())
    ours = next(p for p in found if p.title == "GLUE, minilm")
    assert ours.points and not any(p.published for p in ours.points)
    apart = [p for p in found if p.only_published]
    assert [p.title for p in apart] == ["published, T5-Base — not comparable to the runs on minilm"]
    assert all(p.published for p in apart[0].points) and len(apart[0].points) > 5
    minilm_ax = next(ax for ax in fig.axes if ax.get_title() == "GLUE, minilm")
    assert {t.get_text() for t in minilm_ax.texts} == {f"pt (num_tokens={k})" for k in (1, 2, 3)}
    plt.close(fig)


def test_published_points_join_a_t5_axis(tmp_path):
    _crowd(tmp_path, n=2, model="t5-base", extra=lambda k, seed: {"env": {"backbone_family": "seq2seq"}})
    found, fig, _ = _figure("tradeoff_params", tmp_path, load_published())
    assert [p.title for p in found] == ["GLUE, t5-base"]
    labels = {p.label for p in found[0].points if p.published}
    assert "DePT" in labels and not any(p.only_published for p in found)
    plt.close(fig)


def test_contended_runs_leave_time_and_memory_figures(tmp_path):
    def contention(k, seed):
        busy = k == 1
        return {
            "contention": {  # the record contract's keys (bench/measurement/contention.py REQUIRED_KEYS)
                "contended": busy,
                "why": "loadavg 3.1 > 2 cores" if busy else None,
                "workers": 1,
                "cpu_time_s": 10.0,
                "wall_s": 10.0 if busy else 5.0,
                "cpu_util": 0.5 if busy else 1.0,
                "loadavg_1m": [3.1, 3.2] if busy else [0.5, 0.6],
                "cpu_count": 2,
            }
        }

    _crowd(tmp_path, n=3, extra=contention)
    for name in tradeoff.TIMED:
        found, fig, caption = _figure(name, tmp_path)
        assert {p.label for p in found[0].points} == {"pt (num_tokens=2)", "pt (num_tokens=3)"}
        assert "4 run(s) measured under contention left out" in caption  # 2 seeds x 2 tasks
        plt.close(fig)
        found, fig, caption = _figure(name, tmp_path, include_contended=True)
        assert len(found[0].points) == 3 and "included" in caption
        plt.close(fig)
    found, fig, _ = _figure("tradeoff_params", tmp_path)  # parameter counts are not distorted by contention
    assert len(found[0].points) == 3
    plt.close(fig)


def test_learning_curves_with_and_without_loss_history(tmp_path):
    def losses(k, seed):
        dev = [{"step": s, "metrics": {"accuracy": 50.0 + s / 10 + seed - 42}, "loss": 1.0} for s in (10, 20)]
        loss = [{"step": s, "loss": 1.0 / s + (seed - 42) * 0.01, "lr": 0.3} for s in (10, 20, 30)]
        return {"metrics": {"dev_history": dev, **({"loss_history": loss} if k == 1 else {})}}

    _crowd(tmp_path / "r", n=2, extra=losses)
    runs = load_runs(tmp_path / "r")
    data = history(runs)
    dev = band(data[(data["task"] == "rte") & (data["kind"] == "dev") & (data["row"] == "pt (num_tokens=1)")])
    assert dev["mean"].tolist() == [51.5, 52.5] and dev["low"].tolist() == [51.0, 52.0]
    assert dev["high"].tolist() == [52.0, 53.0] and dev["seeds"].tolist() == [2, 2]
    loss = data[data["kind"] == "loss"]
    assert set(loss["row"]) == {"pt (num_tokens=1)"} and sorted(set(loss["step"])) == [10, 20, 30]
    paths, caption = learning_curves(runs, tmp_path / "fig")
    assert [p.name for p in paths] == ["curves.png", "curves.pdf"] and "bands: min-max" in caption

    def dev_only(k, seed):
        return {"metrics": {"dev_history": losses(k, seed)["metrics"]["dev_history"]}}

    _crowd(tmp_path / "old", n=2, extra=dev_only)  # no loss_history at all (older records): dev curves only
    runs = load_runs(tmp_path / "old")
    paths, caption = learning_curves(runs, tmp_path / "fig2")
    assert paths and "No record has loss_history" in caption

    def last_step_only(k, seed):  # the quick preset: one dev evaluation, at the end
        full = losses(1, seed)["metrics"]
        return {"metrics": {"dev_history": full["dev_history"][-1:], "loss_history": full["loss_history"]}}

    _crowd(tmp_path / "last", n=2, extra=last_step_only)
    runs = load_runs(tmp_path / "last")
    paths, caption = learning_curves(runs, tmp_path / "fig3")
    assert paths and "evaluated dev once" in caption and "Dev headline" not in caption
