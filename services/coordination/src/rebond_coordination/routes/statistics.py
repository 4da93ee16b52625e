"""Statistics (#21 item 5): filters, protected tables, charts, CSV and the one-page report."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from rebond_contracts.associations import AssociationId
from rebond_contracts.geography import REGIONS
from rebond_coordination import report as one_page
from rebond_coordination.charts import bar_chart
from rebond_coordination.domain import association_name
from rebond_coordination.ports import EventsUnavailable
from rebond_coordination.statistics import (
    DIMENSIONS,
    OUTCOME_COLUMN_LABELS,
    OUTCOME_COLUMNS,
    TOTAL,
    Dimension,
    Fact,
    Filters,
    Report,
    build_report,
)
from rebond_coordination.web import (
    STAGE_LABELS,
    Deps,
    NotFound,
    Reader,
    association_choices,
    render,
)

router = APIRouter(include_in_schema=False)
DIMENSION_LABELS = {
    "week": "Semaine", "month": "Mois", "region": "Région", "stage": "Situation",
    "association": "Association",
}  # fmt: skip


class Query:
    """The page's filters, read from the query string; a bad value is reported, never a 500."""

    def __init__(self, request: Request) -> None:
        params = request.query_params
        self.errors: list[tuple[str, str]] = []
        self.grain: Literal["week", "month"] = "month" if params.get("grain") == "month" else "week"
        self.rows: Dimension = self._choice(params.get("lignes"), "lignes", DIMENSIONS, self.grain)  # type: ignore[assignment]
        self.columns: Dimension = self._choice(
            params.get("colonnes"), "colonnes", DIMENSIONS, "association"
        )  # type: ignore[assignment]
        self.region = self._choice(params.get("region"), "region", tuple(REGIONS), None)
        self.stage = self._choice(params.get("stage"), "stage", tuple(STAGE_LABELS), None)
        associations = tuple(a.value for a in AssociationId)
        self.association = self._choice(
            params.get("association"), "association", associations, None
        )
        self.since = self._day(params.get("du"), "du")
        self.until = self._day(params.get("au"), "au")
        if self.rows == self.columns:
            self.errors.append(("colonnes", "Choisissez des colonnes différentes des lignes."))
            self.columns = "association" if self.rows != "association" else "region"
        self.params = {k: v for k, v in params.items() if v}

    def _choice(
        self, value: str | None, name: str, allowed: tuple[str, ...], default: str | None
    ) -> str | None:
        if not value:
            return default
        if value not in allowed:
            self.errors.append((name, f"Valeur inconnue pour ce filtre : « {value} »."))
            return default
        return value

    def _day(self, value: str | None, name: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.errors.append((name, "Indiquez une date au format AAAA-MM-JJ."))
            return None

    @property
    def filters(self) -> Filters:
        return Filters(region=self.region, stage=self.stage, association=self.association)

    def describe(self) -> str:
        parts = [
            f"Région : {REGIONS[self.region]}" if self.region else "",
            f"Situation : {STAGE_LABELS[self.stage]}" if self.stage else "",
            f"Association : {association_name(self.association)}" if self.association else "",
        ]
        return "; ".join(p for p in parts if p) or "Toutes régions, situations et associations"

    def period(self) -> str:
        since = self.since.isoformat() if self.since else "le début"
        until = self.until.isoformat() if self.until else "aujourd'hui"
        return f"Du {since} au {until}"


async def _report(query: Query, deps: Deps) -> Report:
    since = datetime.combine(query.since, time(), UTC) if query.since else None
    until = datetime.combine(query.until + timedelta(days=1), time(), UTC) if query.until else None
    rows = await deps.store.stat_rows(since, until)
    facts = [
        Fact(
            r["kind"],
            r["at"],
            r["region"],
            r["stage"],
            r["association_id"],
            r["reason"],
            r["seconds_to_answer"],
        )
        for r in rows
    ]
    facts += await _registrations(deps, since, until)
    effective, _ = await deps.store.directory()
    capacities = {a: v.weekly_capacity for a, v in effective.items()}
    return build_report(
        facts, filters=query.filters, grain=query.grain, rows=query.rows, columns=query.columns,
        capacities=capacities,
    )  # fmt: skip


async def _registrations(deps: Deps, since: datetime | None, until: datetime | None) -> list[Fact]:
    """A fact per confirmed registration of the conferences the events service lists (those to
    come), dated by the conference and placed in its region: the events service holds the
    registrations, and is asked with each association's organiser key. An association without
    a key, or the service unreachable, adds nothing (the table then counts fewer)."""
    found: list[Fact] = []
    for association in AssociationId:
        try:
            conferences = await deps.events.list_events(association.value)
        except EventsUnavailable:
            continue
        for conference in conferences:
            if (since and conference.starts_at < since) or (
                until and conference.starts_at >= until
            ):
                continue
            found += [
                Fact("registration", conference.starts_at, conference.region)
            ] * conference.confirmed
    return found


def label_of(dimension: str, key: str) -> str:
    if key == TOTAL:
        return "Total"
    if dimension == "association":
        return association_name(key)
    if dimension == "region":
        return REGIONS.get(key, key)
    if dimension == "stage":
        return STAGE_LABELS.get(key, key)
    return key


@router.get("/statistiques", response_class=HTMLResponse)
async def statistics(request: Request, signed: Reader, deps: Deps) -> HTMLResponse:
    query = Query(request)
    report = await _report(query, deps)
    offered = report.capacity
    chart = bar_chart(
        "Orientations proposées par association",
        [(association_name(a), offered.cell(TOTAL, a).shown) for a in offered.columns],
        chart_id="graphique-orientations",
    )
    regions = report.registrations
    registrations_chart = bar_chart(
        "Inscriptions aux conférences par région",
        [(REGIONS.get(r, r), regions.cell(r, "registrations").shown) for r in regions.rows],
        chart_id="graphique-inscriptions",
    )
    return render(
        request, "statistics.html",
        {"query": query, "report": report, "chart": chart, "registrations_chart": registrations_chart,
         "label_of": label_of, "dimension_labels": DIMENSION_LABELS,
         "outcome_columns": OUTCOME_COLUMNS, "outcome_labels": OUTCOME_COLUMN_LABELS,
         "associations": association_choices(),
         "errors": query.errors, "export": "&".join(f"{k}={v}" for k, v in query.params.items())},
        signed=signed, status_code=422 if query.errors else 200,
    )  # fmt: skip


@router.get("/statistiques.csv")
async def statistics_csv(request: Request, signed: Reader, deps: Deps) -> Response:
    """The main table as shown (suppressed cells read "secret")."""
    query = Query(request)
    table = (await _report(query, deps)).offered
    out = io.StringIO()
    writer = csv.writer(out)
    columns = [*table.columns, TOTAL]
    writer.writerow([DIMENSION_LABELS[query.rows], *(label_of(query.columns, c) for c in columns)])
    for row in [*table.rows, TOTAL]:
        cells = [table.cell(row, c).shown for c in columns]
        writer.writerow([label_of(query.rows, row), *("secret" if v is None else v for v in cells)])
    await deps.store.log(signed.scope, "statistics_exported", deps.clock(), format="csv")
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM, so spreadsheet software reads the accents right
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rebond-statistiques.csv"'},
    )


@router.get("/statistiques/rapport.{fmt}")
async def statistics_report(request: Request, fmt: str, signed: Reader, deps: Deps) -> Response:
    if fmt not in ("png", "pdf"):
        raise NotFound()
    query = Query(request)
    report = await _report(query, deps)
    content = await run_in_threadpool(
        one_page.render, report, period_text=query.period(), filters_text=query.describe(),
        fmt=fmt,  # type: ignore[arg-type]
    )  # fmt: skip
    await deps.store.log(signed.scope, "statistics_exported", deps.clock(), format=fmt)
    return Response(
        content, media_type="image/png" if fmt == "png" else "application/pdf",
        headers={"Content-Disposition": f'attachment; filename="rebond-statistiques.{fmt}"'},
    )  # fmt: skip
