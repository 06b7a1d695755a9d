"""Markdown from results: the report, the README's headline and documents tables, the goals met or missed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from eval.datasets import KINDS
from eval.results import BASELINE, ROUTES, SYSTEM_ORDER, compare, documents_summary, rescore
from eval.stats import Interval


def _fmt(value: float | None, digits: int = 1, scale: float = 100.0) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _bounds(interval: dict[str, Any] | None, digits: int = 3) -> str:
    """``[0.471, 0.838]`` from a stored interval, ``-`` without one."""
    return f"[{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]" if interval else "-"


def _ci(interval: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    """``52.0 [45.1, 58.9]`` from a stored interval, ``-`` without one."""
    if not interval:
        return "-"
    return Interval(interval["estimate"], interval["low"], interval["high"], interval["n"]).format(scale, digits)


def render_markdown(results: dict[str, Any]) -> str:
    """The report: headline table, per-kind tables, routing confusion matrix, sweep, goals."""
    summaries = results["summaries"]
    meta = results["meta"]
    names = [name for name in SYSTEM_ORDER if name in summaries]
    base = summaries.get(BASELINE)
    counts = Counter(item["kind"] for item in results["items"].values())
    lines = [f"# Evaluation: suite `{meta.get('suite')}`, {len(results['items'])} items "
             f"({', '.join(f'{counts[kind]} {kind}' for kind in KINDS if counts[kind])})", ""]
    lines += [f"Run {meta.get('created', '')} on {meta.get('machine', {}).get('cpu', '?')} "
              f"({meta.get('machine', {}).get('cores', '?')} cores). Command: `{meta.get('command', '')}`. "
              f"Routed thresholds: {meta.get('threshold')} (fact, math), {meta.get('chat_threshold')} (chat).", ""]
    if int(meta.get("workers") or 1) > 1:
        how = ("in as many processes, each with its own models" if meta.get("worker_processes")
               else "by threads sharing the models")
        lines += [f"**Answered {meta['workers']} items at a time** (`--workers`, {how}): accuracy and FLOPs are as "
                  "one at a time; per-item wall and CPU times include waiting for a shared core or model and energy "
                  "was not measured, so the time ratios below are not comparable with a run of one worker.", ""]
    failed = sorted({item_id for errors in meta.get("errors", {}).values() for item_id in errors})
    if failed:
        lines += [f"**{len(failed)} items are left out of every system** because a system failed on them (run the "
                  f"same command again to retry them): {', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''}",
                  ""]
    provenance = meta.get("git") or {}
    if provenance:
        dirty = " (with uncommitted changes)" if provenance.get("dirty") else ""
        lines += [f"Code: commit {provenance.get('commit', '?')[:12]}{dirty}"
                  f"; split: {meta.get('split', '?')}; record cache keys: "
                  f"{', '.join(f'{name} {key}' for name, key in meta.get('cache_keys', {}).items())}.", ""]
    # Records that counted evaluated prompt tokens get a second FLOPs column: every token sent (older ones have one).
    nominal = any(abs(summaries[name]["nominal_flops"] - summaries[name]["flops"]) > 0.5 for name in names)
    flops_note = ("FLOPs = 2 x parameters x tokens computed (prompt tokens restored from a cached prompt head are not "
                  "computed; nominal: every token sent and generated)." if nominal else
                  "FLOPs = 2 x parameters x tokens.")
    lines += ["Accuracy is over items with answers (chat items count for routing and cost only): SQuAD exact match "
              "for facts, numeric match for arithmetic and word problems, with its 95% bootstrap interval over items "
              f"(n = scored items). {flops_note}", ""]
    lines += ["| system | accuracy % [95% CI] | n | fact EM / F1 | large-model turns | escalated | FLOPs | "
              + ("nominal FLOPs | " if nominal else "")
              + "x large-only | wall s | x large-only | CPU s | p50 / p95 s | cost $ |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if nominal else "")]
    for name in names:
        summary = summaries[name]
        nominal_cell = f"{summary['nominal_flops']:.3g} | " if nominal else ""
        lines.append(
            f"| {name} | {_ci(summary.get('accuracy_ci'))} | {summary['scored']} | "
            f"{_fmt(summary['exact_match'])} / {_fmt(summary['f1'])} | "
            f"{summary['large_calls']}/{summary['items']} | {summary['escalated']} | {summary['flops']:.3g} | "
            f"{nominal_cell}{_ratio(summary['flops'], base and base['flops'])} | {summary['wall_seconds']:.0f} | "
            f"{_ratio(summary['wall_seconds'], base and base['wall_seconds'])} | {summary['cpu_seconds']:.0f} | "
            f"{_fmt(summary['latency_p50'], 2, 1)} / {_fmt(summary['latency_p95'], 2, 1)} | "
            f"{summary['cost_usd']:.4f} |")
    lines += ["", "## By kind of question", "",
              "| system | " + " | ".join(f"{kind} acc % / FLOPs / wall s" for kind in KINDS if counts[kind]) + " |",
              "|---|" + "---|" * sum(1 for kind in KINDS if counts[kind])]
    for name in names:
        cells = []
        for kind in KINDS:
            if not counts[kind]:
                continue
            part = summaries[name]["by_kind"].get(kind)
            cells.append("-" if part is None else
                         f"{_ci(part.get('accuracy_ci'))} / {part['flops']:.2g} / {part['wall_seconds']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _energy_lines(summaries, names, [kind for kind in KINDS if counts[kind]])
    if results.get("comparisons"):
        lines += ["", "## Paired comparisons (same items, 95% paired bootstrap intervals)", "",
                  "A difference is stated only where its interval excludes zero.", "",
                  "| system | against | n | accuracy difference, points | accuracy ratio | FLOPs ratio | "
                  "wall-time ratio |", "|---|---|---|---|---|---|---|"]
        for row in results["comparisons"]:
            difference = row.get("accuracy_difference")
            verdict = ""
            if difference:
                supported = difference["low"] > 0 or difference["high"] < 0
                verdict = " (supported)" if supported else " (not distinguishable)"
            lines.append(f"| {row['system']} | {row['against']} | {row['scored']} | "
                         f"{_ci(difference)}{verdict} | {_ci(row.get('accuracy_ratio'), 1, 3)} | "
                         f"{_ci(row.get('flops_ratio'), 1, 3)} | {_ci(row.get('wall_ratio'), 1, 3)} |")
    routing = results["routing"]
    if routing["confusion"]:
        lines += ["", f"## Routing (accuracy {_fmt(routing['accuracy'])}%)", "",
                  "Routes taken per kind of question; accuracy counts MT-bench's maths questions as MATH.", "",
                  "| kind \\ route | " + " | ".join(ROUTES) + " |", "|---|" + "---|" * len(ROUTES)]
        for kind in KINDS:
            row = routing["confusion"].get(kind)
            if row:
                lines.append(f"| {kind} | " + " | ".join(str(row.get(route, 0)) for route in ROUTES) + " |")
    the_sweep = results.get("sweep")
    if the_sweep:
        lines += ["", "## Threshold sweep (routed = routed-no-escalation + escalations answered as large-pipeline)",
                  "", f"APGR {_fmt(the_sweep['apgr'], 3, 1)} (95% CI {_bounds(the_sweep.get('apgr_ci'))}; "
                  f"random router 0.500); CPT(50%) "
                  f"{_fmt(the_sweep['cpt']['50%'])}% and CPT(80%) {_fmt(the_sweep['cpt']['80%'])}% of escalatable "
                  f"turns ({_fmt(the_sweep['cpt_large_share']['50%'])}% / "
                  f"{_fmt(the_sweep['cpt_large_share']['80%'])}% of all turns using the large model). Weak "
                  f"{_fmt(the_sweep['weak_accuracy'])}%, strong {_fmt(the_sweep['strong_accuracy'])}%.", "",
                  "| threshold | accuracy % | PGR | escalated | large-model turns % | FLOPs |",
                  "|---|---|---|---|---|---|"]
        for point in _thin(the_sweep["points"], 12):
            threshold = point["threshold"]
            lines.append(f"| {threshold if isinstance(threshold, str) else f'{threshold:.3f}'} | "
                         f"{_fmt(point['accuracy'])} | {_fmt(point['pgr'], 2, 1)} | "
                         f"{point['escalated']}/{point['escalatable']} | {_fmt(point['large_share'])} | "
                         f"{point['flops']:.3g} |")
    quality = results.get("confidence")
    if quality:
        lines += ["", f"## Confidence of the small model's FACT answers ({quality['n']} turns)", "",
                  f"AUC {_fmt(quality['auc'], 3, 1)} (right vs wrong answers), expected calibration error "
                  f"{_fmt(quality['ece'], 3, 1)}. Reliability: confidence bin, turns, mean confidence, share right.",
                  "", "| bin | turns | mean confidence | right |", "|---|---|---|---|"]
        lines += [f"| {row['low']:.1f}-{row['high']:.1f} | {row['n']} | {row['mean_probability']:.3f} | "
                  f"{row['observed']:.3f} |" for row in quality["bins"]]
    lines += _answerability_lines(results)
    lines += documents_lines(results)
    lines += ["", "## Goals", "", *goals(summaries, the_sweep, quality)]
    return "\n".join(lines) + "\n"


HEADLINE_SYSTEMS = ("large-only", "small-only", "routed-no-escalation", "routed", "large-pipeline", "oracle")


def render_headline(documents: list[dict[str, Any]]) -> str:
    """The README's headline table, one block of rows per results file: accuracy with its interval, and the
    paired difference and FLOPs and wall-time ratios against ``large-only`` on the same items."""
    lines = ["| suite | system | n | accuracy % [95% CI] | vs large-only, points [95% CI] | "
             "FLOPs x large-only [95% CI] | wall time x large-only |",
             "|---|---|---|---|---|---|---|"]
    for document in documents:
        suite = document["meta"].get("suite", "?")
        systems = document["systems"]
        for name in HEADLINE_SYSTEMS:
            if name not in systems:
                continue
            summary = document["summaries"][name]
            if BASELINE not in systems:
                difference = flops = wall = "-"
            elif name == BASELINE:
                difference, flops, wall = "-", "1.00x", "1.00x"
            else:
                row = compare(systems[name], systems[BASELINE])
                difference = _ci(row["accuracy_difference"])
                flops = _ci(row["flops_ratio"], 1, 2)
                wall = _ci(row["wall_ratio"], 1, 2)
            lines.append(f"| {suite} | {name} | {summary['scored']} | {_ci(summary.get('accuracy_ci'))} | "
                         f"{difference} | {flops} | {wall} |")
    return "\n".join(lines) + "\n"


def _thin(points: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    if len(points) <= count:
        return points
    step = (len(points) - 1) / (count - 1)
    return [points[round(index * step)] for index in range(count)]


def _energy_lines(summaries: dict[str, Any], names: list[str], kinds: list[str]) -> list[str]:
    """Joules per answer (overall and per kind), answers per kWh, generation speed and money per 1,000 answers."""
    measured = [name for name in names if summaries[name].get("energy_joules") is not None]
    if not measured:
        return []
    source = next(summaries[name]["energy_source"] for name in measured if summaries[name].get("energy_source"))
    base = summaries.get(BASELINE)
    base_joules = base.get("energy_joules") if base else None
    lines = ["", "## Energy, speed and money per answer", "",
             f"Energy source: {source}. Tokens per second: completion tokens over the model calls' wall time. "
             "An escalated turn of a composed system (routed, oracle) adds large-pipeline's whole measured energy for "
             "that item (its routing and retrieval included, a slight overcount) to the small model's.", "",
             "| system | J / answer | x large-only | answers / kWh | tokens / s | $ / 1,000 answers | "
             + " | ".join(f"{kind} J / answer" for kind in kinds) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(kinds)]
    for name in measured:
        summary = summaries[name]
        per_answer = summary["energy_joules"] / summary["items"]
        per_kind = []
        for kind in kinds:
            part = summary["by_kind"].get(kind)
            joules = part.get("energy_joules") if part else None
            per_kind.append("-" if joules is None else f"{joules / part['items']:.1f}")
        speed = summary.get("tokens_per_second")
        lines.append(f"| {name} | {per_answer:.1f} | {_ratio(summary['energy_joules'], base_joules)} | "
                     f"{3_600_000 / per_answer if per_answer else 0:,.0f} | "
                     f"{'-' if speed is None else f'{speed:.1f}'} | {summary['cost_per_1000_answers']:.4f} | "
                     + " | ".join(per_kind) + " |")
    return lines


def _answerability_lines(results: dict[str, Any]) -> list[str]:
    """Factual questions answered "not in your documents" (the plain refusal or a labelled general-knowledge answer)
    per system: the flag rate on a suite whose documents do not answer its questions, the false-flag rate on any
    other. Only fact items count: a chat prompt the router sent to retrieval is rightly flagged, not falsely."""
    answerable = results["meta"].get("answerable", True)
    items = results["items"]
    rows = []
    for name in SYSTEM_ORDER:
        records = results["systems"].get(name) or {}
        questions = [record for key, record in records.items() if items[key]["kind"] == "fact"]
        facts = [record for record in questions if record.get("route") == "FACT"]
        if facts and any("general_knowledge" in record for record in facts):
            flagged = sum(1 for record in facts if record.get("general_knowledge") or record.get("not_in_documents"))
            cited = len(facts) - flagged
            rows.append(f"| {name} | {len(questions)} | {len(facts)} | {flagged} | {_fmt(flagged / len(facts))}% | "
                        f"{cited} ({_fmt(cited / len(questions))}%) |")
    if not rows:
        return []
    title = ("flagged (the documents do not answer these questions)" if not answerable
             else "falsely flagged (the documents answer these questions)")
    return ["", f"## Not in the documents: {title}", "",
            "Fact questions only; answered from the documents = routed to FACT and not flagged (cited as support).", "",
            "| system | fact questions | FACT turns | flagged | share of FACT turns | answered from the documents |",
            "|---|---|---|---|---|---|", *rows]


def documents_lines(results: dict[str, Any]) -> list[str]:
    """The documents section of the report (see :func:`documents_summary`)."""
    summaries = {name: documents_summary(results, name) for name in SYSTEM_ORDER}
    present = {name: summary for name, summary in summaries.items() if summary is not None}
    if not present:
        return []
    base = (present.get("large-pipeline") or {}).get("flops")
    lines = ["", "## Your documents", "",
             "Answered questions: right = not flagged and holding a reference answer (containment or number); "
             "unanswered: right = flagged (the plain refusal or a labelled general-knowledge answer).", "",
             "| system | answered right % [95% CI] | F1 | unanswered flagged % | answered wrongly flagged % | "
             "general-knowledge answers to unanswered | FLOPs vs large-pipeline |", "|---|---|---|---|---|---|---|"]
    for name, summary in present.items():
        accuracy = summary["accuracy"]
        shown = (f"{accuracy['estimate'] * 100:.1f} [{accuracy['low'] * 100:.1f}, {accuracy['high'] * 100:.1f}]"
                 if accuracy else "-")
        lines.append(f"| {name} | {shown} | {_fmt(summary['f1'])} | {_fmt(summary['flagged'])} | "
                     f"{_fmt(summary['wrongly_flagged'])} | {summary['general_knowledge_inventions']} | "
                     f"{_ratio(summary['flops'], base)} |")
    for axis in ("format", "type"):
        names = list(present)
        keys = sorted({key for summary in present.values() for key in summary[f"by_{axis}"]})
        lines += ["", f"Answered right by {axis} (%, questions in brackets):", "",
                  f"| {axis} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key in keys:
            cells = []
            for name in names:
                cell = present[name][f"by_{axis}"].get(key)
                cells.append(f"{_fmt(cell['accuracy'])} ({cell['n']})" if cell else "-")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def render_documents(document: dict[str, Any]) -> str:
    """A documents run's tables for the README (the report's "Your documents" section without its heading)."""
    lines = documents_lines(rescore(document))
    return "\n".join(lines[3:]).strip() + "\n"


def goals(summaries: dict[str, Any], the_sweep: dict[str, Any] | None,
          quality: dict[str, Any] | None = None) -> list[str]:
    """The open issues' targets (#18, #19), each with the measured value and met / not met (point estimates; the
    intervals are in the tables above)."""
    routed, large, pipeline = summaries.get("routed"), summaries.get("large-only"), summaries.get("large-pipeline")
    lines = []

    def line(label: str, value: float | None, goal: str, met: bool | None) -> None:
        state = "n/a" if met is None else ("met" if met else "NOT met")
        lines.append(f"- {label}: {'-' if value is None else f'{value:.3g}'} (goal {goal}): {state}")

    if routed and large and routed["accuracy"] is not None and large["accuracy"] is not None:
        gain = (routed["accuracy"] - large["accuracy"]) * 100
        line("routed vs large-only, accuracy points", gain, ">= +25", gain >= 25)
        flops = routed["flops"] / large["flops"] if large["flops"] else None
        line("routed vs large-only, FLOPs ratio", flops, "<= 0.60", None if flops is None else flops <= 0.60)
        wall = routed["wall_seconds"] / large["wall_seconds"] if large["wall_seconds"] else None
        line("routed vs large-only, wall-time ratio", wall, "<= 0.60", None if wall is None else wall <= 0.60)
    if routed and pipeline and routed["accuracy"] is not None and pipeline["accuracy"]:
        share = routed["accuracy"] / pipeline["accuracy"]
        line("routed vs large-pipeline, accuracy ratio", share, ">= 0.95", share >= 0.95)
        flops = routed["flops"] / pipeline["flops"] if pipeline["flops"] else None
        line("routed vs large-pipeline, FLOPs ratio", flops, "<= 0.60", None if flops is None else flops <= 0.60)
    if the_sweep is not None:
        apgr = the_sweep.get("apgr")
        line("APGR routed-no-escalation -> large-pipeline", apgr, ">= 0.80", None if apgr is None else apgr >= 0.80)
    if quality is not None:
        auc = quality.get("auc")
        line("AUC of the FACT confidence", auc, ">= 0.85", None if auc is None else auc >= 0.85)
        line("expected calibration error of the FACT confidence", quality["ece"], "<= 0.05", quality["ece"] <= 0.05)
    return lines or ["- not enough systems in this run to check the goals"]
