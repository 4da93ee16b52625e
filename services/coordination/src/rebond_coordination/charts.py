"""Charts drawn on the server as SVG: no script, no CDN, readable without colour.

Each bar carries its value as text beside it; a suppressed value is drawn as no bar with the
word "secret", so the chart never shows what the tables hide, and a colour-blind reader (or a
screen reader, through the `<title>` and `<desc>`) loses nothing.
"""

from collections.abc import Sequence

from markupsafe import Markup, escape


def bar_chart(
    title: str, bars: Sequence[tuple[str, int | float | None]], *, unit: str = "", chart_id: str
) -> Markup:
    """Horizontal bars, one per `(label, value)`; `value` None is a suppressed value."""
    label_width, bar_width, row, top = 200, 360, 28, 8
    largest = max((value for _, value in bars if value is not None), default=0) or 1
    height = top + row * max(len(bars), 1) + 8
    described = (
        "; ".join(f"{label} : {_number(value, unit)}" for label, value in bars) or "aucune donnée"
    )
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {label_width + bar_width + 110} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(described)}</desc>',
    ]
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" class="chart-label">'
            f"{escape(label)}</text>"
        )
        if value is None:
            parts.append(
                f'<text x="{label_width + 4}" y="{y + 17}" class="chart-secret">secret</text>'
            )
            continue
        width = max(1.0, bar_width * value / largest) if value else 0
        parts.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{width:.1f}" height="{row - 10}" '
            'class="chart-bar"/>'
        )
        parts.append(
            f'<text x="{label_width + width + 6:.1f}" y="{y + 17}" class="chart-value">'
            f"{escape(_number(value, unit))}</text>"
        )
    if not bars:
        parts.append(f'<text x="8" y="{top + 17}">Aucune donnée pour ces filtres.</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)


def _number(value: int | float | None, unit: str) -> str:
    if value is None:
        return "secret"
    if isinstance(value, float):
        text = f"{value:.0%}" if unit == "%" else f"{value:.1f}".replace(".", ",")
        return text if unit == "%" else f"{text} {unit}".strip()
    return f"{value:,}".replace(",", " ") + (f" {unit}" if unit else "")
