"""The memory profile as an SVG line plot: live bytes per layer, one line per named series.

Layer-wise (every tensor whole), the planned arena in use, and later the patch-based curve: the caller passes
any number of series of equal length. Geometry is computed here; templates/plots/memory_profile.svg.j2 draws it.
"""
from __future__ import annotations

from .codegen.render import render

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
# Each series its own dash pattern and width (the first widest): where two series are equal, both stay visible.
DASHES = ("", "8 4", "2 3", "12 3 2 3")
WIDTHS = (4, 2.5, 1.5, 1)
# The planned arena's line: the highest arena byte in use at each layer (buffer offset + size). Where the planner
# leaves gaps between buffers it lies above the live bytes; its peak is the arena's size.
ARENA_SERIES = "planned arena: highest byte in use"
ARENA_NOTE = ("planned arena = the highest arena byte in use (offset + size): gaps between buffers count, so it can "
              "lie above the live-byte lines at a layer; its peak is the arena size")
WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 880, 36, 300
MAX_LABELS = 40


def _nice_step(peak: int, ticks: int = 5) -> int:
    raw = max(peak / ticks, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def memory_svg(title: str, layers: list[str], series: dict[str, list[int]]) -> str:
    """SVG text of the profile: x = layer in execution order, y = bytes; `series` maps a name to bytes per layer
    (ARENA_SERIES, when present, gets ARENA_NOTE under the plot)."""
    if any(len(v) != len(layers) for v in series.values()):
        raise ValueError("every series needs one value per layer")
    peak = max((max(v, default=0) for v in series.values()), default=0)
    step = _nice_step(peak)
    ymax = max(step * -(-peak // step), step)
    n = max(len(layers), 1)

    def x(i: int) -> float:
        return LEFT + (RIGHT - LEFT) * (i + 0.5) / n

    def y(v: int) -> float:
        return BOTTOM - (BOTTOM - TOP) * v / ymax

    every = max(1, -(-len(layers) // MAX_LABELS))
    lines = []
    for k, (name, values) in enumerate(series.items()):
        # a step per layer: the value holds across the layer's slot
        pts = []
        for i, v in enumerate(values):
            x0, x1 = LEFT + (RIGHT - LEFT) * i / n, LEFT + (RIGHT - LEFT) * (i + 1) / n
            pts += [f"{x0:.1f},{y(v):.1f}", f"{x1:.1f},{y(v):.1f}"]
        lines.append({"name": name, "color": COLORS[k % len(COLORS)], "points": " ".join(pts),
                      "dash": DASHES[k % len(DASHES)], "width": WIDTHS[k % len(WIDTHS)],
                      "peak": f"{max(values, default=0):,}"})
    values = {
        "title": f"{title}: live bytes per layer", "width": WIDTH, "height": HEIGHT,
        "left": LEFT, "right": RIGHT, "top": TOP, "bottom": BOTTOM,
        "yticks": [{"y": round(y(v), 1), "label": f"{v:,}"} for v in range(0, ymax + 1, step)],
        "xticks": [{"x": round(x(i), 1), "label": name} for i, name in enumerate(layers) if i % every == 0],
        "series": lines, "note": ARENA_NOTE if ARENA_SERIES in series else "",
    }
    return render("plots/memory_profile.svg.j2", values)
