"""Point labels that never overlap: adjustText places them, and a check proves it after drawing.

Hand-placed offsets (``xytext=(4, 3)``) collide as soon as two methods have close scores and counts (PT and DePT
share 7,680 parameters). ``place_labels`` hands the label texts of one axes to adjustText (a deterministic
force layout: its only randomness is a fixed-seed jitter for texts on the same spot), with the points as
obstacles, and repeats with more room while any two label boxes still intersect. ``overlaps`` is the check the
tests use and the figures run once more before saving.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox

ROUNDS = 4  # adjustText passes, each with more padding around every box


def boxes(fig, texts: Sequence[Text]) -> list[Bbox]:
    """Window extents (display pixels) of ``texts`` after a full draw of ``fig``."""
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts]


def overlaps(fig, texts: Sequence[Text]) -> list[tuple[int, int]]:
    """Index pairs of ``texts`` whose drawn boxes intersect (empty when every label stands apart)."""
    fig.canvas.draw()
    found = boxes(fig, texts)
    return [
        (i, j) for i in range(len(found)) for j in range(i + 1, len(found)) if found[i].overlaps(found[j])
    ]


def place_labels(ax: Axes, texts: list[Text], xs: Sequence[float], ys: Sequence[float]) -> None:
    """Move ``texts`` (already added to ``ax`` at their points ``xs``, ``ys``) apart, with thin leader lines.

    Call after the figure's layout is final (``fig.canvas.draw()`` once, then freeze the layout engine):
    adjustText works in display coordinates."""
    from adjustText import adjust_text

    if len(texts) < 2:
        return
    fig = ax.figure
    arrows: list = []
    for attempt in range(ROUNDS):
        for arrow in arrows:  # the previous pass's leader lines
            arrow.remove()
        pad = 1.1 + 0.15 * attempt
        _, arrows = adjust_text(
            texts,
            x=list(xs),
            y=list(ys),
            ax=ax,
            expand=(pad, pad + 0.2),
            force_static=(0.3, 0.5),
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.4},
            iter_lim=400,
        )
        if not overlaps(fig, texts):
            return
