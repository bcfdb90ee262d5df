"""Execute one ``RunSpec`` and write its record: ``python -m bench.worker SPEC.json RECORD.json``.

The runner starts one worker process per run, so peak memory is per run and a crash in one run cannot end
the others. The worker reports progress on stdout as lines ``@@progress {"step": .., "loss": ..}``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.results import empty_record, failed_record, write_json_atomic
from bench.spec import RunSpec, TrainConfig

PROGRESS_PREFIX = "@@progress "


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def subsample(examples: list, limit: int | None, seed: int = 42) -> list:
    """A fixed random subset (same for every run seed), kept in the split's order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))[:limit]
    return [examples[i] for i in sorted(keep.tolist())]


def prepare_data(spec: RunSpec, train: TrainConfig):
    """The task and its protocol splits, with the preset's size caps applied."""
    from suites import get_task, load_splits

    task = get_task(spec.task, spec.suite)
    data_dir = Path(spec.data["dir"]) if spec.data.get("source") == "local" else None
    splits = load_splits(task, data_dir, seed=train.split_seed)
    cap = train.max_eval_samples
    train_examples = subsample(splits.train, train.max_train_samples)
    dev, test = splits.dev[:cap] if cap else splits.dev, splits.test[:cap] if cap else splits.test
    for name, split in (("train", train_examples), ("dev", dev), ("test", test)):
        if not split:
            raise ValueError(f"task {spec.task!r}: the {name} split is empty after filtering")
    info = dict(splits.info, sizes={"train": len(train_examples), "dev": len(dev), "test": len(test)})
    return task, train_examples, dev, test, info


def build(spec: RunSpec, task, train: TrainConfig):
    """Backbone with the method attached, seeded so the same spec gives the same initial state."""
    from transformers import set_seed

    from bench.backbones import load_backbone
    from methods.registry import build_config, get_method_class

    set_seed(spec.seed)
    labels = None if task.is_regression else task.label_strings()
    backbone = load_backbone(spec.model, labels, train.max_length)
    method_cls = get_method_class(spec.method)
    config = build_config(spec.method, _flatten(spec.method_config))
    method = method_cls(config, backbone.dims)
    method.initialize(backbone, torch.Generator().manual_seed(spec.seed))
    backbone.attach(method)
    return backbone, method


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def execute(spec: RunSpec, progress=None) -> dict:
    """Run ``spec`` to a complete record (status ``ok``); exceptions propagate to the caller."""
    from bench.measure import environment, peak_rss_bytes
    from bench.trainer import train_and_evaluate

    record = empty_record(spec)
    record["started_at"] = _now()
    train = spec.train_config()
    train.validate()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    load_start = time.perf_counter()
    task, train_examples, dev, test, info = prepare_data(spec, train)
    backbone, method = build(spec, task, train)
    label_strings = task.label_strings()
    # A search trial is dev-only: its test split is never encoded or evaluated.
    splits = (train_examples, dev) if spec.trial is not None else (train_examples, dev, test)
    encoded = [backbone.encode(split, label_strings) for split in splits] + [None] * (3 - len(splits))
    backbone.to(device)
    load_time = time.perf_counter() - load_start
    on_evaluate = None
    if spec.trial is not None:
        from bench.tune.report import trial_reporter

        on_evaluate = trial_reporter(task.selection_metric)

    result = train_and_evaluate(backbone, task, *encoded, train, spec.seed, device, progress, on_evaluate)

    counts = method.counts()
    head = sum(p.numel() for p in backbone.head_parameters())
    train_s = max(result.train_time_s, 1e-9)
    record.update(
        status="pruned" if result.stopped else "ok",
        error=result.stopped,
        finished_at=_now(),
        metrics={
            "dev": result.dev_metrics,
            "test": result.test_metrics,
            "headline": {
                "name": task.headline_metric,
                "dev": result.dev_metrics.get(task.headline_metric),
                "test": result.test_metrics.get(task.headline_metric),
            },
            "selection_metric": task.selection_metric,
            "best_step": result.best_step,
            "dev_history": result.dev_history,
        },
        trainable_params=counts.trainable_params,
        head_params=head,
        extra_params=counts.extra_params,
        saved_params=counts.saved_params,
        transfer_params=counts.transfer_params,
        total_params=backbone.total_params(),
        param_breakdown=counts.breakdown,
        virtual_tokens=method.num_virtual_tokens,
        train_time_s=result.train_time_s,
        step_time_ms_median=result.step_times.median_ms(),
        step_time_ms_p90=result.step_times.p90_ms(),
        steps=result.steps,
        eval_time_s=result.eval_time_s,
        load_time_s=load_time,
        peak_rss_bytes=peak_rss_bytes(),
        peak_rss_train_bytes=result.peak_rss_train_bytes,
        samples_per_s=result.samples / train_s,
        tokens_per_s=result.real_tokens / train_s,
        effective_tokens_per_s=(result.processed_positions + result.virtual_tokens) / train_s,
        final_loss=result.final_loss,
        method_record={
            **result.method_record_best,
            **{f"{k}_init": v for k, v in result.method_record_init.items() if k == "gate_weights"},
            **{f"{k}_best": v for k, v in result.method_record_best.items() if k == "gate_weights"},
            "attach": method.attach,
            "prompt_placement": getattr(backbone, "prompt_placement", None),
        },
        data=info,
        env={**environment(device), "backbone_family": backbone.family, "eval_mode": train.eval_mode},
    )
    record.update(result.gpu)
    return record


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    last = [0.0]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25:
            last[0] = now
            print(PROGRESS_PREFIX + json.dumps({"step": step, "loss": loss}), flush=True)

    try:
        record = execute(spec, progress)
    except Exception as exc:  # the run fails, the grid goes on: the record says why
        message = str(exc).splitlines()[0] if str(exc) else ""
        record = failed_record(spec, f"{type(exc).__name__}: {message}", traceback.format_exc()[-4000:])
    write_json_atomic(out_path, record)
    return 0 if record["status"] in ("ok", "pruned") else 1


if __name__ == "__main__":
    sys.exit(main())
