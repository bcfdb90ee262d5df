"""Does ``--log-dir`` change step timing? The same quick-preset run with and without TensorBoard logs, interleaved.

Each repeat runs ``bench run --methods pt --tasks sst2 --preset quick`` twice, once with ``--log-dir`` and once
without, alternating which goes first, each into a fresh results folder (the run id is the same, so a shared
folder would skip the second). ``train.log_every=1`` by default makes the writer work at every step, the worst
case. Prints each run's median and p90 step time and training wall time, and the with/without ratios of the
medians over the repeats.

    python -m scripts.log_dir_overhead --repeats 3 --max-steps 60 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rich.console import Console

from bench.cli import main as bench
from bench.terminal import show


def one_run(args: argparse.Namespace, logged: bool, tmp: Path, tag: str) -> dict:
    out = tmp / f"results-{tag}"
    argv = [
        "run",
        "--methods",
        "pt",
        "--tasks",
        "sst2",
        "--preset",
        "quick",
        "--seeds",
        "42",
        "--no-artifacts",
    ]
    argv += ["--max-steps", str(args.max_steps), "--set", f"train.log_every={args.log_every}"]
    argv += [
        "--set",
        f"train.max_eval_samples={args.eval_samples}",
        "--data-dir",
        args.data_dir,
        "--out",
        str(out),
    ]
    argv += ["--log-dir", str(tmp / f"tb-{tag}")] if logged else []
    if bench(argv) != 0:
        raise SystemExit(f"run {tag} failed")
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=1)
    parser.add_argument("--eval-samples", type=int, default=64, help="dev/test cap: evaluation is not timed")
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    from rich.table import Table

    table = Table("repeat", "--log-dir", "median ms/step", "p90 ms/step", "train s")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="ptbench-logdir-") as tmp:
        for k in range(args.repeats):
            order = (True, False) if k % 2 == 0 else (False, True)
            got = {}
            for logged in order:
                tag = f"{k}-{'on' if logged else 'off'}"
                got[logged] = one_run(args, logged, Path(tmp), tag)
                rec = got[logged]
                table.add_row(
                    str(k),
                    "on" if logged else "off",
                    f"{rec['step_time_ms_median']:.1f}",
                    f"{rec['step_time_ms_p90']:.1f}",
                    f"{rec['train_time_s']:.1f}",
                )
            ratios.append(got[True]["step_time_ms_median"] / got[False]["step_time_ms_median"])
    console = Console()
    show(console, table)
    console.print(
        f"median step time with / without --log-dir (log_every={args.log_every}): "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"; median ratio {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
