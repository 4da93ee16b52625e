"""Anonymous statistics: counts of facts by period, region, stage and association, with small
cells suppressed. Pure functions, table-tested in `tests/test_statistics.py`.

Only facts of people who consented to statistics ever reach here (`projections.statistics_fact`
drops the others), and they carry no reference or contact.

**Suppression.** A count of 1 to 4 people is not shown (*primary* suppression): so few people
could be recognised by someone who knows them. 0 is shown: it describes nobody. Totals are
shown, so one hidden cell in a row whose total and other cells are shown could be recomputed by
subtraction; hence *complementary* suppression: while any row or column of the table, totals
included, has exactly one hidden cell, one more cell of that line is hidden: the smallest
non-zero inner cell, else an inner zero, else its total. Every line then has no hidden cell or
at least two, so no hidden value follows from one line's sum. This is the classic greedy
heuristic, not an optimal one: combining several lines' sums may still narrow a hidden cell to
a range (never to its exact value in the tables here, whose lines each hold two or more
hidden cells), and a table computed with other filters is protected on its own, not jointly
with this one. Rates, medians and percentiles are shown only where the counts they come from
are shown (at least 5 people for a median or a percentile).
"""

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

THRESHOLD = 5
TOTAL = "__total__"

Dimension = Literal["week", "month", "region", "stage", "association"]
DIMENSIONS: tuple[Dimension, ...] = ("week", "month", "region", "stage", "association")


@dataclass(frozen=True)
class Fact:
    kind: str
    at: datetime
    region: str | None = None
    stage: str | None = None
    association: str | None = None
    reason: str | None = None
    seconds_to_answer: float | None = None


def period(at: datetime, grain: Literal["week", "month"]) -> str:
    """'2026-S49' (ISO week, Monday to Sunday, UTC) or '2026-12'."""
    if grain == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-S{week:02d}"
    return f"{at.year}-{at.month:02d}"


def key_of(fact: Fact, dimension: Dimension) -> str:
    if dimension in ("week", "month"):
        return period(fact.at, dimension)
    value = getattr(fact, dimension)
    return value if value is not None else "inconnu"


@dataclass(frozen=True)
class Cell:
    """A count as published: `shown` is None when it is suppressed (`why` says which way)."""

    shown: int | None
    why: Literal["primary", "complementary"] | None = None

    @property
    def suppressed(self) -> bool:
        return self.shown is None


@dataclass
class Table:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def cell(self, row: str, column: str) -> Cell:
        return self.cells[(row, column)]

    def total(self) -> Cell:
        return self.cells[(TOTAL, TOTAL)]


def protect(
    counts: dict[tuple[str, str], int],
    rows: Sequence[str],
    columns: Sequence[str],
    threshold: int = THRESHOLD,
) -> Table:
    """The table of `counts` (missing cells are 0) with its totals, row `TOTAL` and column
    `TOTAL`, and the suppression described in the module."""
    all_rows, all_columns = [*rows, TOTAL], [*columns, TOTAL]
    value: dict[tuple[str, str], int] = {}
    for row in rows:
        for column in columns:
            value[(row, column)] = counts.get((row, column), 0)
        value[(row, TOTAL)] = sum(value[(row, column)] for column in columns)
    for column in all_columns:
        value[(TOTAL, column)] = sum(value[(row, column)] for row in rows)
    primary = {position for position, count in value.items() if 0 < count < threshold}
    hidden = set(primary)
    lines = [[(row, column) for column in all_columns] for row in all_rows]
    lines += [[(row, column) for row in all_rows] for column in all_columns]

    def preference(position: tuple[str, str]) -> tuple[bool, bool, int]:
        margin = TOTAL in position
        return (margin, value[position] == 0, value[position])

    changed = True
    while changed:
        changed = False
        for line in lines:
            inside = [position for position in line if position in hidden]
            if len(inside) != 1:
                continue
            candidates = [position for position in line if position not in hidden]
            if candidates:
                hidden.add(min(candidates, key=preference))
                changed = True
    table = Table(list(rows), list(columns))
    for position, count in value.items():
        if position in primary:
            table.cells[position] = Cell(None, "primary")
        elif position in hidden:
            table.cells[position] = Cell(None, "complementary")
        else:
            table.cells[position] = Cell(count)
    return table


def crosstab(
    facts: Iterable[Fact], rows: Dimension, columns: Dimension | Callable[[Fact], str]
) -> tuple[dict[tuple[str, str], int], list[str], list[str]]:
    """Counts of `facts` by two dimensions (`columns` may be a function of the fact), with
    the row and column keys found, sorted."""
    counts: Counter[tuple[str, str]] = Counter()
    for fact in facts:
        column = columns(fact) if callable(columns) else key_of(fact, columns)
        counts[(key_of(fact, rows), column)] += 1
    return dict(counts), sorted({r for r, _ in counts}), sorted({c for _, c in counts})


@dataclass(frozen=True)
class Filters:
    region: str | None = None
    stage: str | None = None
    association: str | None = None

    def keep(self, fact: Fact) -> bool:
        return all(
            wanted is None or getattr(fact, name) == wanted
            for name, wanted in (
                ("region", self.region), ("stage", self.stage), ("association", self.association)
            )
        )  # fmt: skip


def rate(part: Cell, whole: Cell) -> float | None:
    """`part / whole` when both are shown and `whole` is not zero."""
    if part.shown is None or whole.shown is None or whole.shown == 0:
        return None
    return part.shown / whole.shown


ANSWER_COLUMNS = [
    "accepted", "declined:unreachable", "declined:not_eligible", "declined:no_capacity",
    "declined:duplicate", "declined:other", "expired",
]  # fmt: skip


#: What the associations that accepted reported happened next, as the statistics count it.
OUTCOME_COLUMNS = ["contacted", "accompaniment_started", "redirected", "unreachable", "closed"]
OUTCOME_COLUMN_LABELS = {
    "contacted": "Personne contactée", "accompaniment_started": "Accompagnement commencé",
    "redirected": "Orientée ailleurs", "unreachable": "Injoignable", "closed": "Dossier clos",
}  # fmt: skip


def answer_column(fact: Fact) -> str:
    return f"declined:{fact.reason or 'other'}" if fact.kind == "declined" else fact.kind


@dataclass(frozen=True)
class Percentiles:
    count: int
    median: float | None
    p90: float | None


def time_to_answer(facts: Iterable[Fact], threshold: int = THRESHOLD) -> Percentiles:
    """Median and 90th percentile (nearest rank) of the seconds to a first answer; None below
    `threshold` answers."""
    values = sorted(f.seconds_to_answer for f in facts if f.seconds_to_answer is not None)
    if len(values) < threshold:
        return Percentiles(len(values), None, None)
    p90 = values[math.ceil(0.9 * len(values)) - 1]
    return Percentiles(len(values), statistics.median(values), p90)


@dataclass
class Report:
    """Every table of the statistics page, computed from the same facts and filters."""

    grain: Literal["week", "month"]
    rows: Dimension
    columns: Dimension
    offered: Table
    answers: Table
    answer_times: dict[str, Percentiles]
    capacity: Table
    capacity_used: dict[tuple[str, str], float | None]
    followup: Table
    registrations: Table
    #: Per association, the outcomes it reported after accepting (`OUTCOME_COLUMNS`).
    outcomes: Table
    #: Per region, the peers proposed to people who asked for one (issue 24).
    peer_matches: Table


def build_report(
    facts: Sequence[Fact],
    *,
    filters: Filters = Filters(),
    grain: Literal["week", "month"] = "week",
    rows: Dimension | None = None,
    columns: Dimension = "association",
    capacities: dict[str, int] | None = None,
    threshold: int = THRESHOLD,
) -> Report:
    """The statistics page's tables. Registrations and peer matches ignore the stage and
    association filters (neither carries them)."""
    row_dimension: Dimension = rows or grain
    kept = [fact for fact in facts if filters.keep(fact)]

    def of(*kinds: str) -> list[Fact]:
        return [fact for fact in kept if fact.kind in kinds]

    offered = protect(*crosstab(of("offered"), row_dimension, columns), threshold=threshold)
    answered = of("accepted", "declined", "expired")
    counts, associations, _ = crosstab(answered, "association", answer_column)
    answers = protect(counts, associations, ANSWER_COLUMNS, threshold=threshold)
    answer_times = {
        association: time_to_answer(
            (f for f in answered if f.association == association and f.kind != "expired"),
            threshold,
        )
        for association in associations
    }
    capacity = protect(*crosstab(of("offered"), grain, "association"), threshold=threshold)
    capacity_used: dict[tuple[str, str], float | None] = {}
    for week in capacity.rows:
        for association in capacity.columns:
            weekly = (capacities or {}).get(association)
            shown = capacity.cell(week, association).shown
            usable = grain == "week" and weekly and shown is not None
            capacity_used[(week, association)] = shown / weekly if usable else None  # type: ignore[operator]
    counts, associations, _ = crosstab(
        of("followup_contacted", "followup_not_contacted"), "association",
        _followup_column,
    )  # fmt: skip
    followup = protect(counts, associations, ["contacted", "not_contacted"], threshold=threshold)
    registrations = per_region(facts, "registration", "registrations", filters, threshold)
    peer_matches = per_region(facts, "peer_match", "matches", filters, threshold)
    counts, associations, _ = crosstab(
        of(*(f"outcome_{column}" for column in OUTCOME_COLUMNS)), "association", _outcome_column
    )
    outcomes = protect(counts, associations, OUTCOME_COLUMNS, threshold=threshold)
    return Report(
        grain, row_dimension, columns, offered, answers, answer_times, capacity,
        capacity_used, followup, registrations, outcomes, peer_matches,
    )  # fmt: skip


def per_region(
    facts: Iterable[Fact], kind: str, column: str, filters: Filters, threshold: int
) -> Table:
    """The facts of `kind` counted by region in one `column`, protected; only the region
    filter applies (these facts have no stage nor association)."""
    kept = [
        f for f in facts
        if f.kind == kind and (filters.region is None or f.region == filters.region)
    ]  # fmt: skip
    counts, regions, _ = crosstab(kept, "region", lambda _: column)
    return protect(counts, regions, [column], threshold=threshold)


def _outcome_column(fact: Fact) -> str:
    return fact.kind.removeprefix("outcome_")


def _followup_column(fact: Fact) -> str:
    return "contacted" if fact.kind == "followup_contacted" else "not_contacted"
