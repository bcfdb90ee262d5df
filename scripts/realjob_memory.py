"""Where a ``bench perf --task`` variant's peak memory goes: RSS, live tensors and glibc's heap, per phase.

``python -m scripts.realjob_memory --task sst2 --method pt --variant harness`` runs one variant of the real job
in this process, exactly as ``bench perf --task`` does (``bench.perf.real_task.run_task_case``, one variant per
process), and splits its peak over the post-load baseline by phase: the training steps and each dev
evaluation (the harness's ``evaluate``, the twin's evaluator). Per phase it prints

* ``rss``: the peak RSS over the baseline (sampled every 10 ms, as ``PeakMemory``);
* ``live``: with ``--live``, the peak of live tensor storages that operators created in the phase
  (``scripts.live_peak.LivePeak`` on the real tensors; parameters and buffers excluded, gradients and
  optimiser state included); the torch-level peak an allocator cannot go below;
* ``heap``: glibc's ``mallinfo2`` at the phase's RSS peak: bytes in use by ``malloc`` (arena + mmap chunks)
  and bytes free but kept in the arenas (the allocator's retention).

``--steps N`` shortens the job (``max_steps`` and ``eval_every`` = N); ``--tracemalloc`` adds the peak of
Python allocations per phase. glibc settings go in the environment, e.g. ``MALLOC_MMAP_THRESHOLD_=131072
python -m scripts.realjob_memory ...``. Prints one table and a JSON line.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import threading
import tracemalloc

import psutil


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )  # fmt: skip
    ]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _Mallinfo2


def heap() -> dict[str, int]:
    """glibc's heap now: ``used`` (allocated chunks, arenas + mmapped), ``free`` (kept in the arenas)."""
    info = _LIBC.mallinfo2()
    return {"used": info.uordblks + info.hblkhd, "free": info.fordblks, "mmapped": info.hblkhd}


class PhaseTracer:
    """A 10 ms RSS sampler that keeps, per phase, the peak RSS and glibc's heap at that peak."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.base_heap = heap()
        self.phase = "train"
        self.rss: dict[str, int] = {}
        self.heap: dict[str, dict[str, int]] = {}
        self.live: dict[str, int] = {}
        self.python: dict[str, int] = {}  # tracemalloc's peak per phase, with --tracemalloc
        self.tracker = None  # LivePeak with --live
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        rss, phase = self.process.memory_info().rss, self.phase
        if rss > self.rss.get(phase, 0):
            self.rss[phase], self.heap[phase] = rss, heap()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.sample()

    def enter(self, phase: str) -> None:
        """Close the current phase (its live-tensor peak) and open ``phase``."""
        self.sample()
        if self.tracker is not None:
            self.live[self.phase] = max(self.live.get(self.phase, 0), self.tracker.peak)
            self.tracker.peak = self.tracker.now  # the new phase's peak starts from what is alive
        if tracemalloc.is_tracing():
            self.python[self.phase] = max(self.python.get(self.phase, 0), tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
        self.phase = phase

    def stop(self) -> None:
        self.enter("end")
        self._stop.set()
        self._thread.join()


def instrument(tracer: PhaseTracer) -> None:
    """Mark every dev evaluation, harness (``trainer.evaluate``) and twin (``real_task.twin_evaluator``)."""
    from bench.perf import real_task
    from bench.training import trainer

    count = {"n": 0}

    def marked(fn):
        def wrapper(*args, **kwargs):
            count["n"] += 1
            tracer.enter(f"eval {count['n']}")
            try:
                return fn(*args, **kwargs)
            finally:
                tracer.enter("after eval")

        return wrapper

    trainer.evaluate = marked(trainer.evaluate)
    plain = real_task.twin_evaluator
    real_task.twin_evaluator = lambda *a, **k: marked(plain(*a, **k))


def main(argv: list[str] | None = None) -> int:
    import torch

    from bench.perf.cases import PerfCase
    from bench.perf.real_task import run_task_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--method", default="pt")
    parser.add_argument("--variant", default="harness", choices=("harness", "bare", "peft"))
    parser.add_argument(
        "--steps", type=int, default=None, help="max_steps = eval_every = N (default: preset)"
    )
    parser.add_argument("--live", action="store_true", help="track live tensor storages (slower)")
    parser.add_argument("--tracemalloc", action="store_true", help="Python allocations' peak (slower)")
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR"))
    args = parser.parse_args(argv)

    train = {"max_steps": str(args.steps), "eval_every": str(args.steps)} if args.steps else {}
    case = PerfCase(args.method, args.method, args.variant, "minilm", 0, 0, 0, 0, {}, seed=42, task=args.task,
                    data_dir=args.data_dir, train_overrides=train)  # fmt: skip
    holder: dict[str, PhaseTracer] = {}
    from bench.perf import memory

    class TracedPeak(memory.PeakMemory):
        """``PeakMemory`` that also starts the phase tracer at the same baseline."""

        def __init__(self, device) -> None:
            super().__init__(device)
            holder["t"] = tracer = PhaseTracer()
            if args.tracemalloc:
                tracemalloc.start()
            if args.live:
                from bench.cost.step import storages
                from scripts.live_peak import LivePeak

                tracer.tracker = LivePeak(storages(list(_modules)))
                tracer.tracker.__enter__()

    _modules: list[torch.nn.Module] = []
    original_to = torch.nn.Module.to

    def remember_to(self, *a, **k):  # the modules the job moves to the device: their tensors are excluded
        _modules.append(self)
        return original_to(self, *a, **k)

    torch.nn.Module.to = remember_to
    memory.PeakMemory = TracedPeak
    instrument(_Lazy(holder))
    row = run_task_case(case, torch.device("cpu"))  # builds PeakMemory (here TracedPeak) after loading
    tracer = holder["t"]
    if tracer.tracker is not None:
        tracer.tracker.__exit__(None, None, None)
    tracer.stop()
    mb = 2**20
    print(f"{args.method} {args.variant}: peak over baseline {row['peak_mem_over_baseline_bytes'] / mb:.1f} MB "
          f"({row['steps']} steps, {row['dev_evaluations']} dev evaluations in the loop)")  # fmt: skip
    print("| phase | rss MB | live tensors MB | Python objects MB | heap in use MB | heap free MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for phase, rss in tracer.rss.items():
        h = tracer.heap[phase]
        live, python = (f"{d[phase] / mb:.1f}" if phase in d else "-" for d in (tracer.live, tracer.python))
        print(f"| {phase} | {(rss - tracer.base) / mb:.1f} | {live} | {python} | "
              f"{(h['used'] - tracer.base_heap['used']) / mb:.1f} | {(h['free'] - tracer.base_heap['free']) / mb:.1f} |")  # fmt: skip
    out = {"variant": args.variant, "method": args.method, "peak_mb": row["peak_mem_over_baseline_bytes"] / mb,
           "rss_mb": {p: (r - tracer.base) / mb for p, r in tracer.rss.items()},
           "live_mb": {p: v / mb for p, v in tracer.live.items()},
           "python_mb": {p: v / mb for p, v in tracer.python.items()},
           "heap": tracer.heap, "base_heap": tracer.base_heap}  # fmt: skip
    print(json.dumps(out))
    return 0


class _Lazy:
    """The tracer before it exists (``PeakMemory`` is built inside ``run_task_case``)."""

    def __init__(self, holder: dict) -> None:
        self.holder = holder

    def enter(self, phase: str) -> None:
        if "t" in self.holder:
            self.holder["t"].enter(phase)


if __name__ == "__main__":
    raise SystemExit(main())
