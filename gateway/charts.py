"""Horizontal bar charts drawn on the server as inline SVG (no scripts, no external requests).

Colours come from classes in ``/static/site.css`` (``bar``, ``bar-win``), so the page works under
a ``style-src 'self'`` content security policy. Each chart is an ``<svg role="img">`` with a
``<title>`` naming it and a ``<title>`` per bar for screen readers; pages show the same numbers in
a table as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 320
ROW = 34
LABEL_CHARS = 48


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    highlight: bool = False


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(title: str, bars: Sequence[Bar], value_text: Callable[[int], str] = str) -> Markup:
    """A captioned SVG bar chart; bar lengths are proportional to values (integers only)."""
    if not bars:
        return Markup("")
    top = max((bar.value for bar in bars), default=0) or 1
    height = ROW * len(bars) + 4
    parts = [f'<figure><figcaption>{escape(title)}</figcaption>'
             f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, bar in enumerate(bars):
        y = i * ROW
        length = 0 if bar.value <= 0 else max(2, (bar.value * (WIDTH - 90)) // top)
        css = "bar-win" if bar.highlight else "bar"
        label = escape(_short(bar.label))
        value = escape(value_text(bar.value))
        parts.append(
            f'<g><title>{escape(bar.label)}: {value}</title>'
            f'<text x="0" y="{y + 12}" class="chart-label">{label}</text>'
            f'<rect x="0" y="{y + 16}" width="{length}" height="14" class="{css}"/>'
            f'<text x="{length + 4}" y="{y + 28}" class="chart-value">{value}</text></g>'
        )
    parts.append("</svg></figure>")
    return Markup("".join(parts))
