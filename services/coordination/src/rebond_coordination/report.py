"""The one-page statistics report, as PNG or PDF (matplotlib, no pyplot: no global state, safe
from a worker thread). What it shows comes from the same protected tables as the page."""

import io
from typing import Literal

from rebond_coordination.domain import association_name
from rebond_coordination.statistics import TOTAL, Report, rate


def render(
    report: Report, *, period_text: str, filters_text: str, fmt: Literal["png", "pdf"]
) -> bytes:
    """An A4 landscape page: offered referrals per association, answer rates, follow-up."""
    # Imported here: matplotlib takes seconds to import, paid on the first report, not at start.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.69, 8.27), dpi=100)
    figure.suptitle("Portail du rebond des entrepreneurs — statistiques anonymes", fontsize=16)
    figure.text(0.5, 0.91, f"{period_text}. {filters_text}", ha="center", fontsize=10)
    bars = figure.add_axes((0.08, 0.50, 0.38, 0.34))
    offered = report.capacity
    labels, values, hidden = [], [], []
    for association in offered.columns:
        labels.append(association_name(association))
        shown = offered.cell(TOTAL, association).shown
        values.append(shown or 0)
        hidden.append(shown is None)
    positions = list(range(len(labels)))
    bars.barh(positions, values, color="#0b4f8a")
    bars.set_yticks(positions, labels)
    bars.invert_yaxis()
    bars.set_title("Orientations proposées par association")
    for position, value, secret in zip(positions, values, hidden, strict=True):
        bars.text(value, position, "  secret" if secret else f"  {value}", va="center", fontsize=9)
    table_axes = figure.add_axes((0.52, 0.50, 0.45, 0.34))
    table_axes.axis("off")
    table_axes.set_title("Réponses des associations")
    rows = []
    for association in report.answers.rows:
        whole = report.answers.cell(association, TOTAL)
        accepted = rate(report.answers.cell(association, "accepted"), whole)
        expired = rate(report.answers.cell(association, "expired"), whole)
        times = report.answer_times[association]
        rows.append([
            association_name(association),
            "secret" if whole.shown is None else str(whole.shown),
            _percent(accepted), _percent(expired),
            "secret" if times.median is None else f"{times.median / 3600:.1f} h",
        ])  # fmt: skip
    if rows:
        table = table_axes.table(
            cellText=rows,
            colLabels=["Association", "Réponses", "Acceptées", "Expirées", "1re réponse (médiane)"],
            loc="upper center",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.4)
    else:
        table_axes.text(0.5, 0.5, "Aucune réponse pour ces filtres.", ha="center")
    figure.text(
        0.08, 0.30,
        "Seules les personnes ayant accepté les statistiques anonymes sont comptées.\n"
        "« secret » : moins de 5 personnes, ou case masquée pour qu'une autre ne puisse pas être "
        "recalculée à partir des totaux.",
        fontsize=9,
    )  # fmt: skip
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=_metadata(fmt))
    return buffer.getvalue()


def _percent(value: float | None) -> str:
    return "secret" if value is None else f"{value:.0%}"


def _metadata(fmt: str) -> dict[str, str]:
    title = "Statistiques du Portail du rebond des entrepreneurs"
    return {"Title": title} if fmt == "pdf" else {"Title": title, "Software": "Rebond"}
