"""Contention-aware timing: was the machine quiet while a run's training loop was timed?

A step time means little when other processes shared the cores (docs/performance.md#contention). Over the
training loop this measures the process's CPU time (``getrusage``: every thread of this process) against wall
time, the machine's busy CPU time from ``/proc/stat`` minus this process's (the CPU other processes used), the
1-minute load average at the start, at the end and sampled in between (``sample_load``, called from the RSS
sampler thread, ``bench.measurement.measure.RssSampler``), torch's thread count, the grid's concurrent worker count
(``bench.protocol.WORKERS_ENV``, set by ``bench.grid.execute``) and the usable cores (the CPU affinity). ``verdict``
turns those into ``contended`` and a one-line ``why``; the rule is documented in docs/records.md#contention.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.protocol import WORKERS_ENV

# Other processes using more than this many cores on average over the loop make it contended.
OTHER_CORES_LIMIT = 0.25
# The mean 1-minute load average above this multiple of the usable cores makes it contended (the load includes
# this run's own threads, which alone bring it to about the thread count).
LOAD_FACTOR = 1.25
# Keys every ``contention`` dict has (the shared record contract); ``measure`` adds the detail keys below.
REQUIRED_KEYS = ("contended", "why", "workers", "cpu_time_s", "wall_s", "cpu_util", "loadavg_1m", "cpu_count")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def grid_workers() -> int:
    """How many runs the grid runs at once on this machine (``bench.grid.execute`` sets it for each worker; 1 alone)."""

    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def process_cpu_s() -> float:
    """User + system CPU seconds of this process, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s(path: str = "/proc/stat") -> float | None:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``'s first line: user, nice, system, irq,
    softirq, steal; idle and iowait left out), or None where the file cannot be read (not Linux)."""
    try:
        with open(path) as handle:
            fields = handle.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    except (OSError, ValueError, IndexError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


@dataclass
class _Point:
    wall: float
    cpu: float
    busy: float | None
    load: float | None

    @classmethod
    def now(cls) -> _Point:
        return cls(time.perf_counter(), process_cpu_s(), machine_busy_s(), _loadavg())


class ContentionMeter:
    """Measures one window (``with meter:``); ``meter.result`` is the record's ``contention`` dict afterwards.

    ``workers``/``threads`` default to the grid's worker count and ``torch.get_num_threads()`` at the start.
    """

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self.workers, self.threads = workers, threads
        self.loads: list[float] = []
        self.result: dict[str, Any] | None = None
        self._start: _Point | None = None

    def sample_load(self) -> None:
        """Add one load-average sample (cheap: one read of ``/proc/loadavg``); safe from another thread."""
        if self._start is not None and (load := _loadavg()) is not None:
            self.loads.append(load)

    def __enter__(self) -> ContentionMeter:
        if self.threads is None:
            import torch  # noqa: PLC0415 - torch only where a run is timed; bench report reads verdicts without it

            self.threads = torch.get_num_threads()
        if self.workers is None:
            self.workers = grid_workers()
        self._start = _Point.now()
        return self

    def __exit__(self, *exc) -> None:
        end = _Point.now()
        self.result = measure(self._start, end, self.loads, self.workers, self.threads)


def measure(start: _Point, end: _Point, loads: list[float], workers: int, threads: int) -> dict[str, Any]:
    """The ``contention`` dict of a window from its two end points and the load samples in between."""
    wall = max(end.wall - start.wall, 1e-9)
    cpu = end.cpu - start.cpu
    other = None
    if start.busy is not None and end.busy is not None:
        # /proc/stat ticks at 100 Hz: a short window can read a little under this process's own CPU time.
        other = max(0.0, (end.busy - start.busy) - cpu)
    out: dict[str, Any] = {
        "workers": workers,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "wall_s": wall,
        "cpu_time_s": cpu,
        "cpu_util": cpu / wall,
        "other_cpu_s": other,
        "other_cpu_cores": None if other is None else other / wall,
        "loadavg_1m": [start.load, end.load],
        "loadavg_1m_mean": statistics.fmean(loads) if loads else None,
        "loadavg_samples": len(loads),
    }
    out["contended"], out["why"] = verdict(out)
    return out


def verdict(m: dict[str, Any]) -> tuple[bool, str | None]:
    """``(contended, why)`` from a contention dict's measurements (docs/records.md#contention).

    Contended if any holds: other processes used more than ``OTHER_CORES_LIMIT`` cores on average beyond what the
    grid's other workers are expected to use (``(workers - 1) x threads`` cores: runs side by side are the
    declared set-up, each on its own share of the cores); the grid's workers times torch's threads exceed the
    usable cores; the 1-minute load average (the sampled mean, else the end value) exceeds ``LOAD_FACTOR`` times
    the usable cores. ``why`` lists every rule that fired.
    """
    cores = m.get("usable_cores") or m.get("cpu_count") or 1
    reasons = []
    other = m.get("other_cpu_cores")
    workers, threads = m.get("workers") or 1, m.get("threads") or 1
    siblings = (workers - 1) * threads
    if other is not None and other > siblings + OTHER_CORES_LIMIT:
        beyond = f" beyond the {siblings} expected from the grid's other workers" if siblings else ""
        reasons.append(f"other processes used {other:.2f} cores on average (> {OTHER_CORES_LIMIT}{beyond})")
    if workers * threads > cores:
        reasons.append(f"{workers} workers x {threads} threads > {cores} usable cores")
    load = m.get("loadavg_1m_mean")
    if load is None:
        load = (m.get("loadavg_1m") or [None, None])[-1]
    if load is not None and load > LOAD_FACTOR * cores:
        reasons.append(f"load average {load:.2f} > {LOAD_FACTOR} x {cores} usable cores")
    return bool(reasons), "; ".join(reasons) or None


def check(contention: Any) -> None:
    """Raise ``ValueError`` unless ``contention`` is null or a dict with the contract's keys and types."""
    if contention is None:
        return
    if not isinstance(contention, dict):
        raise ValueError("contention must be a JSON object or null")
    missing = [k for k in REQUIRED_KEYS if k not in contention]
    if missing:
        raise ValueError(f"contention is missing {', '.join(missing)}")
    if not isinstance(contention["contended"], bool):
        raise ValueError(f"contention.contended {contention['contended']!r} is not a boolean")
    load = contention["loadavg_1m"]
    if not (isinstance(load, list) and len(load) == 2):
        raise ValueError(f"contention.loadavg_1m {load!r} is not [start, end]")
