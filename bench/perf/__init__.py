"""``bench perf``: step time and peak memory of each method, side by side, with the efficiency ratios.

For every method three variants can be timed on the same model, batch and sequence length (synthetic inputs
with every position real, so padding plays no part):

* ``harness``: the real training loop of ``bench run`` (``bench.training.trainer.train_and_evaluate``), its step timer;
* ``bare``: a plain PyTorch loop around the same backbone and method module (forward, backward, clipping,
  optimiser, scheduler), with none of the harness's bookkeeping: the harness overhead is ``harness / bare``;
* ``peft``: the same configuration through Hugging Face PEFT where PEFT has the method: each method declares
  its twin (``Method.peft_equivalent``), so this package names no method.

Each (method, variant) runs in its own subprocess (``python -m bench.perf CASE.json``), so the memory peak is
that configuration's alone: on a GPU the peak allocated CUDA memory over the post-load baseline, on a CPU the
peak RSS over the post-load RSS, sampled every 10 ms. Step time is the median over ``--steps`` steps after
``--warmup`` steps (docs/records.md#time). The table and the target ratios (``bench.perf.targets``, with the
method-relative targets as data in ``bench.perf.defaults.PERF``) are printed and written as JSON for reports.

Modules: ``cases`` (what to time, one subprocess per case), ``loops`` (the timed loops), ``peft_twin`` (the
PEFT model of a case), ``memory`` (peaks and FLOPs), ``targets`` (the ratios), ``defaults`` (the default
methods and the method-relative targets), ``tables`` (what is printed).
"""

from __future__ import annotations

from bench.perf.cases import EVAL_VARIANTS, VARIANTS, PerfCase, best_of, plan_cases, run_in_subprocess
from bench.perf.loops import run_case
from bench.perf.targets import ratios

__all__ = [
    "EVAL_VARIANTS",
    "VARIANTS",
    "PerfCase",
    "best_of",
    "plan_cases",
    "ratios",
    "run_case",
    "run_in_subprocess",
]
