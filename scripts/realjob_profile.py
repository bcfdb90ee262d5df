"""Per-phase costs of the harness's training step against a plain PEFT step on the real job, in ONE process.

``python -m scripts.realjob_profile --task sst2 --method pt --steps 40`` builds the job ``bench run --preset
quick`` plans (``bench.perf.real_task.job_spec``): the harness backbone with the method attached, and the
method's PEFT twin on a second copy of the backbone; then it walks the run's batch order and alternates, step by
step, the harness step (the trainer's own calls: batch, ``backbone.loss``, backward, ``torch.isfinite``,
``LoopState.update``, ``count_tokens`` + ``.item()``) and the PEFT step on the same token batch, then the PEFT
step on the plain-sentence batch of the same rows. Alternating within one process puts every variant under the
same load, so on a shared machine the ratios of medians mean more than separate runs' times. It also times the
RSS/load sampler's one sample, one dev evaluation (the pause ``train_time_s`` excludes) and reports the
attention implementation both models run. Prints one table per phase (median ms) and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def _timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table
    from transformers import get_linear_schedule_with_warmup, set_seed

    from bench.backbones.load import load_backbone
    from bench.measurement.measure import RssSampler
    from bench.perf.cases import PerfCase
    from bench.perf.peft_twin import wrap_twin
    from bench.perf.real_task import batch_order, job_spec, plain_split
    from bench.planning.inputs import method_config, prepare_data
    from bench.run.assemble import build
    from bench.terminal import show
    from bench.training.loop_state import LoopState
    from bench.training.optim import build_optimizer, trainable_parameters
    from bench.training.trainer import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--method", default="pt")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--steps", type=int, default=40, help="steps of each variant (alternated)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    case = PerfCase(args.method, args.method, "harness", "minilm", 0, 0, 0, 0, {}, 42, args.task, args.preset,
                    args.data_dir or os.environ.get("BENCH_DATA_DIR"))  # fmt: skip
    spec = job_spec(case)
    train = spec.train_config()
    task, examples, dev, _test, _info = prepare_data(spec, train)
    labels = task.label_strings()
    backbone, method = build(spec, task, train)
    set_seed(spec.seed)
    twin_backbone = load_backbone(spec.model, labels, train.max_length)
    config = method_config(spec)
    twin, twin_loss = wrap_twin(twin_backbone, spec.method, config)
    split = backbone.encode(examples, labels)
    plain = plain_split(task, examples, backbone.tokenizer, train.max_length, split.labels)
    trim = backbone.trims_batches(train.padding)
    order = batch_order(len(split), train.batch_size, train.max_steps, spec.seed)[: args.steps]
    backbone.train(True)
    twin.train(True)
    params = trainable_parameters(backbone)
    optimizer = build_optimizer(method, backbone, train)
    state = LoopState(optimizer, get_linear_schedule_with_warmup(optimizer, 0, train.max_steps), None, None)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    twin_opt = torch.optim.AdamW(twin_params, lr=config.lr, eps=config.adam_eps)
    twin_sched = get_linear_schedule_with_warmup(twin_opt, 0, train.max_steps)
    phases: dict[str, dict[str, list[float]]] = {}

    def add(variant: str, phase: str, ms: float) -> None:
        phases.setdefault(phase, {}).setdefault(variant, []).append(ms)

    def peft_step(variant: str, source, index) -> None:
        batch, ms = _timed(lambda: source.batch(index, trim))
        add(variant, "batch", ms)
        loss, ms = _timed(lambda: twin_loss(batch))
        add(variant, "forward", ms)
        _, ms = _timed(loss.backward)
        add(variant, "backward", ms)

        def update() -> None:
            torch.nn.utils.clip_grad_norm_(twin_params, train.grad_clip)
            twin_opt.step()
            twin_sched.step()
            twin_opt.zero_grad(set_to_none=True)

        _, ms = _timed(update)
        add(variant, "update", ms)

    def harness_step(index) -> None:
        """The harness's step, call for call as bench/training/trainer.py makes it."""
        batch, ms = _timed(
            lambda: {k: v.to("cpu", non_blocking=True) for k, v in split.batch(index, trim).items()}
        )
        add("harness", "batch", ms)
        loss, ms = _timed(lambda: backbone.loss(batch))
        add("harness", "forward", ms)
        _, ms = _timed(loss.backward)
        add("harness", "backward", ms)
        _, ms = _timed(lambda: bool(torch.isfinite(loss)))
        add("harness", "bookkeeping", ms)
        _, ms = _timed(lambda: state.update(params, train))
        add("harness", "update", ms)
        _, ms = _timed(lambda: (backbone.count_tokens(batch), loss.item()))
        add("harness", "bookkeeping", ms)

    steps = [harness_step, lambda i: peft_step("peft", split, i), lambda i: peft_step("peft-plain", plain, i)]
    for k, index in enumerate(order):  # each step rotates which variant goes first
        for step in steps[k % 3 :] + steps[: k % 3]:
            step(index)

    table = Table(
        title=f"{args.method} on {args.task}: median ms per phase over {len(order)} alternated steps"
    )
    variants = ("harness", "peft", "peft-plain")
    for col in ("phase", *variants, "harness / peft", "harness / peft-plain"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    totals = {v: 0.0 for v in variants}
    for phase, by_variant in phases.items():
        med = {v: statistics.median(by_variant[v]) if v in by_variant else 0.0 for v in variants}
        for v in variants:
            totals[v] += med[v]
        ratio = [f"{med['harness'] / med[v]:.3f}" if med[v] else "-" for v in ("peft", "peft-plain")]
        table.add_row(phase, *(f"{med[v]:.2f}" for v in variants), *ratio)
    table.add_row("sum", *(f"{totals[v]:.1f}" for v in variants),
                  f"{totals['harness'] / totals['peft']:.3f}", f"{totals['harness'] / totals['peft-plain']:.3f}")  # fmt: skip
    console = Console()
    show(console, table)
    positions = {
        name: statistics.fmean(s.batch(i, trim)["attention_mask"].numel() for i in order)
        for name, s in (("ptbench format", split), ("plain sentence", plain))
    }
    console.print(
        f"padded text positions per batch: {positions} (+{method.num_virtual_tokens} virtual per row)"
    )
    sampler = RssSampler()
    _, ms = _timed(lambda: [sampler._process.memory_info() for _ in range(200)])
    _, load_ms = _timed(lambda: [os.getloadavg() for _ in range(200)])
    console.print(
        f"RSS sample {ms / 200 * 1000:.1f} us, load-average sample {load_ms / 200 * 1000:.1f} us, every 0.2 s"
    )
    dev_split = backbone.encode(dev, labels)
    _, ms = _timed(lambda: evaluate(backbone, dev_split, task, train, torch.device("cpu")))
    console.print(
        f"one dev evaluation ({len(dev_split)} rows, batch {train.eval_batch_size}): {ms / 1000:.2f} s"
    )
    attn = {n: getattr(m.config, "_attn_implementation", None) for n, m in (("harness", backbone.model),
                                                                          ("peft", twin.get_base_model()))}  # fmt: skip
    console.print(f"attention implementation: {attn}; torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
