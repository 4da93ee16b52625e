"""Turns a benchmark run into latest.json, report.md and latency.png."""

import json
from pathlib import Path
from typing import Any

from bench import report_round2

TARGETS = {
    "intake_rate": 1000,
    "intake_p99_at_500_ms": 25,
    "intake_ratio": 0.6,
    "router_b1": 0.8,
    "router_b2": 0.3,
    "e2e_p50_ms": 10,
    "e2e_p99_ms": 50,
    "rss_mb": 150,
}


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def drop_latencies(node: Any, path: str = "") -> dict[str, list[float]]:
    """Takes every run's list of latencies out of `node` (too long for the JSON, kept for the
    plot): {dotted path of the run: latencies}."""
    found: dict[str, list[float]] = {}
    if isinstance(node, dict):
        if "latencies_ms" in node:
            found[path] = node.pop("latencies_ms")
        for key, value in node.items():
            found.update(drop_latencies(value, f"{path}.{key}" if path else key))
    return found


def write_partial(results: dict[str, Any], path: Path) -> None:
    """A run of some phases: its JSON, and round 2's section when it ran."""
    drop_latencies(results)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if "round2" in results:
        path.with_suffix(".md").write_text("\n".join(report_round2.section(results)))


def write_report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    latencies = drop_latencies(results)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    intake, router, e2e = results["intake"], results["router"], results["end_to_end"]
    real, bare, floor = intake["with_kafka"], intake["no_publish"], intake.get("floor")
    keyed = intake.get("with_kafka_keyed")
    nan = {"p50_ms": float("nan"), "p99_ms": float("nan")}
    for ladder in (real, bare, keyed or {}, floor or {}):
        ladder["at_500"] = ladder.get("at_500") or nan
    ratio = intake["ratio_to_no_publish"] or 0.0
    floor_rate = floor_500 = ""
    if floor:
        floor_rate = (
            f"; FastAPI floor (validation and publish only): {floor['max_sustained_rate']}/s "
            f"(ratio {intake['ratio_to_floor'] or 0.0:.2f})"
        )
        floor_500 = f"; floor: {floor['at_500']['p50_ms']:.1f} / {floor['at_500']['p99_ms']:.1f} ms"
    pipe = e2e.get("bare_pipeline")
    e2e_baseline = f"{e2e['referrals_seen']} referrals for {e2e['accepted']} accepted"
    if pipe:
        e2e_baseline += (
            f"; bare pipeline (the FastAPI floor, then two bare aiokafka hops): "
            f"{pipe['p50_ms']:.1f} / {pipe['p99_ms']:.1f} / {pipe['p999_ms']:.1f} / {pipe['max_ms']:.1f} ms "
            f"(p50 ×{e2e['p50_ms'] / pipe['p50_ms']:.1f}, p99 ×{e2e['p99_ms'] / pipe['p99_ms']:.1f})"
        )
    worst_rss = max(results["peak_rss_mb"].values())
    rows = [
        ("intake: highest rate with p99 ≤ 25 ms", f"{real['max_sustained_rate']}/s",
         f"no-publish app: {bare['max_sustained_rate']}/s (ratio {ratio:.2f}){floor_rate}",
         f"≥ 1,000/s, ≥ 0.6×: {_mark(real['max_sustained_rate'] >= 1000 and ratio >= 0.6)}"),
        ("intake at 500/s: p50 / p99", f"{real['at_500']['p50_ms']:.1f} / {real['at_500']['p99_ms']:.1f} ms",
         f"no-publish: {bare['at_500']['p50_ms']:.1f} / {bare['at_500']['p99_ms']:.1f} ms{floor_500}",
         f"p99 ≤ 25 ms: {_mark(real['at_500']['p99_ms'] <= 25)}"),
        *([("intake with an Idempotency-Key each (as the portal): highest rate with p99 ≤ 25 ms; p50 / p99 at 500/s",
             f"{keyed['max_sustained_rate']}/s; {keyed['at_500']['p50_ms']:.1f} / {keyed['at_500']['p99_ms']:.1f} ms",
             "", f"≥ 1,000/s: {_mark(keyed['max_sustained_rate'] >= 1000)}")] if keyed else []),
        (f"router throughput ({router.get('router_measured_over', '?')} of {router['questionnaires']} preloaded)",
         f"{router['router_per_s']:.0f}/s",
         f"B1 {router['b1_per_s']:.0f}/s (×{router['ratio_to_b1']:.2f}), B2 {router['b2_per_s']:.0f}/s (×{router['ratio_to_b2']:.2f})",
         f"≥ 0.8× B1 and ≥ 0.3× B2: {_mark(router['ratio_to_b1'] >= 0.8 and router['ratio_to_b2'] >= 0.3)}"),
        *([(f"router's own work without Kafka, one process ({router['floor_records']:,} of the same records)",
             f"router and store: {router['without_kafka_per_s']:.0f}/s (the router with Kafka ×{router['ratio_to_without_kafka']:.2f})",
             f"least work (read, decide, serialise two events): {router['least_work_per_s']:.0f}/s, ×{router['least_work_ratio_to_b2']:.2f} B2",
             "what ≥ 0.3× B2 asks of the router's Python")] if "least_work_per_s" in router else []),
        (f"end to end at {e2e['rate']}/s for {e2e['seconds']} s: p50 / p99 / p99.9 / max",
         f"{e2e['p50_ms']:.1f} / {e2e['p99_ms']:.1f} / {e2e['p999_ms']:.1f} / {e2e['max_ms']:.1f} ms",
         e2e_baseline,
         f"p50 ≤ 10, p99 ≤ 50 ms: {_mark(e2e['p50_ms'] <= 10 and e2e['p99_ms'] <= 50)}"),
        *([(f"notifier dispatcher: CPU per e-mail ({d['deliveries']:,}, SQLite log, real SMTP)",
             f"{d['cpu_s_per_1000']:.2f} ms ({d['deliveries_per_s']:.0f}/s)",
             f"bare SMTP client: {d['bare_smtp']['cpu_s_per_1000']:.2f} ms (ratio {d['cpu_ratio_to_bare']:.2f})",
             "no target (what the log adds to sending)")] if (d := results.get("dispatcher")) else []),
        ("peak RSS per service", ", ".join(f"{k} {v:.0f} MB" for k, v in results["peak_rss_mb"].items()), "",
         f"≤ 150 MB: {_mark(worst_rss <= 150)}"),
    ]  # fmt: skip
    lines = [
        f"# Rebond benchmark, {results['date']}",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}, "
        f"Python {results['machine']['python']}; broker, services and load generator on the same "
        f"machine.{' Quick run: figures are a smoke test only.' if results['quick'] else ''}",
        "",
        "| measure | Rebond | same-run baseline | target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "![latency](latency.png)",
        "",
        *(report_round2.section(results) if "round2" in results else []),
    ]
    (out / "report.md").write_text("\n".join(lines))
    _plot(results, latencies, out / "latency.png")


def _plot(results: dict[str, Any], latencies: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e2e = {
        "Rebond": latencies.get("end_to_end", []),
        "bare pipeline": latencies.get("end_to_end.bare_pipeline", []),
    }
    fig, (left, right, third) = plt.subplots(1, 3, figsize=(16, 4))
    report_round2.plot_real_load(third, results, latencies)
    ladders = [
        ("with Kafka", results["intake"]["with_kafka"]),
        ("with Kafka, keyed", results["intake"].get("with_kafka_keyed")),
        ("no publish", results["intake"]["no_publish"]),
        ("FastAPI floor", results["intake"].get("floor")),
    ]
    for label, data in ladders:
        if data is None:
            continue
        steps = data["steps"]
        left.plot(
            [s["rate"] for s in steps],
            [s["p99_ms"] for s in steps],
            marker="o",
            label=f"p99, {label}",
        )
        left.plot(
            [s["rate"] for s in steps],
            [s["p50_ms"] for s in steps],
            linestyle="--",
            label=f"p50, {label}",
        )
    left.axhline(25, color="grey", linewidth=0.8)
    left.set(
        xlabel="offered rate (submissions/s)",
        ylabel="latency (ms)",
        title="intake, open loop",
        yscale="log",
    )
    left.legend(fontsize=8)
    for label, values in e2e.items():
        if values:
            ordered = sorted(values)
            right.plot(ordered, [i / len(ordered) for i in range(len(ordered))], label=label)
    right.legend(fontsize=8)
    right.set(
        xlabel="POST → referral on the association topic (ms)",
        ylabel="fraction",
        title="end to end",
        xscale="log",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
