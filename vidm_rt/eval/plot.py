"""Plots written as PNG with Pillow (no plotting library needed; Pillow is the `video` extra):
a line plot over a shared integer x axis (the quality reports) and a scatter plot with error
bars over a real, optionally logarithmic x axis (quality against time)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (140, 86, 75), (227, 119, 194), (23, 190, 207)]
GREY = (120, 120, 120)
LEFT, RIGHT, TOP, BOTTOM = 60, 150, 44, 45
Point = tuple[float, float, float]  # x, y, error bar half-height


def _image(size: tuple[int, int]) -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise ImportError("the plot needs Pillow: pip install 'vidm-rt[video]'",
                          name="PIL") from None
    img = Image.new("RGB", size, "white")
    return img, ImageDraw.Draw(img)


def y_range(values: Sequence[float]) -> tuple[float, float]:
    """The y axis: the values' span padded by 8%, the span at least 1 and 5% of the largest
    magnitude, so that the six one-decimal tick labels differ even for a single value (one FVD
    set of 857.01 would otherwise be labelled 856.9 ... 857.1, ticks repeating)."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.05 * max(abs(lo), abs(hi)), 1.0)
    mid = (lo + hi) / 2
    lo, hi = min(lo, mid - span / 2), max(hi, mid + span / 2)
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def tick_labels(lo: float, hi: float) -> list[str]:
    """The y axis's six labels, bottom to top."""
    return [f"{lo + (hi - lo) * k / 5:.1f}" for k in range(6)]


def _frame(draw: Any, size: tuple[int, int], lo: float, hi: float, y_at: Callable[[float], float],
           guides: dict[str, float], title: str, xlabel: str, ylabel: str) -> None:
    """Axes box, y ticks, dashed horizontal guides and the labels."""
    w, h = size
    draw.rectangle([LEFT, TOP, w - RIGHT, h - BOTTOM], outline="black")
    for k, label in enumerate(tick_labels(lo, hi)):
        y = lo + (hi - lo) * k / 5
        draw.line([LEFT - 4, y_at(y), LEFT, y_at(y)], fill="black")
        draw.text((4, y_at(y) - 6), label, fill="black")
    for name, y in guides.items():
        for x0 in range(LEFT, w - RIGHT, 8):
            draw.line([x0, y_at(y), min(x0 + 4, w - RIGHT), y_at(y)], fill=GREY)
        draw.text((w - RIGHT + 6, y_at(y) - 6), name, fill=GREY)
    draw.text((LEFT, 6), title, fill="black")
    draw.text(((w - RIGHT + LEFT) // 2 - 20, h - 18), xlabel, fill="black")
    draw.text((4, TOP - 22), ylabel, fill="black")


def _legend(draw: Any, x: float, name: str, colour: tuple[int, int, int]) -> float:
    """One legend entry in the row under the title (the right margin holds the guides' labels);
    returns where the next one starts."""
    draw.line([x, 28, x + 14, 28], fill=colour, width=2)
    draw.text((x + 18, 22), name, fill=colour)
    return x + 18 + draw.textlength(name) + 16


def _save(img: Any, path: Path) -> Path:
    with atomic_write(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def line_plot_png(path: Path, series: dict[str, list[float]], title: str, xlabel: str,
                  ylabel: str, guides: dict[str, float] | None = None,
                  size: tuple[int, int] = (720, 420)) -> Path:
    """Draw `series` (name -> y per x = 0, 1, ...) and dashed horizontal `guides`."""
    img, draw = _image(size)
    w, h = size
    guides = guides or {}
    lo, hi = y_range([y for values in series.values() for y in values] + list(guides.values()))
    n = max(len(v) for v in series.values())

    def at(i: float, y: float) -> tuple[float, float]:
        return (LEFT + (w - LEFT - RIGHT) * (i / max(n - 1, 1)),
                TOP + (h - TOP - BOTTOM) * (hi - y) / (hi - lo))

    _frame(draw, size, lo, hi, lambda y: at(0, y)[1], guides, title, xlabel, ylabel)
    for i in range(n):  # x ticks
        px, _ = at(i, lo)
        draw.line([px, h - BOTTOM, px, h - BOTTOM + 4], fill="black")
        if n <= 20 or i % max(1, n // 16) == 0:
            draw.text((px - 4, h - BOTTOM + 6), str(i), fill="black")
    legend_x = float(LEFT)
    for c, (name, values) in enumerate(series.items()):
        colour = COLOURS[c % len(COLOURS)]
        points = [at(i, v) for i, v in enumerate(values)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        legend_x = _legend(draw, legend_x, name, colour)
    return _save(img, path)


def scatter_plot_png(path: Path, series: dict[str, list[Point]], title: str, xlabel: str,
                     ylabel: str, guides: dict[str, float] | None = None, log_x: bool = True,
                     labels: dict[tuple[float, float], str] | None = None,
                     size: tuple[int, int] = (820, 480)) -> Path:
    """Points (x, y, error) per series with vertical error bars, dashed horizontal `guides`
    and an optional text label next to chosen points (keyed by their (x, y))."""
    img, draw = _image(size)
    w, h = size
    guides = guides or {}
    points = [p for values in series.values() for p in values]
    lo, hi = y_range([y + s * e for _, y, e in points for s in (-1, 1)] + list(guides.values()))
    scale = math.log10 if log_x else float
    xs = [scale(x) for x, _, _ in points]
    x_lo, x_hi = min(xs), max(xs)
    x_pad = max(x_hi - x_lo, 1e-9) * 0.05
    x_lo, x_hi = x_lo - x_pad, x_hi + x_pad

    def at(x: float, y: float) -> tuple[float, float]:
        return (LEFT + (w - LEFT - RIGHT) * (scale(x) - x_lo) / (x_hi - x_lo),
                TOP + (h - TOP - BOTTOM) * (hi - y) / (hi - lo))

    _frame(draw, size, lo, hi, lambda y: at(10 ** x_lo if log_x else x_lo, y)[1], guides,
           title, xlabel, ylabel)
    ticks = ([10 ** e * m for e in range(math.floor(x_lo), math.ceil(x_hi) + 1) for m in (1, 2, 5)]
             if log_x else [x_lo + (x_hi - x_lo) * k / 5 for k in range(6)])
    for x in ticks:
        if x_lo <= scale(x) <= x_hi:
            px, _ = at(x, lo)
            draw.line([px, h - BOTTOM, px, h - BOTTOM + 4], fill="black")
            draw.text((px - 8, h - BOTTOM + 6), f"{x:g}", fill="black")
    legend_x = float(LEFT)
    for c, (name, values) in enumerate(series.items()):
        colour = COLOURS[c % len(COLOURS)]
        for x, y, err in values:
            px, py = at(x, y)
            if err:
                draw.line([px, at(x, y - err)[1], px, at(x, y + err)[1]], fill=colour)
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
            if labels and (x, y) in labels:
                draw.text((px + 5, py - 12), labels[(x, y)], fill=colour)
        legend_x = _legend(draw, legend_x, name, colour)
    return _save(img, path)
