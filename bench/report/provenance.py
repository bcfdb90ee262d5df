"""Where and how a set of records ran: wall time (summed, and busy: at least one run going), concurrent
workers, library versions and machines, as the results page (``scripts/results_page.py``) states them."""

from __future__ import annotations

import datetime as dt
from typing import Any


def wall_s(records: list[dict[str, Any]]) -> float:
    """Every run's start-to-finish time, summed."""
    total = 0.0
    for rec in records:
        start, end = rec.get("started_at"), rec.get("finished_at")
        if start and end:
            total += (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return total


def busy_s(records: list[dict[str, Any]]) -> float:
    """Wall time during which at least one run was running: the union of the runs' start-finish intervals.

    Why not first start to last finish: a grid made over several sessions (or resumed after a kill) would count
    the gaps between them, which no run spent."""
    spans = sorted(
        (dt.datetime.fromisoformat(r["started_at"]), dt.datetime.fromisoformat(r["finished_at"]))
        for r in records
        if r.get("started_at") and r.get("finished_at")
    )
    total, current = 0.0, None
    for start, end in spans:
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            total += (current[1] - current[0]).total_seconds()
        current = (start, end)
    return total + ((current[1] - current[0]).total_seconds() if current else 0.0)


def workers(records: list[dict[str, Any]]) -> str:
    """The grid's concurrent worker counts, as the records' contention field gives them (``"2"``, ``"1-2"``)."""
    counts = sorted({(r.get("contention") or {}).get("workers") or 1 for r in records})
    return "-".join(map(str, (counts[0], counts[-1]) if len(counts) > 1 else counts)) if counts else "1"


def packages(records: list[dict[str, Any]]) -> str:
    """The library versions the records ran with (``env.packages``), each with every version seen."""
    seen: dict[str, set[str]] = {}
    for rec in records:
        for name in ("torch", "transformers", "peft"):
            version = ((rec.get("env") or {}).get("packages") or {}).get(name)
            if version:
                seen.setdefault(name, set()).add(version)
    return ", ".join(f"{name} {' / '.join(sorted(v))}" for name, v in seen.items()) or "not recorded"


def machines(records: list[dict[str, Any]], plain_rows: list[dict[str, Any]]) -> str:
    """The machines both sides ran on (``env.platform`` and ``env.cpu_model`` of the records, ``machine`` of the
    plain rows): a run's result depends on the machine, so a comparison means most when they are the same."""

    def name(env: dict) -> str:
        cpu = ", ".join(str(env[k]) for k in ("cpu_model", "cpu_capability") if env.get(k))
        return f"{env.get('platform')} ({cpu or 'CPU not recorded'})"

    def names(envs: list[dict]) -> set[str]:
        return {name(e) for e in envs if e}

    ours = names([r.get("env") or {} for r in records])
    theirs = names([r.get("machine") or {} for r in plain_rows])
    missing = sum(1 for r in plain_rows if not r.get("machine"))
    text = f"ptbench's records ran on {', '.join(sorted(ours)) or 'an unrecorded machine'}"
    text += f"; the plain rows on {', '.join(sorted(theirs))}" if theirs else ""
    text += f" ({missing} plain rows name no machine)" if missing else ""
    return text + "."
