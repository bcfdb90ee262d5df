"""Execute one ``RunSpec`` and write its record: ``python -m bench.worker SPEC.json RECORD.json [--no-artifacts]``.

The runner starts one worker process per run, so peak memory is per run and a crash in one run cannot end
the others. The worker reports progress on stdout as lines ``@@progress {"step": .., "loss": ..}``, and with
``--report-evaluations`` (a search trial) each dev evaluation, waiting for the runner's ``@@continue`` or
``@@stop REASON`` (``bench/protocol.py``); it names no subsystem that uses them. It only runs the run: the run
is built by ``bench/run/assemble.py``, trained by ``bench/training/trainer.py`` and its record filled by
``bench/run/record.py``.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.artifact_file import artifact_relpath
from bench.grid.signals import die_with_parent
from bench.planning.inputs import prepare_data
from bench.protocol import (
    INTERRUPTED_EXIT,
    WARNING_PREFIX,
    Interrupted,
    evaluation_line,
    install_worker_interrupts,
    parse_reply,
    parse_worker_args,
    progress_line,
)
from bench.results import empty_record, failed_record, write_json_atomic
from bench.run.artifacts import save_artifact
from bench.run.assemble import build
from bench.run.record import now, ok_record
from bench.spec import RunSpec
from bench.training.checkpoint import Checkpointer, checkpoint_path
from bench.training.tensorboard_log import TensorBoardLogger
from bench.training.trainer import EvaluateFn, LoopInputs, StopTraining, train_and_evaluate
from methods.registry import display_name


def execute(
    spec: RunSpec,
    progress=None,
    results_dir: Path | None = None,
    checkpoint=None,
    logger=None,
    report_evaluations: bool = False,
) -> dict:
    """Run ``spec`` to a complete record (status ``ok``); exceptions propagate to the caller.

    With ``results_dir``, the trained state at the best checkpoint is saved (before the record exists) as
    ``<results_dir>/artifacts/<run_id>.safetensors`` (``bench/run/artifacts.py``); without it, ``artifact`` is null.
    ``checkpoint`` (a ``bench.training.checkpoint.Checkpointer``) makes training resume from and save to its file.
    ``logger`` (a ``bench.training.curves.Logger``, e.g. TensorBoard) sees the loss windows and evaluations live.
    ``report_evaluations``: each dev evaluation goes to the runner, which may stop training (``evaluation_reporter``).
    """
    record = empty_record(spec)
    record["started_at"] = now()
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
    on_evaluate = evaluation_reporter(task.selection_metric) if report_evaluations else None

    inputs = LoopInputs(
        backbone, task, *encoded, train, spec.seed, device, progress, checkpoint, on_evaluate, logger
    )
    result = train_and_evaluate(inputs)

    artifact, artifact_bytes = None, None
    if results_dir is not None:  # the backbone now holds the best checkpoint (train_and_evaluate restored it)
        artifact = artifact_relpath(spec.run_id)
        artifact_bytes = save_artifact(Path(results_dir) / artifact, backbone, spec)

    return ok_record(
        spec, record, result, task, backbone, method, train, device,
        load_time_s=load_time, artifact=artifact, artifact_bytes=artifact_bytes, data_info=info,
    )  # fmt: skip


def evaluation_reporter(selection_metric: str) -> EvaluateFn:
    """An ``on_evaluate`` hook for ``--report-evaluations``: print the evaluation (``bench/protocol.py``), read the
    runner's reply from stdin, and end training (``StopTraining``, record status ``pruned``) if it says stop."""

    def on_evaluate(step: int, metrics: dict[str, float]) -> None:
        print(evaluation_line(step, metrics, selection_metric), flush=True)
        reason = parse_reply(sys.stdin.readline())
        if reason is not None:
            raise StopTraining(reason)

    return on_evaluate


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's ``torch.OutOfMemoryError``, Python's ``MemoryError``, or torch's CPU allocator failing (a
    ``RuntimeError`` "DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def run_spec(
    spec: RunSpec,
    progress=None,
    checkpoint=None,
    results_dir: Path | None = None,
    logger=None,
    report_evaluations: bool = False,
) -> dict:
    """``execute`` that never raises an ``Exception``: a run that fails gives its ``failed``/``oom`` record.

    The record holds the error, the step reached, the last loss, the loss and dev histories so far (the trainer
    attaches them to the exception as ``partial_result``). Out of memory (``torch.OutOfMemoryError``,
    ``MemoryError``) is status ``oom``; the batch is never shrunk. KeyboardInterrupt propagates: the parent
    records the run as ``cancelled``.
    """
    try:
        return execute(spec, progress, results_dir, checkpoint, logger, report_evaluations)
    except Exception as exc:  # the run fails, the grid goes on: the record says why
        message = str(exc).splitlines()[0] if str(exc) else ""
        partial = getattr(exc, "partial_result", None)
        progress_state = (
            {
                "steps": partial.steps,
                "final_loss": partial.final_loss,
                "dev_history": partial.dev_history,
                "loss_history": partial.loss_history,
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
    """``python -m bench.worker SPEC.json RECORD.json [--checkpoint-every N] [--no-artifacts] [--log-dir D]
    [--report-evaluations]``."""

    die_with_parent()
    args = parse_worker_args(sys.argv[1:] if argv is None else argv)
    out_path = args.record_file
    save = args.save_artifacts  # artifacts go next to the record: <results>/artifacts/
    spec = RunSpec.from_dict(json.loads(args.spec_file.read_text()))
    checkpoint = None
    if args.checkpoint_every:
        every = args.checkpoint_every
        checkpoint = Checkpointer(checkpoint_path(out_path.parent, spec.run_id), every, spec.run_id)
    last = [0.0]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25:
            last[0] = now
            print(progress_line(step, loss), flush=True)

    logger = None
    if args.log_dir is not None:
        logger = TensorBoardLogger(args.log_dir)
    try:
        results_dir = out_path.parent if save else None
        record = run_spec(spec, progress, checkpoint, results_dir, logger, args.report_evaluations)
    except Interrupted as stop:  # the cluster stops the run; it resumes from its checkpoint when requeued
        kept = f"resumes from step {checkpoint.saved_step}" if checkpoint else "no checkpoint: starts again"
        print(f"{WARNING_PREFIX}run {spec.run_id} interrupted by {stop.signal}; {kept}", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        if logger is not None:
            logger.close()
    write_json_atomic(out_path, record)
    if checkpoint is not None and record["status"] in ("ok", "pruned"):  # finished: never resumed
        checkpoint.delete()
    return 0 if record["status"] in ("ok", "pruned") else 1


if __name__ == "__main__":
    install_worker_interrupts()  # here, not in main(): a test calling main() keeps its own SIGTERM handling
    sys.exit(main())
