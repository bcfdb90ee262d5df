"""One table as data (headers, rows of cells, column alignment) and its three renderers: Markdown, LaTeX
(booktabs) and HTML. Every table of a report (results, failed runs, comparison, PSCP, published numbers) is
built once as a ``Table`` and rendered by these, so the HTML page never parses Markdown back.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Cell:
    text: str  # the value, the part that is bold when best
    note: str = ""  # e.g. ``(n)`` and significance marks, never bold
    best: bool = False


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    align: str = ""  # one letter per column, ``l`` or ``r``; empty: every column left

    def add(self, *cells: Cell | object) -> None:
        """A row; plain values become ``Cell(str(value))``."""
        self.rows.append([c if isinstance(c, Cell) else Cell(str(c)) for c in cells])

    def alignment(self) -> str:
        return self.align or "l" * len(self.headers)


def latex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$"),
        ("^", r"\textasciicircum{}"), ("~", r"$\sim$"), ("<", "$<$"), (">", "$>$"),
    ):  # fmt: skip
        text = text.replace(a, b)
    for a, b in (
        ("±", r"$\pm$"), ("—", "--"), ("†", r"$^\dagger$"), ("‡", r"$^\ddagger$"), ("Δ", r"$\Delta$"),
        ("−", "$-$"), ("×", r"$\times$"),
    ):  # fmt: skip
        text = text.replace(a, b)
    return text


def _joined(text: str, note: str) -> str:
    return f"{text} {note}".strip() if note else text


def to_markdown(table: Table) -> str:
    """A pipe table; ``|`` inside a cell is escaped (``\\|``)."""
    rule = "|".join("---:" if a == "r" else "---" for a in table.alignment())
    lines = ["| " + " | ".join(table.headers) + " |", f"|{rule}|"]
    for row in table.rows:
        parts = [_joined(f"**{c.text}**" if c.best else c.text, c.note) for c in row]
        lines.append("| " + " | ".join(p.replace("|", "\\|") for p in parts) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: Table, caption: str = "", float_env: str | None = None) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), inside ``float_env`` (``table``, ``table*``)
    with ``caption`` when given."""
    lines = [rf"\begin{{{float_env}}}[t]", r"\centering", r"\small"] if float_env else []
    lines += [rf"\begin{{tabular}}{{{table.alignment()}}}", r"\toprule"]
    lines += [" & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    for row in table.rows:
        parts = []
        for c in row:
            text = latex_escape(c.text)
            parts.append(_joined(rf"\textbf{{{text}}}" if c.best else text, latex_escape(c.note)))
        lines.append(" & ".join(parts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if float_env:
        lines += [rf"\caption{{{latex_escape(caption)}}}"] if caption else []
        lines.append(rf"\end{{{float_env}}}")
    return "\n".join(lines) + "\n"


def to_html(table: Table, css_class: str = "") -> str:
    out = [f'<table class="{css_class}">' if css_class else "<table>", "<thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in table.headers]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        cells = []
        for c in row:
            text = f"<b>{html.escape(c.text)}</b>" if c.best else html.escape(c.text)
            cells.append(
                f"<td>{text} <small>{html.escape(c.note)}</small></td>" if c.note else f"<td>{text}</td>"
            )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"
