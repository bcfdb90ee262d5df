"""The plain-library reference run: the quick preset's job written directly against Hugging Face PEFT.

Why: a benchmark whose prompt tuning trains worse than the library everyone already has, at the same budget, is
read as biased against it. This script is the "plain PEFT run" the quick presets are compared with
(docs/results.md, docs/quick-recipe.md): the same packaged MiniLM, the same training rows (ptbench's protocol
splits and its fixed 1,000-row subset), the same test rows, steps, batch size, prompt length and learning rate,
trained with PEFT's plain defaults: ``PromptTuningConfig`` (random init, virtual tokens prepended before
``[CLS]``) or ``LoraConfig`` (r=8, alpha 8, q/v), one AdamW over every trainable tensor (head included) at one
rate, constant rate, no warm-up, no dev selection (the last step is kept), the raw sentence(s) tokenised as
BERT pairs. ``--text dept`` feeds ptbench's text format instead, and ``--head-weight-decay 0`` ptbench's decay
of the head instead of AdamW's 0.01 (one factor of the comparison each).

    python scripts/plain_peft.py --method pt --task sst2 --seeds 42,43,44 --out results/plain_peft.jsonl

Prints one line per seed (test headline metric) and appends one JSON line per run to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from pathlib import Path

import torch


def _texts(task, examples: list, text: str) -> list[tuple[str, ...]]:
    """Each example's input: ptbench's formatted source, or the raw HF fields (a BERT pair for two)."""
    if text == "dept":
        return [(e.source,) for e in examples]
    return [tuple(str(e.fields[name]) for name in task.source_fields) for e in examples]


def _encode(tokenizer, rows: list[tuple[str, ...]], max_length: int) -> dict[str, torch.Tensor]:
    first = [r[0] for r in rows]
    second = [" ".join(r[1:]) for r in rows] if len(rows[0]) > 1 else None
    return tokenizer(first, second, truncation=True, max_length=max_length, padding=True, return_tensors="pt")


def run(args: argparse.Namespace, seed: int) -> dict:
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench.backbones.models import resolve_model
    from bench.measurement.measure import environment
    from bench.planning.inputs import subsample
    from suites import get_task, load_splits

    task = get_task(args.task, args.suite)
    splits = load_splits(task, Path(os.environ["BENCH_DATA_DIR"]), seed=42)
    train_rows = subsample(splits.train, args.max_train_samples)
    test_rows = splits.test[: args.max_eval_samples]

    source = resolve_model(args.model).source
    torch.manual_seed(seed)
    regression = task.is_regression
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=1 if regression else len(task.label_names),
        problem_type="regression" if regression else "single_label_classification",
    )
    tokenizer = AutoTokenizer.from_pretrained(source)
    if args.method == "pt":
        config = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=args.num_tokens)
    else:
        config = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=8, target_modules=["query", "value"])
    model = get_peft_model(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    # PEFT's plain default: one AdamW at its default decay (0.01) over everything. --head-weight-decay gives the
    # head (PEFT's trained copy of the classifier) its own decay, e.g. ptbench's 0, to compare that one factor.
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    if args.head_weight_decay != 0.01:
        head = {id(p) for n, p in model.named_parameters() if p.requires_grad and "classifier" in n}
        groups = [{"params": [p for p in params if id(p) not in head]},
                  {"params": [p for p in params if id(p) in head], "weight_decay": args.head_weight_decay}]  # fmt: skip
        optimizer = torch.optim.AdamW(groups, lr=args.lr)

    texts = _texts(task, train_rows, args.text)
    labels = torch.tensor([e.label for e in train_rows], dtype=torch.float if regression else torch.long)
    order = torch.Generator().manual_seed(seed)
    perm, cursor = torch.randperm(len(texts), generator=order), 0
    model.train()
    start = time.perf_counter()
    for _ in range(args.steps):
        if cursor + args.batch > len(perm):
            perm, cursor = torch.randperm(len(texts), generator=order), 0
        index = perm[cursor : cursor + args.batch].tolist()
        cursor += args.batch
        batch = _encode(tokenizer, [texts[i] for i in index], args.max_length)
        loss = model(**batch, labels=labels[index]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    train_s = time.perf_counter() - start

    model.eval()
    predictions: list[str] = []
    test_texts = _texts(task, test_rows, args.text)
    with torch.inference_mode():
        for i in range(0, len(test_texts), 64):
            logits = model(**_encode(tokenizer, test_texts[i : i + 64], args.max_length)).logits
            if regression:
                predictions += [f"{v:.4f}" for v in logits.squeeze(-1).tolist()]
            else:
                predictions += [str(j) for j in logits.argmax(-1).tolist()]
    metrics = task.compute_metrics(predictions, [e.target for e in test_rows])
    env = environment(torch.device("cpu"))
    return {
        "runner": "plain_peft",
        "method": args.method,
        "suite": args.suite,
        "task": args.task,
        "seed": seed,
        "text": args.text,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "head_weight_decay": args.head_weight_decay,
        "num_tokens": args.num_tokens if args.method == "pt" else None,
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "headline": task.headline_metric,
        "test": metrics,
        "final_loss": loss.item(),  # the last step's training loss (ptbench's records hold the same)
        "train_time_s": train_s,
        "threads": torch.get_num_threads(),  # the result depends on it (floating-point summation order)
        # the library versions it ran with (results/constraints.txt)
        "packages": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "peft")},
        # the machine, as a ptbench record's env names it: a run's result depends on it too
        # (docs/quick-recipe.md#a-run-depends-on-the-machine)
        "machine": {k: env[k] for k in ("platform", "cpu_model", "cpu_capability")},
        "predictions": predictions,  # per test row, in order, for the results page's paired bootstraps
    }


def _append_line(path: Path, line: str) -> None:
    """One JSON line appended under an exclusive lock, so runs side by side never interleave their rows."""
    import fcntl

    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        f.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("pt", "lora"), default="pt")
    parser.add_argument("--suite", default="glue")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--lr", type=float, default=None, help="default: the quick preset's (3e-2 PT, 3e-3 LoRA)"
    )
    parser.add_argument("--num-tokens", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-samples", type=int, default=1_000)
    parser.add_argument("--max-eval-samples", type=int, default=500)
    parser.add_argument("--text", choices=("plain", "dept"), default="plain")
    parser.add_argument(
        "--head-weight-decay", type=float, default=0.01, help="the head's AdamW decay (default: AdamW's 0.01)"
    )
    parser.add_argument("--out", default="results/plain_peft.jsonl")
    args = parser.parse_args()
    if args.lr is None:
        args.lr = 3e-2 if args.method == "pt" else 3e-3
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        row = run(args, seed)
        _append_line(out, json.dumps(row) + "\n")
        print(
            f"{args.method} {args.task} seed {seed}: test {row['headline']} {row['test'][row['headline']]:.4f} "
            f"({row['train_time_s']:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
