"""A line plot written as PNG with Pillow (no plotting library needed; Pillow is the `video`
extra). Enough for the quality report: one line per series over a shared integer x axis."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def line_plot_png(path: Path, series: dict[str, list[float]], title: str, xlabel: str,
                  ylabel: str, guides: dict[str, float] | None = None,
                  size: tuple[int, int] = (720, 420)) -> Path:
    """Draw `series` (name -> y per x = 0, 1, ...) and dashed horizontal `guides`."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise ImportError("the plot needs Pillow: pip install 'vidm-rt[video]'",
                          name="PIL") from None
    w, h = size
    left, right, top, bottom = 60, 150, 44, 45
    ys = [y for values in series.values() for y in values] + list((guides or {}).values())
    lo, hi = min(ys), max(ys)
    pad = max(hi - lo, 1.0) * 0.08
    lo, hi = lo - pad, hi + pad
    n = max(len(v) for v in series.values())
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)

    def at(i: float, y: float) -> tuple[float, float]:
        x = left + (w - left - right) * (i / max(n - 1, 1))
        return x, top + (h - top - bottom) * (hi - y) / (hi - lo)

    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for k in range(6):  # y ticks
        y = lo + (hi - lo) * k / 5
        _, py = at(0, y)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((4, py - 6), f"{y:.1f}", fill="black")
    for i in range(n):  # x ticks
        px, _ = at(i, lo)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        if n <= 20 or i % max(1, n // 16) == 0:
            draw.text((px - 4, h - bottom + 6), str(i), fill="black")
    for name, y in (guides or {}).items():
        _, py = at(0, y)
        for x0 in range(left, w - right, 8):
            draw.line([x0, py, min(x0 + 4, w - right), py], fill=(120, 120, 120))
        draw.text((w - right + 6, py - 6), name, fill=(120, 120, 120))
    legend_x = float(left)
    for c, (name, values) in enumerate(series.items()):
        colour = COLOURS[c % len(COLOURS)]
        points = [at(i, v) for i, v in enumerate(values)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        # The legend is a row under the title: the right margin holds the guides' labels.
        draw.line([legend_x, 28, legend_x + 14, 28], fill=colour, width=2)
        draw.text((legend_x + 18, 22), name, fill=colour)
        legend_x += 18 + draw.textlength(name) + 16
    draw.text((left, 6), title, fill="black")
    draw.text(((w - right + left) // 2 - 20, h - 18), xlabel, fill="black")
    draw.text((4, top - 22), ylabel, fill="black")
    with atomic_write(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
