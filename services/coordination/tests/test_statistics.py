"""Statistics: primary and complementary suppression, percentiles, and the page's tables
against counts computed independently here."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from rebond_coordination.statistics import (
    TOTAL,
    Fact,
    Filters,
    Table,
    build_report,
    period,
    protect,
    time_to_answer,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def shown(table: Table) -> list[list[int | None]]:
    return [[table.cell(r, c).shown for c in [*table.columns, TOTAL]] for r in [*table.rows, TOTAL]]


def lines_of(table: Table) -> list[list[tuple[str, str]]]:
    rows, columns = [*table.rows, TOTAL], [*table.columns, TOTAL]
    return [[(r, c) for c in columns] for r in rows] + [[(r, c) for r in rows] for c in columns]


def assert_no_line_reveals_a_hidden_cell(table: Table) -> None:
    for line in lines_of(table):
        assert sum(table.cells[p].suppressed for p in line) != 1, line


def test_a_table_without_small_cells_is_shown_whole_with_its_totals() -> None:
    """Every cell at 5 or more (or 0): nothing is hidden."""
    table = protect(
        {("a", "x"): 5, ("a", "y"): 10, ("b", "x"): 0, ("b", "y"): 7}, ["a", "b"], ["x", "y"]
    )
    assert shown(table) == [[5, 10, 15], [0, 7, 7], [5, 17, 22]]


def test_a_small_cell_is_hidden_with_one_more_per_line_so_no_sum_gives_it_back() -> None:
    """3 is hidden (primary); its row and column each lose their smallest other cell."""
    table = protect(
        {("a", "x"): 3, ("a", "y"): 10, ("a", "z"): 20, ("b", "x"): 8, ("b", "y"): 6, ("b", "z"): 9},
        ["a", "b"], ["x", "y", "z"],
    )  # fmt: skip
    assert table.cell("a", "x").why == "primary"
    assert table.cell("a", "y").why == "complementary"  # smallest other cell of row a
    assert table.cell("b", "x").why == "complementary"  # the only other cell of column x
    assert table.cell("b", "y").why == "complementary"  # row b and column y were left with one
    assert table.total().shown == 56
    assert_no_line_reveals_a_hidden_cell(table)


def test_small_totals_are_hidden_too() -> None:
    """A row whose total is 1 to 4 has its total hidden, and so enough of its cells."""
    table = protect(
        {("a", "x"): 2, ("a", "y"): 1, ("b", "x"): 9, ("b", "y"): 12}, ["a", "b"], ["x", "y"]
    )
    assert table.cell("a", TOTAL).why == "primary"
    assert table.cell("a", "x").suppressed and table.cell("a", "y").suppressed
    assert_no_line_reveals_a_hidden_cell(table)


def test_a_single_column_table_hides_the_row_total_beside_a_hidden_cell() -> None:
    """With one column a row's total equals its cell: both go, and another row to protect the
    column's total."""
    table = protect({("11", "n"): 2, ("75", "n"): 40, ("84", "n"): 9}, ["11", "75", "84"], ["n"])
    assert table.cell("11", "n").suppressed and table.cell("11", TOTAL).suppressed
    assert table.cell("84", "n").why == "complementary"  # the smallest other region
    assert table.cell("75", "n").shown == 40
    assert table.total().shown == 51
    assert_no_line_reveals_a_hidden_cell(table)


@pytest.mark.parametrize("seed", range(25))
def test_random_tables_never_leave_a_line_with_one_hidden_cell(seed: int) -> None:
    """Whatever the counts, no row or column (totals included) holds exactly one hidden cell,
    and every shown count is the true one."""
    rng = random.Random(seed)
    rows, columns = (
        [f"r{i}" for i in range(rng.randint(1, 6))],
        [f"c{j}" for j in range(rng.randint(1, 5))],
    )
    counts = {
        (r, c): rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 15, 40]) for r in rows for c in columns
    }
    table = protect(counts, rows, columns)
    assert_no_line_reveals_a_hidden_cell(table)
    for (r, c), count in counts.items():
        cell = table.cell(r, c)
        assert cell.shown in (None, count)
        if 0 < count < 5:
            assert cell.why == "primary"


def test_percentiles_of_the_time_to_first_answer() -> None:
    """Median and nearest-rank 90th percentile; nothing below five answers."""
    facts = [
        Fact("accepted", T0, seconds_to_answer=s) for s in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    ]
    times = time_to_answer(facts)
    assert (times.count, times.median, times.p90) == (10, 55, 90)
    assert time_to_answer(facts[:4]).median is None


def test_periods_are_iso_weeks_and_months() -> None:
    """Week numbers follow ISO 8601 (the week of 1 January 2027 is 2026's 53rd)."""
    assert period(datetime(2027, 1, 1, tzinfo=UTC), "week") == "2026-S53"
    assert period(datetime(2026, 12, 7, tzinfo=UTC), "week") == "2026-S50"
    assert period(datetime(2026, 12, 7, tzinfo=UTC), "month") == "2026-12"


def test_the_report_matches_counts_computed_independently() -> None:
    """Offers per month and association, answer rates and registrations equal a plain count of
    the same facts wherever they are shown, and the small ones are hidden."""
    rng = random.Random(7)
    associations = ["60000-rebonds", "second-souffle", "apesa"]
    facts: list[Fact] = []
    for day in range(60):
        at = T0 + timedelta(days=day)
        for _ in range(rng.randint(0, 4)):
            facts.append(
                Fact(
                    "offered",
                    at,
                    rng.choice(["75", "84"]),
                    "after_liquidation",
                    rng.choice(associations),
                )
            )
        if day % 3 == 0:
            facts.append(
                Fact(
                    "accepted",
                    at,
                    "75",
                    "after_liquidation",
                    "60000-rebonds",
                    seconds_to_answer=3600.0 * day,
                )
            )
        if day % 10 == 0:
            facts.append(
                Fact("declined", at, "75", "after_liquidation", "apesa", reason="no_capacity")
            )
        facts.append(Fact("registration", at, "75" if day % 4 else "11"))
    report = build_report(facts, grain="month", rows="month", columns="association")

    expected = Counter((period(f.at, "month"), f.association) for f in facts if f.kind == "offered")
    for (month, association), count in expected.items():
        cell = report.offered.cell(month, association)
        assert cell.shown in (count, None)
        assert (cell.shown is None) == (cell.why is not None)
        if count < 5:
            assert cell.suppressed
    assert report.offered.total().shown == sum(expected.values())
    accepted = sum(1 for f in facts if f.kind == "accepted")
    assert report.answers.cell("60000-rebonds", "accepted").shown == accepted
    assert report.answers.cell("apesa", "declined:no_capacity").shown == 6
    assert report.answer_times["60000-rebonds"].median == 3600.0 * 28.5
    assert report.answer_times["apesa"].median is None  # declines without a time
    registrations = Counter(f.region for f in facts if f.kind == "registration")
    assert report.registrations.cell("75", "registrations").shown == registrations["75"]
    assert report.registrations.cell("11", "registrations").shown == registrations["11"]


def test_peer_matches_are_counted_per_region_against_a_plain_count() -> None:
    """Matches per region equal a plain count of the same facts where 5 or more, a smaller
    region is hidden with one more cell of its column; only the region filter applies."""
    rng = random.Random(24)
    facts = [
        Fact("peer_match", T0 + timedelta(days=rng.randint(0, 40)), rng.choice(["75", "84"]))
        for _ in range(40)
    ]
    facts += [Fact("peer_match", T0, "11")] * 3 + [Fact("offered", T0, "11", "unsure", "apesa")]
    matches = build_report(facts, filters=Filters(stage="safeguard")).peer_matches
    expected = Counter(f.region for f in facts if f.kind == "peer_match")
    assert matches.rows == sorted(expected)
    for region, count in expected.items():
        assert matches.cell(region, "matches").shown in (count, None)
    assert matches.cell("11", "matches").suppressed
    assert_no_line_reveals_a_hidden_cell(matches)
    assert matches.total().shown == sum(expected.values())
    only = build_report(facts, filters=Filters(region="84")).peer_matches
    assert only.rows == ["84"] and only.total().shown == expected["84"]


def test_the_outcomes_the_associations_report_are_counted_small_ones_hidden() -> None:
    """Per association and outcome, a plain count where it is 5 or more; a smaller cell is
    hidden, and so is one more of its line, so that the row's total does not give it back."""
    kinds = ["contacted"] * 12 + ["accompaniment_started"] * 7 + ["unreachable"] * 2
    facts = [
        Fact(f"outcome_{kind}", T0, "75", "after_liquidation", "60000-rebonds") for kind in kinds
    ]
    facts += [Fact("outcome_contacted", T0, "84", "receivership", "second-souffle")] * 6
    outcomes = build_report(facts).outcomes
    assert outcomes.cell("second-souffle", "contacted").shown == 6
    sixty = {c: outcomes.cell("60000-rebonds", c) for c in ("contacted", "unreachable")}
    assert sixty["unreachable"].suppressed and sixty["contacted"].shown in (12, None)
    assert_no_line_reveals_a_hidden_cell(outcomes)
    assert outcomes.cell("60000-rebonds", TOTAL).shown == len(kinds)


def test_filters_keep_only_the_facts_asked_for() -> None:
    """A region filter counts that region's offers only."""
    facts = [Fact("offered", T0, "75", "unsure", "apesa")] * 6 + [
        Fact("offered", T0, "84", "unsure", "apesa")
    ] * 7
    report = build_report(facts, filters=Filters(region="84"), grain="week")
    assert report.offered.total().shown == 7


def test_capacity_used_is_the_weeks_offers_over_the_weekly_capacity() -> None:
    """6 offers against a capacity of 12 is half; a hidden count gives no ratio."""
    facts = [Fact("offered", T0, "75", "unsure", "60000-rebonds")] * 6
    facts += [Fact("offered", T0, "75", "unsure", "apesa")] * 2
    facts += [Fact("offered", T0, "75", "unsure", "re-creer")] * 3
    report = build_report(facts, grain="week", capacities={"60000-rebonds": 12, "apesa": 10})
    assert report.capacity_used[("2026-S50", "60000-rebonds")] == 0.5
    assert report.capacity_used[("2026-S50", "apesa")] is None
