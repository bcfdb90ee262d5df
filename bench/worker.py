"""Execute one ``RunSpec`` and write its record: ``python -m bench.worker SPEC.json RECORD.json [--no-artifacts]``.

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
from bench.sources import transfer_record
from bench.spec import RunSpec, TrainConfig, flatten_config
from methods.registry import display_name

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


def build(spec: RunSpec, task, train: TrainConfig, results_dir: Path | None = None):
    """Backbone with the method attached, seeded so the same spec gives the same initial state.

    Transfer methods first receive their source prompts (resolved in ``spec.sources`` at planning time; a
    run's artifact is also looked up under ``results_dir``).
    """
    from transformers import set_seed

    from bench.backbones import load_backbone
    from methods.registry import build_config, get_method_class

    set_seed(spec.seed)
    labels = None if task.is_regression else task.label_strings()
    backbone = load_backbone(spec.model, labels, train.max_length)
    method_cls = get_method_class(spec.method)
    config = build_config(spec.method, flatten_config(spec.method_config))
    method = method_cls(config, backbone.dims)
    if method_cls.requires_sources:
        from bench.sources import load_source_prompts

        method.load_sources(load_source_prompts(spec, results_dir))
    method.initialize(backbone, torch.Generator().manual_seed(spec.seed))
    backbone.attach(method)
    return backbone, method


def execute(spec: RunSpec, progress=None, results_dir: Path | None = None, checkpoint=None) -> dict:
    """Run ``spec`` to a complete record (status ``ok``); exceptions propagate to the caller.

    With ``results_dir``, the trained state at the best checkpoint is saved (before the record exists) as
    ``<results_dir>/artifacts/<run_id>.safetensors`` (``bench/artifacts.py``); without it, ``artifact`` is null.
    ``checkpoint`` (a ``bench.checkpoint.Checkpointer``) makes training resume from and save to its file.
    """
    from bench.measure import environment, peak_rss_bytes
    from bench.trainer import train_and_evaluate

    record = empty_record(spec)
    record["started_at"] = _now()
    train = spec.train_config()
    train.validate()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    load_start = time.perf_counter()
    task, train_examples, dev, test, info = prepare_data(spec, train)
    backbone, method = build(spec, task, train, results_dir)
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

    result = train_and_evaluate(
        backbone, task, *encoded, train, spec.seed, device, progress, checkpoint, on_evaluate
    )

    artifact, artifact_bytes = None, None
    if results_dir is not None:  # the backbone now holds the best checkpoint (train_and_evaluate restored it)
        from bench.artifacts import artifact_relpath, save_artifact

        artifact = artifact_relpath(spec.run_id)
        artifact_bytes = save_artifact(Path(results_dir) / artifact, backbone, spec)

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
        nan_skipped_batches=result.nan_skipped_batches,
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
            "display_name": method.display_name(),  # the row name reports show (e.g. ept[placeholder-v0])
            "prompt_placement": getattr(backbone, "prompt_placement", None),
            # Multi-stage methods only (XPrompt): per-stage steps, wall time, trainable_params (bench/stages.py).
            **({"stages": result.stages} if len(result.stages) > 1 else {}),
        },
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        transfer=transfer_record(spec),
        data=info,
        predictions={"test": {"predicted": result.test_predictions, "reference": result.test_references}},
        env={
            **environment(device, backbone.trainable_modules()),
            "backbone_family": backbone.family,
            "eval_mode": train.eval_mode,
        },
    )
    record.update(result.gpu)
    return record


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's ``torch.OutOfMemoryError``, Python's ``MemoryError``, or torch's CPU allocator failing (a
    ``RuntimeError`` "DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def run_spec(spec: RunSpec, progress=None, checkpoint=None, results_dir: Path | None = None) -> dict:
    """``execute`` that never raises an ``Exception``: a run that fails gives its ``failed``/``oom`` record.

    The record holds the error, the step reached, the last loss and the dev history so far (the trainer
    attaches them to the exception as ``partial_result``). Out of memory (``torch.OutOfMemoryError``,
    ``MemoryError``) is status ``oom``; the batch is never shrunk. KeyboardInterrupt propagates: the parent
    records the run as ``cancelled``.
    """
    try:
        return execute(spec, progress, results_dir, checkpoint)
    except Exception as exc:  # the run fails, the grid goes on: the record says why
        message = str(exc).splitlines()[0] if str(exc) else ""
        partial = getattr(exc, "partial_result", None)
        progress_state = (
            {
                "steps": partial.steps,
                "final_loss": partial.final_loss,
                "dev_history": partial.dev_history,
                "nan_skipped_batches": partial.nan_skipped_batches,
            }
            if partial is not None
            else None
        )
        status = "oom" if is_out_of_memory(exc) else "failed"
        record = failed_record(
            spec,
            f"{type(exc).__name__}: {message}",
            traceback.format_exc()[-4000:],
            status=status,
            progress=progress_state,
        )
        record["method_record"]["display_name"] = display_name(spec.method, spec.method_config)
        return record


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.worker SPEC.json RECORD.json [--checkpoint-every N]``."""
    from bench.checkpoint import Checkpointer, checkpoint_path
    from bench.signals import die_with_parent

    die_with_parent()
    argv = sys.argv[1:] if argv is None else argv
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    save = "--no-artifacts" not in argv[2:]  # artifacts go next to the record: <results>/artifacts/
    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    checkpoint = None
    if "--checkpoint-every" in argv:
        every = int(argv[argv.index("--checkpoint-every") + 1])
        checkpoint = Checkpointer(checkpoint_path(out_path.parent, spec.run_id), every, spec.run_id)
    last = [0.0]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25:
            last[0] = now
            print(PROGRESS_PREFIX + json.dumps({"step": step, "loss": loss}), flush=True)

    record = run_spec(spec, progress, checkpoint, out_path.parent if save else None)
    write_json_atomic(out_path, record)
    if checkpoint is not None and record["status"] == "ok":
        checkpoint.delete()
    return 0 if record["status"] in ("ok", "pruned") else 1


if __name__ == "__main__":
    sys.exit(main())
