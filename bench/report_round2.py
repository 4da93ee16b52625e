"""Round 2's section of the report (issue #23): each target beside its same-run baseline, the
ratio, and whether it is met; then the figures behind them."""

import itertools
import math
import os
from collections.abc import Mapping
from typing import Any

#: Issue #23's targets (ratios are Rebond over the bare pipeline in the same run).
REAL_LOAD_P50_RATIO, REAL_LOAD_P50_STRETCH = 2.0, 1.5
REAL_LOAD_P99_RATIO, REAL_LOAD_P99_STRETCH = 2.5, 2.0
CAMPAIGN_P99_RATIO = 2.0
AT_200_P99_MS = 250.0
KEYED_500_P99_MS = 25.0
IDLE_PERCENT = 1.0
COST_RATIO = 3.0
RSS_MB = 100.0
#: The real-load runs with a target (random arrivals); the evenly spaced ones are shown only.
TARGETED = ("poisson_1_per_s", "poisson_20_per_s")
SERVICES = ("intake", "router", "notifier", "events")


def verdict(value: float, limit: float, stretch: float | None = None) -> str:
    if math.isnan(value) or value > limit:
        return "**not met**"
    if stretch is not None and value <= stretch:
        return "met (stretch met)"
    return "met"


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _load_title(run: Mapping[str, Any]) -> str:
    arrivals = "random (Poisson)" if run["arrivals"] == "poisson" else "evenly spaced"
    return f"{arrivals}, {run['rate']:g}/s for {run['seconds']:g} s"


def target_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(measure, Rebond, same-run baseline, ratio, target: verdict) for each target of #23."""
    r2 = results["round2"]
    rebond, bare = r2["rebond"], r2["bare"]
    rows: list[tuple[str, str, str, str, str]] = []
    for key in TARGETED:
        if key not in rebond.get("real_load", {}):
            continue
        ours, base = rebond["real_load"][key], bare["real_load"][key]
        p50, p99 = ratio(ours["p50_ms"], base["p50_ms"]), ratio(ours["p99_ms"], base["p99_ms"])
        rows += [
            (f"1. POST → referral, {_load_title(ours)}: p50", _ms(ours["p50_ms"]),
             f"bare pipeline {_ms(base['p50_ms'])}", f"×{p50:.2f}",
             f"≤ {REAL_LOAD_P50_RATIO:g}× (stretch {REAL_LOAD_P50_STRETCH:g}×): "
             + verdict(p50, REAL_LOAD_P50_RATIO, REAL_LOAD_P50_STRETCH)),
            (f"1. POST → referral, {_load_title(ours)}: p99", _ms(ours["p99_ms"]),
             f"bare pipeline {_ms(base['p99_ms'])}", f"×{p99:.2f}",
             f"≤ {REAL_LOAD_P99_RATIO:g}× (stretch {REAL_LOAD_P99_STRETCH:g}×): "
             + verdict(p99, REAL_LOAD_P99_RATIO, REAL_LOAD_P99_STRETCH)),
        ]  # fmt: skip
    if "campaign" in rebond:
        ours, base = rebond["campaign"], bare["campaign"]
        p99 = ratio(ours["p99_ms"], base["p99_ms"])
        rows.append(
            (f"2. POST → referral, {_load_title(ours)}: p99", _ms(ours["p99_ms"]),
             f"bare pipeline {_ms(base['p99_ms'])}", f"×{p99:.2f}",
             f"≤ {CAMPAIGN_P99_RATIO:g}×: {verdict(p99, CAMPAIGN_P99_RATIO)}")
        )  # fmt: skip
    if e2e := results.get("end_to_end"):
        base = e2e.get("bare_pipeline", {"p99_ms": math.nan})
        rows.append(
            (f"2. POST → referral, evenly spaced, {e2e['rate']}/s for {e2e['seconds']} s "
             "(round 1's end-to-end phase): p99", _ms(e2e["p99_ms"]),
             f"bare pipeline {_ms(base['p99_ms'])}", f"×{ratio(e2e['p99_ms'], base['p99_ms']):.2f}",
             f"≤ {AT_200_P99_MS:g} ms: {verdict(e2e['p99_ms'], AT_200_P99_MS)}")
        )  # fmt: skip
    if (intake := results.get("intake")) and (keyed := intake.get("with_kafka_keyed")):
        at_500 = keyed.get("at_500") or {"p99_ms": math.nan}
        keyless = intake["with_kafka"].get("at_500") or {"p99_ms": math.nan}
        floor = (intake.get("floor") or {}).get("at_500") or {"p99_ms": math.nan}
        rows.append(
            ("2. intake, an Idempotency-Key on each request (as the portal), 500/s: p99",
             _ms(at_500["p99_ms"]),
             f"intake without keys {_ms(keyless['p99_ms'])}; FastAPI floor {_ms(floor['p99_ms'])}",
             f"×{ratio(at_500['p99_ms'], floor['p99_ms']):.2f} the floor",
             f"≤ {KEYED_500_P99_MS:g} ms: {verdict(at_500['p99_ms'], KEYED_500_P99_MS)}")
        )  # fmt: skip
    bare_idle = bare.get("idle_fresh")
    for label, key in (("fresh stores", "idle_fresh"), ("after the history", "idle_after_history")):
        if key not in rebond:
            continue
        cpu = {name: rebond[key][name]["percent"] for name in SERVICES}
        worst = max(cpu.values())
        base = (
            "bare pipeline: "
            + ", ".join(f"{n} {v['percent']:.2f} %" for n, v in bare_idle.items() if n != "kafka")
            if bare_idle
            else ""
        )
        rows.append(
            (f"3. idle {r2['plan']['idle_s']:g} s, {label}: % of a core", ", ".join(f"{n} {v:.2f} %" for n, v in cpu.items()),
             base, "", f"≤ {IDLE_PERCENT:g} % each: {verdict(worst, IDLE_PERCENT)}")
        )  # fmt: skip
    if "campaign" in rebond and "cpu_ms_per_questionnaire" in rebond["campaign"]:
        ours, base = rebond["campaign"], bare["campaign"]
        cost = ratio(ours["cpu_ms_per_questionnaire_all"], base["cpu_ms_per_questionnaire_all"])
        per = ", ".join(f"{n} {ours['cpu_ms_per_questionnaire'][n]:.2f}" for n in SERVICES)
        rows.append(
            (f"4. CPU per questionnaire at {ours['rate']:g}/s, all services (ms)",
             f"{ours['cpu_ms_per_questionnaire_all']:.2f} ({per})",
             f"bare pipeline {base['cpu_ms_per_questionnaire_all']:.2f}", f"×{cost:.2f}",
             f"≤ {COST_RATIO:g}×: {verdict(cost, COST_RATIO)}")
        )  # fmt: skip
    if "memory_after_soak" in rebond:
        rss = {n: rebond["memory_after_soak"][n]["rss_mb"] for n in SERVICES}
        front = bare["memory"]["bare-front"]["rss_mb"]
        rows.append(
            (f"5. RSS after the soak ({r2['plan']['soak_minutes']:g} min at 100/s)",
             ", ".join(f"{n} {v:.0f} MB" for n, v in rss.items()),
             f"bare front (FastAPI, pydantic, aiokafka) {front:.0f} MB", f"×{max(rss.values()) / front:.2f} (largest)",
             f"≤ {RSS_MB:g} MB each: {verdict(max(rss.values()), RSS_MB)}")
        )  # fmt: skip
    return rows


def section(results: Mapping[str, Any]) -> list[str]:
    """Round 2's markdown: the targets, then real load, idle, cost and memory in detail."""
    r2 = results["round2"]
    rebond, bare = r2["rebond"], r2["bare"]
    lines = [
        "## Round 2 (issue #23): the load people bring, idle, per questionnaire, memory",
        "",
        "On a broker of its own; Rebond's four services on fresh stores (e-mails to an SMTP "
        "server that discards them), then the bare pipeline (FastAPI floor → hop → hop) with "
        "the same schedules. Latency from each request's scheduled send time.",
        "",
        "| target | Rebond | same-run baseline | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in target_rows(results)),
        "",
    ]
    if "real_load" in rebond:
        lines += [
            "### POST → referral on the association's topic",
            "",
            "| arrivals | POST p50 / p99 | Rebond p50 / p99 / p99.9 / max | bare p50 / p99 / p99.9 / max | p50 ratio | p99 ratio |",
            "|---|---|---|---|---|---|",
        ]
        runs = {
            **rebond["real_load"],
            **({"campaign": rebond["campaign"]} if "campaign" in rebond else {}),
        }
        for key, ours in runs.items():
            base = bare["real_load"].get(key) if key != "campaign" else bare["campaign"]
            if base is None:
                continue
            lines.append(
                f"| {_load_title(ours)} | {ours['post_p50_ms']:.1f} / {ours['post_p99_ms']:.1f} ms "
                f"| {_four(ours)} ({ours['referrals_seen']} of {ours['accepted']}) | {_four(base)} "
                f"| ×{ratio(ours['p50_ms'], base['p50_ms']):.2f} "
                f"| ×{ratio(ours['p99_ms'], base['p99_ms']):.2f} |"
            )
        lines.append("")
        lines += _stage_table(runs, bare)
    if "idle_fresh" in rebond:
        lines += _idle_table(rebond, bare, r2["plan"])
    if "campaign" in rebond and "cpu_s" in rebond["campaign"]:
        lines += _cost_table(rebond["campaign"], bare["campaign"])
    if "imports" in rebond:
        lines += _memory_table(r2)
    durations = {**results["durations_s"], **r2["durations_s"]}
    return [*lines, "Durations: " + ", ".join(f"{k} {v:.0f} s" for k, v in durations.items()), ""]


def _stage_table(runs: Mapping[str, Any], bare: Mapping[str, Any]) -> list[str]:
    """Where POST → referral's time goes: per process, from the previous topic's arrival (the
    scheduled send time for the first) to its own topic's, p50 / p99."""
    lines = [
        "### Where the time goes: from one topic to the next (p50 / p99, ms)",
        "",
        "Each topic a reference passes through is watched by a consumer of its own; a process's"
        " share is from the previous arrival (the scheduled send for the first: the POST, the"
        " intake's publish and the watcher's fetch) to the arrival on the topic it writes.",
        "",
        "| arrivals | Rebond: intake / router / notifier | bare: front / hop 1 / hop 2 |",
        "|---|---|---|",
    ]
    for key, ours in runs.items():
        base = bare["real_load"].get(key) if key != "campaign" else bare["campaign"]
        if base is None or not ours.get("stages") or not base.get("stages"):
            continue
        lines.append(f"| {_load_title(ours)} | {_stages(ours)} | {_stages(base)} |")
    return [*lines, ""] if len(lines) > 6 else []


def _stages(run: Mapping[str, Any]) -> str:
    return " · ".join(
        f"{stage['p50_ms']:.1f} / {stage['p99_ms']:.1f}" for stage in run["stages"].values()
    )


def _four(run: Mapping[str, Any]) -> str:
    return " / ".join(f"{run[k]:.1f}" for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")) + " ms"


def _idle(value: Mapping[str, Any]) -> str:
    """A process's idle CPU: the median window's, with the range when there were several."""
    windows = value.get("windows", [])
    spread = f" ({min(windows):.2f} to {max(windows):.2f})" if len(windows) > 1 else ""
    return f"{value['percent']:.2f} %{spread}"


def _idle_table(
    rebond: Mapping[str, Any], bare: Mapping[str, Any], plan: Mapping[str, Any]
) -> list[str]:
    seconds, windows = plan["idle_s"], plan.get("idle_windows", 1)  # one before 2026-12-07
    over = f"the median of {windows} windows of {seconds:g} s" if windows > 1 else f"{seconds:g} s"
    lines = [f"### Idle: % of a core over {over} with no traffic (/proc)", ""]
    history = rebond.get("history", {})
    lines += [
        f"| process | fresh stores | after {history.get('referrals', 0):,} referrals |",
        "|---|---|---|",
    ]
    after = rebond.get("idle_after_history", {})
    for name, value in rebond["idle_fresh"].items():
        later = _idle(after[name]) if name in after else ""
        lines.append(f"| {name} | {_idle(value)} | {later} |")
    for name, value in bare.get("idle_fresh", {}).items():
        if name != "kafka":
            lines.append(f"| bare pipeline: {name} | {_idle(value)} | |")
    if history:
        lines += [
            "",
            f"History: {history['added']:,} questionnaires published to Kafka and drained in "
            f"{history['seconds']:.0f} s ({history['email_outcomes']:,} e-mail outcomes).",
        ]
    return [*lines, ""]


def _cost_table(ours: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    lines = [
        f"### CPU per questionnaire at {ours['rate']:g}/s (from the first request until drained; /proc)",
        "",
        "| process | CPU s | ms per questionnaire |",
        "|---|---|---|",
    ]
    for run, prefix in ((ours, ""), (base, "bare pipeline: ")):
        for name, seconds in run["cpu_s"].items():
            per = run["cpu_ms_per_questionnaire"][name]
            lines.append(f"| {prefix}{name} | {seconds:.1f} | {per:.2f} |")
    lines.append(
        f"\nRebond over {ours['window_s']:.0f} s for {ours['accepted']:,} questionnaires, the "
        f"bare pipeline over {base['window_s']:.0f} s for {base['accepted']:,}; the broker is "
        "shown, not counted in the ratio."
    )
    cores = os.cpu_count() or 1
    ceilings = ", ".join(
        f"{label} {ceiling(run, cores):,.0f}/s"
        for run, label in ((ours, "Rebond"), (base, "the bare pipeline"))
    )
    lines.append(
        f"\nAt these costs, broker included, the {cores} cores of this machine (which also run"
        f" the load generator) hold at most: {ceilings}. A rate near or above its ceiling"
        " measures a queue, not a path."
    )
    return [*lines, ""]


def ceiling(run: Mapping[str, Any], cores: int) -> float:
    """Questionnaires a second `cores` whole cores could serve at `run`'s CPU per questionnaire,
    every process and the broker together."""
    per_ms = sum(run["cpu_ms_per_questionnaire"].values())
    return 1000 * cores / per_ms if per_ms else math.inf


def _memory_table(r2: Mapping[str, Any]) -> list[str]:
    rebond = r2["rebond"]
    lines = [
        "### Memory: where each service's resident set goes (MB)",
        "",
        "| service | interpreter | libraries | contracts | own modules | imports total "
        "| running, fresh | after the soak | after the history | heap (anon) / files | threads "
        "| soak growth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SERVICES:
        steps = rebond["imports"][name]
        rss = [step["rss_mb"] for step in steps]
        at = [step["step"] for step in steps].index("rebond_contracts.topics")
        after = rebond["memory_after_soak"][name]
        later = rebond.get("memory_after_history", {}).get(name, {}).get("rss_mb")
        growth = rebond.get("soak", {}).get("memory", {}).get(name, {}).get("growth_mb")
        lines.append(
            f"| {name} | {rss[0]:.0f} | {rss[at - 1] - rss[0]:.0f} | {rss[at] - rss[at - 1]:.1f} "
            f"| {rss[-1] - rss[at]:.0f} | {rss[-1]:.0f} "
            f"| {rebond['memory_fresh'][name]['rss_mb']:.0f} | {after['rss_mb']:.0f} "
            f"| {'' if later is None else f'{later:.0f}'} "
            f"| {after['anon_mb']:.0f} / {after['file_mb']:.0f} | {after['threads']} "
            f"| {'' if growth is None else f'{growth:+.1f}'} |"
        )
    libraries = rebond["imports"][SERVICES[0]]
    lines += [
        "",
        "Imports in a fresh interpreter, one library after the other (each adds what the ones "
        f"before did not bring; {SERVICES[0]}): "
        + ", ".join(
            f"{b['step']} +{b['rss_mb'] - a['rss_mb']:.1f}"
            for a, b in itertools.pairwise(libraries)
        )
        + ".",
        "",
    ]
    return lines


def plot_real_load(
    ax: Any, results: Mapping[str, Any], latencies: Mapping[str, list[float]]
) -> None:
    """POST → referral CDFs of the targeted real-load runs, Rebond solid, bare dashed."""
    for key in TARGETED:
        for who, style in (("rebond", "-"), ("bare", "--")):
            values = sorted(latencies.get(f"round2.{who}.real_load.{key}", []))
            if values:
                ax.plot(values, [i / len(values) for i in range(len(values))], linestyle=style,
                        label=f"{'Rebond' if who == 'rebond' else 'bare'}, {key.replace('_per_s', '/s')}")  # fmt: skip
    ax.legend(fontsize=8)
    ax.set(
        xlabel="POST → referral (ms)", ylabel="fraction", title="round 2: real load", xscale="log"
    )
