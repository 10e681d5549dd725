"""A bar chart of sends and conversions per day as inline SVG (server-rendered:
no chart library, no script), with a title and a text table for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 200, 28
SENT, CONVERTED = "#2f6fb0", "#d9822b"


def daily_chart(days: Sequence[dict[str, Any]], title: str, sent_label: str, converted_label: str) -> Markup:
    """``days``: ``[{"day", "sent", "converted"}]`` oldest first."""
    top = max([1, *(d["sent"] for d in days), *(d["converted"] for d in days)])
    slot = (WIDTH - 2 * PAD) / max(1, len(days))
    bar = max(1.0, slot / 2 - 2)
    scale = (HEIGHT - 2 * PAD) / top
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<text x="4" y="{PAD}" font-size="11" fill="#555">{top}</text>',
    ]
    for i, d in enumerate(days):
        x = PAD + i * slot
        for offset, key, colour, label in (
            (0, "sent", SENT, sent_label),
            (bar + 1, "converted", CONVERTED, converted_label),
        ):
            h = d[key] * scale
            parts.append(
                f'<rect class="bar-{key}" data-day="{escape(d["day"])}" data-value="{d[key]}" '
                f'x="{x + offset:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}">'
                f"<title>{escape(d['day'])} {escape(label)}: {d[key]}</title></rect>"
            )
        if i % max(1, len(days) // 7) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" fill="#555">{escape(d["day"][5:])}</text>'
            )
    parts.append(
        f'<rect x="{WIDTH - 170}" y="6" width="10" height="10" fill="{SENT}"/>'
        f'<text x="{WIDTH - 156}" y="15" font-size="11">{escape(sent_label)}</text>'
        f'<rect x="{WIDTH - 90}" y="6" width="10" height="10" fill="{CONVERTED}"/>'
        f'<text x="{WIDTH - 76}" y="15" font-size="11">{escape(converted_label)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
