"""The best state's dev metrics (``TrainResult.dev_metrics``, bench/training/trainer.py): taken from the loop's
last evaluation when that evaluation selected the state the model holds at the end, evaluated again otherwise;
either way what a fresh evaluation of the best state gives."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.spec import TrainConfig
from bench.training import trainer
from methods.pt import PromptTuning, PTConfig
from suites.task import Example

CPU = torch.device("cpu")


class Task:
    """Accuracy over string predictions, plus a per-call score that decides which evaluation is best."""

    selection_metric = "score"

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = list(scores), 0

    @staticmethod
    def label_strings() -> list[str]:
        return ["0", "1"]

    def compute_metrics(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        self.calls += 1
        accuracy = sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)
        return {"accuracy": accuracy, "score": self.scores[min(self.calls, len(self.scores)) - 1]}


def _run(tiny_bert_dir, scores: list[float], eval_every: int) -> tuple[trainer.TrainResult, Task, object]:
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 16)
    backbone.attach(PromptTuning(PTConfig(num_tokens=2, lr=0.3), backbone.dims))
    rows = [Example(f"row {i} {'good' if i % 2 else 'bad'}", str(i % 2), i % 2) for i in range(24)]
    split = backbone.encode(rows[:16], ["0", "1"])
    dev = backbone.encode(rows[16:], ["0", "1"])
    task = Task(scores)
    train = TrainConfig(batch_size=4, max_steps=6, warmup_steps=0, eval_every=eval_every, max_length=16,
                        eval_batch_size=3)  # fmt: skip
    result = trainer.train_and_evaluate(trainer.LoopInputs(backbone, task, split, dev, None, train, 7, CPU))
    return result, task, (backbone, dev, train)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scores", "eval_every", "best_step", "calls"),
    [
        ([0.5], 6, 6, 1),  # the quick preset's shape: one evaluation, at the last step, reused
        ([0.1, 0.2, 0.3], 2, 6, 3),  # the best is the last of three: reused
        ([0.3, 0.2, 0.1], 2, 2, 4),  # the best is step 2, four steps trained since: dev evaluated again
    ],
)
def test_best_dev_metrics_equal_a_fresh_evaluation(tiny_bert_dir, scores, eval_every, best_step, calls):
    result, task, (backbone, dev, train) = _run(tiny_bert_dir, scores, eval_every)
    assert result.best_step == best_step
    assert task.calls == calls  # dev passes: one per loop evaluation, plus one when the best is not the last
    held = trainer.evaluate(backbone, dev, task, train, CPU)  # the model holds the best state at the end
    assert result.dev_metrics["accuracy"] == held["accuracy"]
    selected = next(h for h in result.dev_history if h["step"] == best_step)
    assert result.dev_metrics["accuracy"] == selected["metrics"]["accuracy"]
    assert result.dev_metrics is not selected["metrics"]  # a copy: the record's two fields stay apart
