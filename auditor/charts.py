"""Small inline SVG charts for the report: markup only (no script), every label escaped, colours from the
report's stylesheet through classes (the Content-Security-Policy forbids inline style attributes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    css: str = "bar"  # "bar", "bar spike", "bar weak", "bar strong", ...
    tooltip: str | None = None


def sparkline(values: Sequence[float | None], width: int = 140, height: int = 30) -> Markup:
    """A trend line over past runs (oldest first); gaps where a value was not computed."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return Markup("")
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = [
        f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}"
        for i, v in enumerate(values) if v is not None
    ]
    return Markup(  # noqa: S704 - numbers only
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="trend over {len(values)} audits"><polyline points="{" ".join(points)}"/></svg>'
    )


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 900, height: int = 180,
              threshold: float | None = None, threshold_label: str = "") -> Markup:
    """Vertical bars with an optional horizontal threshold line; each bar has a tooltip."""
    if not bars:
        return Markup("")
    top = max([b.value for b in bars] + [threshold or 0]) or 1.0
    plot_height = height - 30
    gap = 2 if len(bars) > 40 else 6
    bar_width = max(1.0, (width - gap * len(bars)) / len(bars))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for i, bar in enumerate(bars):
        bar_height = bar.value / top * plot_height
        x = i * (bar_width + gap)
        tip = escape(bar.tooltip or f"{bar.label}: {bar.value:g}")
        parts.append(f'<rect class="{escape(bar.css)}" x="{x:.1f}" y="{plot_height - bar_height:.1f}" '
                     f'width="{bar_width:.1f}" height="{max(bar_height, 0.5):.1f}"><title>{tip}</title></rect>')
        if len(bars) <= 16:
            parts.append(f'<text class="axis" x="{x + bar_width / 2:.1f}" y="{height - 12}" '
                         f'text-anchor="middle">{escape(bar.label)}</text>')
    if len(bars) > 16:  # first and last label only, when bars are many
        parts.append(f'<text class="axis" x="0" y="{height - 12}">{escape(bars[0].label)}</text>')
        parts.append(f'<text class="axis" x="{width}" y="{height - 12}" text-anchor="end">'
                     f'{escape(bars[-1].label)}</text>')
    if threshold is not None:
        y = plot_height - threshold / top * plot_height
        parts.append(f'<line class="threshold" x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}"/>')
        label_y = y - 4 if y > 14 else y + 12  # keep the label inside the chart
        parts.append(f'<text class="axis" x="{width}" y="{label_y:.1f}" text-anchor="end">'
                     f'{escape(threshold_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text went through escape()
