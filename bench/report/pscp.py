"""PSCP, PEFT-Bench's cost-aware score: the average score discounted by three costs.

``PSCP = P * prod_i (1 + M_i / C_i) ** (-beta_i)`` over i in {trainable parameters (p), extra inference FLOPs per
example (f), peak training memory (m)}, with PEFT-Bench's constants ``C_p = 5e8`` parameters, ``C_f = 10``
TFLOPs (1e13 FLOPs) and ``C_m = 94`` GB (1e9 bytes). ``P`` is the row's average headline test score (x100) over
every task column of the report (only rows with all of them get a PSCP); the betas default to 1 each
(``bench report --pscp-beta p,f,m``). A cost of 0 leaves the score unchanged; a cost equal to its constant
halves it (beta 1).

Extra inference FLOPs: a record may state them (``method_record.extra_inference_flops``, per example); else
they are **estimated** as ``2 * total_params * virtual_tokens`` per example (each added token passes through the
whole model at about 2 FLOPs per parameter; attention's quadratic term is ignored), and 0 for methods that add
no tokens: right for re-parameterised methods whose update merges into the weights (LoRA) and for BitFit, an
under-count for methods that add modules or key/value prefixes without input tokens (Adapter, prefix tuning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.report import table
from bench.report.table import Table
from bench.report.tables import Summary

CONSTANTS = {"p": 5e8, "f": 1e13, "m": 94e9}  # parameters, FLOPs per example, bytes
NAMES = {"p": "trainable parameters", "f": "extra inference FLOPs/example", "m": "peak training memory"}


@dataclass(frozen=True)
class Betas:
    p: float = 1.0
    f: float = 1.0
    m: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> Betas:
        """``"1,0.5,1"`` -> Betas(1, 0.5, 1); three non-negative numbers for p, f, m."""
        if not text:
            return cls()
        parts = text.split(",")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
        if len(values) != 3 or any(v < 0 or math.isnan(v) for v in values):
            raise InputError(
                f"--pscp-beta {text!r} must be three non-negative numbers p,f,m (parameters, FLOPs, memory), "
                "e.g. 1,1,1"
            )
        return cls(*values)


def pscp(score: float, params: float, flops: float, memory_bytes: float, betas: Betas = Betas()) -> float:
    """The formula for one row: ``score`` (x100), ``params`` (count), ``flops`` (per example), ``memory_bytes``."""
    factor = 1.0
    for key, value in (("p", params), ("f", flops), ("m", memory_bytes)):
        factor *= (1.0 + value / CONSTANTS[key]) ** (-getattr(betas, key))
    return score * factor


def extra_flops(record: dict) -> tuple[float | None, bool]:
    """Extra inference FLOPs per example and whether they are an estimate (see the module docstring)."""
    stated = (record.get("method_record") or {}).get("extra_inference_flops")
    if stated is not None:
        return float(stated), False
    tokens, total = record.get("virtual_tokens"), record.get("total_params")
    if not tokens:
        return 0.0, True
    return (2.0 * float(total) * float(tokens), True) if total else (None, True)


def pscp_frame(summary: Summary, runs: pd.DataFrame, betas: Betas = Betas()) -> pd.DataFrame:
    """Per row: P, the three costs, PSCP, whether FLOPs are estimated and whether memory was contended."""
    ok = runs[runs["status"] == "ok"]
    out = []
    for row in summary.rows:
        stats = [summary.cells.get((row, s, t)) for s, t in summary.columns]
        part = ok[ok["row"] == row]
        if part.empty:
            continue
        score = math.nan if any(v is None for v in stats) else float(np.mean([v.mean for v in stats]))
        flops = [extra_flops(r) for r in part["record"]]
        values = [f for f, _ in flops if f is not None]
        line = {
            "row": row,
            "P": score,
            "params": float(part["trainable_params"].mean()),
            "flops": float(np.mean(values)) if values else math.nan,
            "flops_estimated": any(e for _, e in flops),
            "memory_gb": float(part["peak_mem_bytes"].max()) / 1e9,
            "contended": bool(part["contended"].eq(True).any()),
        }
        line["PSCP"] = pscp(score, line["params"], line["flops"], line["memory_gb"] * 1e9, betas)
        out.append(line)
    return pd.DataFrame(
        out, columns=["row", "P", "params", "flops", "flops_estimated", "memory_gb", "contended", "PSCP"]
    )


def caption(betas: Betas) -> str:
    """The constants and betas, for the table's caption."""
    return (
        "PSCP = P x prod_i (1 + M_i/C_i)^(-beta_i), PEFT-Bench's cost-aware score; P: average headline test score "
        "over the report's tasks; constants C_p = 5e8 parameters, C_f = 10 TFLOPs per example, C_m = 94 GB; "
        f"betas p={betas.p:g}, f={betas.f:g}, m={betas.m:g}. FLOPs marked ~ are estimates "
        "(2 x total parameters x virtual tokens per example; 0 for methods without virtual tokens). ‡: memory "
        "measured under contention for at least one run."
    )


HEADERS = ["method", "P (avg score)", "trainable params", "extra inference FLOPs", "peak mem (GB)", "PSCP"]


def pscp_table(frame: pd.DataFrame) -> Table:
    def num(v: float, fmt: str) -> str:
        return "—" if v is None or math.isnan(v) else format(v, fmt)

    out = Table(HEADERS, align="l" + "r" * (len(HEADERS) - 1))
    for _, r in frame.iterrows():
        flops = num(r["flops"], ".3g") + (" ~" if r["flops_estimated"] and not math.isnan(r["flops"]) else "")
        memory = num(r["memory_gb"], ".2f") + (" ‡" if r["contended"] else "")
        out.add(r["row"], num(r["P"], ".1f"), num(r["params"], ".3g"), flops, memory, num(r["PSCP"], ".1f"))
    return out


def to_markdown(frame: pd.DataFrame, betas: Betas) -> str:
    return table.to_markdown(pscp_table(frame)) + "\n" + caption(betas) + "\n"


def to_latex(frame: pd.DataFrame, betas: Betas) -> str:
    """A booktabs ``table`` with the constants and betas in its caption."""
    return table.to_latex(pscp_table(frame), caption(betas), float_env="table")
