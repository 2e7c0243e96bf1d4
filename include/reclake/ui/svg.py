"""Small server-side SVG charts for the Airflow UI view: paired histograms (a snapshot beside
its baseline), paired rate bars and per-hour series. Pure: numbers in, markup out; every
value is also in a <title> so a hover (or a test) reads the exact figure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from reclake.snapshots.profile import fractions

# Colours of the current snapshot and its baseline, and of the series of a time plot.
CURRENT, BASELINE = "#017cee", "#b0b7c3"
SERIES_COLOURS = ("#017cee", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b")
FONT = "font-family='sans-serif' font-size='10'"


def number(value: float | int | None, digits: int = 4) -> str:
    """A figure as text: integers plainly, floats with up to `digits` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{escape(label, quote=True)}'>" + "".join(body) + "</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, cls: str) -> str:
    return (
        f"<rect class='{cls}' x='{x:.1f}' y='{y:.1f}' width='{max(w, 0.5):.1f}' "
        f"height='{h:.1f}' fill='{fill}'><title>{escape(tip)}</title></rect>"
    )


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#666'/>"


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {FONT}>{escape(text)}</text>"


def histogram_pair(
    edges: Sequence[float],
    counts: Sequence[int],
    baseline: Sequence[int] | None,
    *,
    label: str,
    width: int = 300,
    height: int = 120,
) -> str:
    """Two histograms on shared bins, as shares of their own non-null values: the current
    snapshot's bar beside the baseline's in every bin (drift shows as uneven pairs)."""
    pad, axis = 4, 14
    bins = len(counts)
    if bins == 0:
        return _svg(
            width,
            height,
            f"{label}: no values",
            [_text(width / 2, height / 2, "no values", "middle")],
        )
    shares = fractions(list(counts))
    base = fractions(list(baseline)) if baseline is not None else None
    top = max([*shares, *(base or []), 1e-12])
    plot_h = height - axis - pad
    slot = (width - 2 * pad) / bins
    bar = slot / 2 if base is not None else slot * 0.9
    body = [_line(pad, pad + plot_h, width - pad, pad + plot_h)]
    for i in range(bins):
        x = pad + i * slot
        span = f"[{number(edges[i])}, {number(edges[i + 1])})"
        if base is not None:
            h = base[i] / top * plot_h
            tip = f"{label} {span}: baseline {base[i]:.1%} ({baseline[i]})"
            body.append(
                _rect(
                    x + slot * 0.05, pad + plot_h - h, bar * 0.9, h, BASELINE, tip, "bar baseline"
                )
            )
            x += bar
        h = shares[i] / top * plot_h
        tip = f"{label} {span}: {shares[i]:.1%} ({counts[i]})"
        body.append(
            _rect(x + slot * 0.05, pad + plot_h - h, bar * 0.9, h, CURRENT, tip, "bar current")
        )
    body.append(_text(pad, height - 2, number(edges[0])))
    body.append(_text(width - pad, height - 2, number(edges[-1]), "end"))
    return _svg(width, height, f"{label} distribution", body)


def rate_pair(
    rate: float, baseline: float | None, *, label: str, width: int = 160, height: int = 34
) -> str:
    """Two horizontal bars on a 0-100 % scale: the current rate over the baseline's."""
    pad, text_w = 2, 42
    full = width - text_w - 2 * pad
    rows = [("current", rate, CURRENT)]
    if baseline is not None:
        rows.append(("baseline", baseline, BASELINE))
    body = []
    for i, (name, value, colour) in enumerate(rows):
        y = pad + i * 15
        tip = f"{label}: {name} {value:.2%}"
        body.append(_rect(pad, y, full, 12, "#eef0f3", tip, "track"))
        body.append(_rect(pad, y, full * min(max(value, 0.0), 1.0), 12, colour, tip, f"bar {name}"))
        body.append(_text(width - pad, y + 10, f"{value:.1%}", "end"))
    return _svg(width, height, f"{label} null rate", body)


def series_plot(
    ticks: Sequence[str],
    series: dict[str, Sequence[int | float]],
    *,
    label: str,
    width: int = 900,
    height: int = 260,
) -> str:
    """Lines over a shared x axis (e.g. arrival hours), one per series, with a legend; each
    point carries its value in a tooltip."""
    left, right, top_pad, bottom = 56, 10, 22, 30
    n = len(ticks)
    if n == 0:
        return _svg(
            width, height, f"{label}: no data", [_text(width / 2, height / 2, "no data", "middle")]
        )
    peak = max([v for values in series.values() for v in values] + [1])
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, top_pad + plot_h - v / peak * plot_h

    body = [
        _line(left, top_pad + plot_h, width - right, top_pad + plot_h),
        _line(left, top_pad, left, top_pad + plot_h),
        _text(left - 4, top_pad + 4, number(peak), "end"),
        _text(left - 4, top_pad + plot_h, "0", "end"),
        _text(left, height - 8, ticks[0]),
        _text(width - right, height - 8, ticks[-1], "end"),
    ]
    for k, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        points = [xy(i, v) for i, v in enumerate(values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f"<polyline class='series' data-series='{escape(name, quote=True)}' points='{path}' "
            f"fill='none' stroke='{colour}' stroke-width='1.5'/>"
        )
        for (x, y), tick, v in zip(points, ticks, values, strict=True):
            body.append(
                f"<circle class='point' cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{colour}'>"
                f"<title>{escape(f'{name} {tick}: {number(v)}')}</title></circle>"
            )
        lx = left + 8 + k * 150
        body.append(f"<rect x='{lx}' y='4' width='10' height='10' fill='{colour}'/>")
        body.append(_text(lx + 14, 13, name))
    return _svg(width, height, label, body)
