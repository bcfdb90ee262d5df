"""The report's LaTeX tables (results, comparison, PSCP) compile with pdflatex and booktabs.

pdflatex comes from Debian's ``texlive-latex-base`` and ``texlive-latex-recommended`` (booktabs), which
``.ci/run`` installs; outside CI a missing pdflatex skips this test, under ``CI`` it fails."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.test_report import records, report  # noqa: F401, F811  (the shared report fixtures)

# Compiles LaTeX (pdflatex).
pytestmark = pytest.mark.slow

DOCUMENT = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage{booktabs}
\usepackage[margin=1cm,landscape]{geometry}
\begin{document}
%s
\end{document}
"""


def _pdflatex() -> str:
    path = shutil.which("pdflatex")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("pdflatex missing: install texlive-latex-base texlive-latex-recommended, as .ci/run does")
    pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")


def test_tables_compile(report, tmp_path):  # noqa: F811
    out = report[0]
    body = "\n".join((out / name).read_text() for name in ("results.tex", "comparison.tex", "pscp.tex"))
    assert r"\toprule" in body and r"\midrule" in body and r"\bottomrule" in body
    (tmp_path / "tables.tex").write_text(DOCUMENT % body)
    proc = subprocess.run(
        [_pdflatex(), "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 1000
