"""The cost part of ``bench run``'s plan (``--dry-run`` and before a grid starts) and of ``bench tune``'s:
per run and in total, the steps, dev evaluations and rows scored, training tokens, FLOPs, predicted peak
memory and time, naming the device each prediction assumes; runs over the memory budget flagged with the
largest batch that fits. Options: ``--gpu``, ``--gpu-memory``, ``--calibrate`` (docs/gpu.md)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.cost.calibrate import cached, calibrate
from bench.cost.devices import SUSTAINED, DeviceClass, card, present
from bench.cost.estimate import RunCost, human_bytes, human_seconds, run_cost, shape_of
from bench.errors import InputError
from bench.planning.preflight import split_sizes
from bench.spec import RunSpec
from bench.terminal import show


def target(args: argparse.Namespace) -> tuple[DeviceClass, int | None]:
    """The device the plan assumes and its memory budget in bytes (None: no fit check)."""
    if args.gpu_memory is not None and args.gpu_memory <= 0:
        raise InputError(f"--gpu-memory {args.gpu_memory!r} must be > 0 (GB)")
    device = card(args.gpu) if args.gpu else present()
    return device, device.budget(args.gpu_memory)


def plan_costs(
    specs: list[RunSpec], args: argparse.Namespace
) -> tuple[DeviceClass, int | None, list[RunCost]]:
    """Each spec's ``RunCost`` on the targeted device; ``--calibrate`` first times each distinct shape
    (visible device only: a calibration is kept for the device it ran on)."""
    device, budget = target(args)
    shapes = {shape_of(spec).key(): shape_of(spec) for spec in specs}
    if args.calibrate and device.visible:
        for shape in shapes.values():
            if cached(shape) is None:
                calibrate(shape, eval_batch=specs[0].train["eval_batch_size"])
    costs = []
    for spec in specs:
        calibration = cached(shape_of(spec)) if device.visible else None
        costs.append(run_cost(spec, device, budget, split_sizes(spec), calibration))
    return device, budget, costs


def safe_print_cost(
    specs: list[RunSpec], args: argparse.Namespace, console: Console, trials: int = 1
) -> None:
    """``print_cost``, but a method or model the fake-tensor count cannot run is one note, never a failed
    command: the cost is a prediction, the plan itself is already checked."""
    try:
        return print_cost(specs, args, console, trials)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the prediction is reported, not raised
        console.print(
            f"[yellow]cost[/yellow]: not predicted ({escape(type(exc).__name__)}: {escape(str(exc)[:200])})"
        )


def _assumes(device: DeviceClass, budget: int | None, costs: list[RunCost], specs: list[RunSpec]) -> str:
    precisions = sorted({s.train.get("precision", "fp32") for s in specs})
    if all(c.time_source == "calibrated" for c in costs):
        how = "time calibrated on this device (`--calibrate`)"
    elif device.memory_bytes is None:
        how = "time an estimate: FLOPs at an assumed 0.1 TFLOP/s (CPU; `--calibrate` measures it)"
    else:
        peaks = ", ".join(
            f"{p} {device.peak_tflops.get(p) or device.peak_tflops.get('fp32')}" for p in precisions
        )
        how = f"time an estimate: FLOPs at {SUSTAINED:.0%} of the datasheet peak ({peaks} TFLOP/s)"
    memory = (
        "no memory check (CPU)" if budget is None else f"budget {human_bytes(budget)} (90% of the memory)"
    )
    if any(c.rows_scored is None for c in costs):
        how += "; evaluation not counted where split sizes are unknown (Hub data: give --data-dir)"
    return f"device assumed: {device.name}; {memory}; {how}"


def print_cost(
    specs: list[RunSpec], args: argparse.Namespace, console: Console, trials: int = 1
) -> list[RunCost]:
    """The cost table (one row per spec; ``trials`` runs each, for ``bench tune``), the totals and the
    over-budget flags."""
    if not specs:
        return []
    device, budget, costs = plan_costs(specs, args)
    table = Table(title="cost (predicted)", header_style="bold")
    for col in ("run", "steps", "dev evals", "rows scored", "tokens", "PFLOP", "peak memory", "time"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for spec, cost in zip(specs, costs, strict=True):
        table.add_row(
            escape(spec.label),
            f"{cost.steps * trials:,}",
            f"{cost.evaluations * trials:,}",
            "?" if cost.rows_scored is None else f"{cost.rows_scored * trials:,}",
            f"{cost.train_tokens * trials:.3g}",
            f"{cost.flops * trials / 1e15:,.1f}",
            human_bytes(cost.peak_bytes) + ("" if cost.fits is not False else " [red]over[/red]"),
            human_seconds(None if cost.seconds is None else cost.seconds * trials),
        )
    show(console, table)
    seconds = [c.seconds for c in costs]
    total_s = None if None in seconds else sum(seconds) * trials
    rows = [c.rows_scored for c in costs]
    console.print(
        f"[bold]total[/bold]: {len(specs) * trials} runs, {sum(c.steps for c in costs) * trials:,} steps, "
        f"{sum(c.evaluations for c in costs) * trials:,} dev evaluations, "
        f"{'?' if None in rows else f'{sum(rows) * trials:,}'} rows scored, "
        f"{sum(c.train_tokens for c in costs) * trials:.3g} training tokens, "
        f"{sum(c.flops for c in costs) * trials / 1e15:,.0f} PFLOP, peak memory "
        f"{human_bytes(max(c.peak_bytes for c in costs))}, time {human_seconds(total_s)} "
        f"({'-' if total_s is None else f'{total_s / 3600:,.0f}'} device-hours)"
    )
    console.print(escape(_assumes(device, budget, costs, specs)))
    _flag(specs, costs, budget, console)
    return costs


def _flag(specs: list[RunSpec], costs: list[RunCost], budget: int | None, console: Console) -> None:
    """One line per distinct over-budget message: the shape, its peak, the budget and the largest batch that
    fits."""
    said = set()
    for spec, cost in zip(specs, costs, strict=True):
        if cost.fits is not False:
            continue
        batch = cost.batch_that_fits
        fix = (
            f"the largest batch that fits is {batch} (--set train.batch_size={batch})"
            if batch
            else "no batch fits (weights and optimiser state alone exceed it)"
        )
        line = (
            f"[red]over memory[/red] {escape(spec.model)} {escape(spec.method)} batch {spec.train['batch_size']} "
            f"s={spec.train['max_length']} {spec.train.get('precision', 'fp32')}: predicted peak "
            f"{human_bytes(cost.peak_bytes)} > budget {human_bytes(budget or 0)}; {fix}"
        )
        if line not in said:  # runs of one method and shape on several tasks differ only in target length
            said.add(line)
            console.print(line)


def print_tune_cost(request, trials: int, args: argparse.Namespace, console: Console) -> list[RunCost]:
    """``bench tune``'s budget: each study's (method x task) run, ``trials`` times, dev only (a trial never
    evaluates test); an upper bound, since the pruner stops trials early."""
    from bench.planning.plan import plan  # noqa: PLC0415 - planning loads the registries, only when asked

    specs = [replace(spec, trial={"study": "-", "trial": 0}) for spec in plan(request)]
    console.print(
        f"[bold]trial budget[/bold]: {trials} trials per study (an upper bound: pruned trials stop early)"
    )
    return safe_print_cost(specs, args, console, trials=trials)
