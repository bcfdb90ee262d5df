"""The record builder: a finished run's measurements -> the record's keys (schema in ``bench/results.py``).

``bench.results`` owns the schema (``empty_record`` lists every key, ``validate_record`` checks them) and the
failed/cancelled records; this fills the rest from what training returned, so the worker only runs the run.
Names no method: per-method keys come from ``Method.record()`` and ``Method.record_init_and_best``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import torch

from bench.measurement.measure import environment, peak_rss_bytes
from bench.planning.sources import transfer_record
from bench.training.precision import resolve

if TYPE_CHECKING:
    from bench.backbones.base import Backbone
    from bench.spec import RunSpec, TrainConfig
    from bench.training.trainer import TrainResult
    from methods.base import Method


def now() -> str:
    """The current time as an ISO-8601 UTC timestamp (the record's ``started_at``/``finished_at``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def method_record(result: TrainResult, method: Method, backbone: Backbone) -> dict[str, Any]:
    """The record's ``method_record``: the method's own keys at the best step, the declared ones also at
    initialisation and at the best step, how it attaches, and per-stage numbers for multi-stage methods."""
    kept = method.record_init_and_best
    return {
        **result.method_record_best,
        **{f"{k}_init": v for k, v in result.method_record_init.items() if k in kept},
        **{f"{k}_best": v for k, v in result.method_record_best.items() if k in kept},
        "attach": method.attach,
        "display_name": method.display_name(),  # the row name reports show (e.g. ept[placeholder-v0])
        "prompt_placement": getattr(backbone, "prompt_placement", None),
        # Multi-stage methods only (XPrompt): per-stage steps, wall time, trainable_params (bench/training/stages.py).
        **({"stages": result.stages} if len(result.stages) > 1 else {}),
    }


def interruptions(notes: list[dict[str, Any]]) -> dict[str, Any]:
    """The record's ``interruptions``: how often the cluster stopped the run (a time limit, a preemption) and the
    training seconds lost, i.e. trained again after resuming from the last checkpoint; ``events`` are the notes
    of ``bench.training.checkpoint.Checkpointer.note_interruption``, oldest first."""
    return {
        "count": len(notes),
        "lost_train_time_s": sum(n.get("lost_train_time_s") or 0.0 for n in notes),
        "events": notes,
    }


def ok_record(
    spec: RunSpec,
    record: dict[str, Any],
    result: TrainResult,
    task,
    backbone: Backbone,
    method: Method,
    train: TrainConfig,
    device: torch.device,
    load_time_s: float,
    artifact: str | None,
    artifact_bytes: int | None,
    data_info: dict[str, Any],
) -> dict[str, Any]:
    """``record`` (an ``empty_record`` with ``started_at``) completed from a finished training ``result``:
    status ``ok`` (or ``pruned`` when a search's pruner stopped it), metrics, counts, timings, environment."""

    counts = method.counts()
    head = sum(p.numel() for p in backbone.head_parameters())
    train_s = max(result.train_time_s, 1e-9)
    record.update(
        status="pruned" if result.stopped else "ok",
        error=result.stopped,
        finished_at=now(),
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
            "loss_history": result.loss_history,
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
        load_time_s=load_time_s,
        peak_rss_bytes=peak_rss_bytes(),
        peak_rss_train_bytes=result.peak_rss_train_bytes,
        samples_per_s=result.samples / train_s,
        tokens_per_s=result.real_tokens / train_s,
        effective_tokens_per_s=(result.processed_positions + result.virtual_tokens) / train_s,
        final_loss=result.final_loss,
        contention=result.contention,
        interruptions=interruptions(result.interruptions),
        method_record=method_record(result, method, backbone),
        artifact=artifact,
        artifact_bytes=artifact_bytes,
        transfer=transfer_record(spec),
        data=data_info,
        predictions={"test": {"predicted": result.test_predictions, "reference": result.test_references}},
        env={
            **environment(device, backbone.trainable_modules()),
            # what ran: precision, precision_requested, precision_note (docs/protocol.md#precision)
            **resolve(train.precision, device).record(device),
            "backbone_family": backbone.family,
            "eval_mode": train.eval_mode,
            "dropout": backbone.dropout,  # the backbone's dropout fields as it ran (train.dropout or the checkpoint's)
        },
    )
    record.update(result.gpu)
    return record
