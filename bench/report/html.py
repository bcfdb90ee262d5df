"""``index.html``: the tables and figures of one report on one self-contained page (relative links only)."""

from __future__ import annotations

import html

CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
figure { margin: 1.5em 0; }
.note { color: #555; font-size: 0.85em; }
"""


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """``sections``: (heading, HTML body) in order."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, body in sections:
        out += [f"<h2>{html.escape(heading)}</h2>", body]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def figure(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'
