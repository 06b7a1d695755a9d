"""Turn a run's records into results: scores, summaries by system and kind, the sweep, markdown and PNG plots.

Everything here reads the results JSON (or the records it will hold), so ``assistant eval report DIR`` re-renders
a report, with the current metrics, without running a model.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from common.stats import percentile
from eval.datasets import KINDS, EvalItem, route_label
from eval.errors import EvalError
from eval.metrics import flagged, score
from eval.stats import (
    Interval,
    apgr_of,
    bootstrap,
    calibration,
    mean_interval,
    paired_difference,
    ratio_of_sums,
    roc_auc,
)
from eval.sweep import (
    Sweep,
    accuracy,
    draft_confidence,
    floor_records,
    oracle_records,
    record_flops,
    record_nominal_flops,
    routed_records,
    sweep,
    swept,
    uses_large,
)

ROUTES = ("FACT", "MATH", "CHAT")
BASELINE = "large-only"


def scored(records: dict[str, dict[str, Any]], items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records with ``correct``, ``exact_match`` and ``f1`` computed against their items' answers.

    A results file keeps no dataset text: its items have no answers, and the scores stored in its records stand.
    """
    result = {}
    for item_id, record in records.items():
        item = items[item_id]
        if "answers" not in item:
            result[item_id] = record
            continue
        value = score(item["kind"], record.get("text", ""), item["answers"])
        result[item_id] = record | {"correct": value.correct, "exact_match": value.exact_match, "f1": value.f1}
    return result


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, EM/F1, escalation, tokens per model, FLOPs, money, wall and CPU seconds, p50/p95 latency.

    Records are taken in item-id order, so an interval depends on the items, not on the order they were answered."""
    values = [records[key] for key in sorted(records)]
    tokens: dict[str, dict[str, int]] = {}
    for record in values:
        for usage in record.get("usage", []):
            tier = tokens.setdefault(usage.get("tier", "?"), {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
            tier["prompt_tokens"] += int(usage.get("prompt_tokens", 0))
            tier["completion_tokens"] += int(usage.get("completion_tokens", 0))
            tier["calls"] += 1
    walls = [float(record.get("wall_seconds", 0.0)) for record in values]
    energies = [record.get("energy_joules") for record in values]
    measured = [float(value) for value in energies if value is not None]
    completion = sum(int(usage.get("completion_tokens", 0)) for record in values for usage in record.get("usage", []))
    model_wall = sum(float(usage.get("wall_seconds", 0.0)) for record in values for usage in record.get("usage", []))
    cost_usd = sum(usage.get("cost_usd", 0.0) for record in values for usage in record.get("usage", []))
    facts = [record for record in values if record.get("f1") is not None]
    interval = mean_interval([float(record["correct"]) for record in values if record.get("correct") is not None])
    return {
        "items": len(values),
        "scored": sum(1 for record in values if record.get("correct") is not None),
        "accuracy": accuracy(records),
        "accuracy_ci": interval.to_dict() if interval else None,
        "exact_match": _mean([record["exact_match"] for record in facts]),
        "f1": _mean([record["f1"] for record in facts]),
        # escalations by confidence (word problems routed to the large model by capability are not counted)
        "escalated": sum(1 for record in values
                         if any(usage.get("step") == "escalate" for usage in record.get("usage", []))),
        "large_calls": sum(1 for record in values if uses_large(record)),
        # FACT turns answered "not in your documents; from general knowledge"
        "general_knowledge": sum(1 for record in values if record.get("general_knowledge")),
        "tokens": tokens,
        "flops": sum(record_flops(record) for record in values),
        "nominal_flops": sum(record_nominal_flops(record) for record in values),
        "cost_usd": cost_usd,
        "cost_per_1000_answers": cost_usd / len(values) * 1000 if values else None,
        # every record measured, or no figure: a partial sum would look like a cheaper system
        "energy_joules": sum(measured) if values and len(measured) == len(values) else None,
        "energy_source": next((record["energy_source"] for record in values if record.get("energy_source")), None),
        "tokens_per_second": completion / model_wall if model_wall else None,
        "wall_seconds": sum(walls),
        "cpu_seconds": sum(float(record.get("cpu_seconds", 0.0)) for record in values),
        "latency_p50": percentile(walls, 50),
        "latency_p95": percentile(walls, 95),
    }


def confusion(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Routes taken per kind of question: ``{kind: {route: count}}``."""
    matrix: dict[str, Counter[str]] = {}
    for record in records.values():
        matrix.setdefault(record["kind"], Counter())[record.get("route") or "-"] += 1
    return {kind: dict(counts) for kind, counts in matrix.items()}


def routing_accuracy(records: dict[str, dict[str, Any]], items: dict[str, dict[str, Any]]) -> float | None:
    """Share of items routed where ``eval.datasets.route_label`` says they belong."""
    right = sum(record.get("route") == route_label(items[key]["kind"], items[key].get("source", ""))
                for key, record in records.items())
    return right / len(records) if records else None


def build_results(items: list[EvalItem], runs: dict[str, dict[str, dict[str, Any]]], *, composed: list[str],
                  threshold: float, chat_threshold: float | None, meta: dict[str, Any]) -> dict[str, Any]:
    """The results document: items (ids, kinds, sources and splits; no dataset text), every system's scored
    records, summaries, intervals and the sweep."""
    answers = {item.id: {"kind": item.kind, "answers": list(item.answers)} for item in items}
    item_table = {item.id: {"kind": item.kind, "source": item.source, "split": item.split} for item in items}
    scored_runs = {name: scored(records, answers) for name, records in runs.items()}
    return rescore({"meta": meta | {"threshold": threshold, "chat_threshold": chat_threshold, "composed": composed},
                    "items": item_table,
                    "runs": scored_runs})


def rescore(results: dict[str, Any]) -> dict[str, Any]:
    """Recompute scores, composed systems, summaries and the sweep from the raw records in ``results``."""
    items = results["items"]
    runs = {name: scored(records, items) for name, records in results["runs"].items()}
    meta = results["meta"]
    systems: dict[str, dict[str, dict[str, Any]]] = dict(runs)
    weak, strong = runs.get("routed-no-escalation"), runs.get("large-pipeline")
    the_sweep: Sweep | None = None
    if weak is not None and strong is not None:
        chat_threshold = meta.get("chat_threshold")
        if "routed" in meta.get("composed", []):
            systems["routed"] = routed_records(weak, strong, float(meta["threshold"]), chat_threshold)
        if "oracle" in meta.get("composed", []):
            systems["oracle"] = oracle_records(weak, strong)
        the_sweep = sweep(weak, strong, chat_threshold)
    summaries = {name: summarize(records) | {"by_kind": {
        kind: summarize({key: value for key, value in records.items() if items[key]["kind"] == kind})
        for kind in KINDS if any(items[key]["kind"] == kind for key in records)}}
        for name, records in systems.items()}
    routed_like = next((systems[name] for name in ("routed-no-escalation", "routed", "large-pipeline")
                        if name in systems), None)
    matrix = confusion(routed_like) if routed_like else {}
    the_sweep_dict = the_sweep.to_dict() if the_sweep else None
    if the_sweep_dict is not None and weak is not None and strong is not None:
        interval = apgr_interval(weak, strong, meta.get("chat_threshold"))
        the_sweep_dict["apgr_ci"] = interval.to_dict() if interval else None
    return {"meta": meta, "items": items, "runs": results["runs"], "systems": systems, "summaries": summaries,
            "comparisons": comparisons(systems),
            "confidence": confidence_quality(weak) if weak is not None else None,
            "routing": {"confusion": matrix,
                        "accuracy": routing_accuracy(routed_like, items) if routed_like else None},
            "sweep": the_sweep_dict}


COMPARED = (("routed", "large-only"), ("routed", "large-pipeline"), ("routed", "routed-no-escalation"),
            ("large-pipeline", "large-only"), ("oracle", "routed"))


def comparisons(systems: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every pair of :data:`COMPARED` present in the run, compared with :func:`compare`."""
    return [{"system": first, "against": second} | compare(systems[first], systems[second])
            for first, second in COMPARED if first in systems and second in systems]


def compare(first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Two systems over the items both answered: the accuracy difference (points), the accuracy ratio, and the
    FLOPs and wall-time ratios, each with its paired bootstrap interval."""
    ids = sorted(key for key in first if key in second)
    both = [key for key in ids if first[key].get("correct") is not None and second[key].get("correct") is not None]
    a = [float(first[key]["correct"]) for key in both]
    b = [float(second[key]["correct"]) for key in both]
    intervals = {
        "accuracy_difference": paired_difference(a, b),
        "accuracy_ratio": ratio_of_sums(a, b),
        "flops_ratio": ratio_of_sums([record_flops(first[key]) for key in ids],
                                     [record_flops(second[key]) for key in ids]),
        "wall_ratio": ratio_of_sums([float(first[key].get("wall_seconds", 0.0)) for key in ids],
                                    [float(second[key].get("wall_seconds", 0.0)) for key in ids]),
    }
    return {"items": len(ids), "scored": len(both)} | {
        name: value.to_dict() if value else None for name, value in intervals.items()}


def confidence_quality(weak: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """How well ``confidence`` predicts the small model's FACT answers being right: AUC, expected calibration error
    and the reliability table, over the FACT turns that could escalate."""
    turns = [weak[key] for key in sorted(weak) if weak[key].get("route") == "FACT"
             and draft_confidence(weak[key]) is not None and weak[key].get("correct") is not None]
    if not turns:
        return None
    confidences = [float(draft_confidence(record) or 0.0) for record in turns]
    outcomes = [float(record["correct"]) for record in turns]
    return {"n": len(turns), "auc": roc_auc(outcomes, confidences)} | calibration(confidences, outcomes)


def apgr_interval(weak: dict[str, dict[str, Any]], strong: dict[str, dict[str, Any]],
                  chat_threshold: float | None) -> Interval | None:
    """APGR of the routed system's threshold sweep with its bootstrap interval over items."""
    ids = sorted(key for key in weak if key in strong)
    if not ids:
        return None
    floor = floor_records(weak, strong, chat_threshold)
    columns = [
        [float(draft_confidence(weak[key]) or 0.0) for key in ids],
        [float(floor[key].get("correct") or 0.0) for key in ids],
        [float(strong[key].get("correct") or 0.0) for key in ids],
        [float(floor[key].get("correct") is not None) for key in ids],
        [float(swept(weak[key], chat_threshold)) for key in ids],
    ]

    def statistic(confidence: np.ndarray, low: np.ndarray, high: np.ndarray, has_score: np.ndarray,
                  decided: np.ndarray) -> float:
        return apgr_of(confidence, low, high, has_score.astype(bool), decided.astype(bool))

    return bootstrap(columns, statistic)


def machine() -> dict[str, Any]:
    """Where the run happened."""
    import os

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}


# ---- rendering -----------------------------------------------------------------------------------

SYSTEM_ORDER = ("large-only", "large-pipeline", "small-only", "routed", "routed-no-escalation", "oracle")


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
    """Factual questions answered "not in your documents" per system: the flag rate on a suite whose documents do
    not answer its questions, the false-flag rate on any other. Only fact items count: a chat prompt the router sent
    to retrieval is rightly flagged, not falsely."""
    answerable = results["meta"].get("answerable", True)
    items = results["items"]
    rows = []
    for name in SYSTEM_ORDER:
        records = results["systems"].get(name) or {}
        questions = [record for key, record in records.items() if items[key]["kind"] == "fact"]
        facts = [record for record in questions if record.get("route") == "FACT"]
        if facts and any("general_knowledge" in record for record in facts):
            flagged = sum(1 for record in facts if record.get("general_knowledge"))
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


def _flops(record: dict[str, Any]) -> float:
    return float(sum(usage.get("flops", 0.0) for usage in record.get("usage", [])))


def documents_summary(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    """One system on a documents suite: accuracy on the answered questions (with its interval, by format and by
    question type), the share of unanswered questions flagged, of answered ones wrongly flagged, the
    general-knowledge answers given to questions the documents do not answer (inventions about the user's own
    things), and FLOPs. None when the run holds no documents questions."""
    items = results["items"]
    records = results["systems"].get(name) or {}
    documents = {key: record for key, record in records.items() if items[key]["kind"] == "document"}
    if not documents:
        return None
    answered = {key: record for key, record in documents.items() if not items[key]["source"].endswith(":unanswerable")}
    unanswered = {key: record for key, record in documents.items() if key not in answered}

    def accuracy(keys: list[str]) -> float | None:
        return sum(float(documents[key].get("correct") or 0.0) for key in keys) / len(keys) if keys else None

    by: dict[str, dict[str, list[str]]] = {"format": {}, "type": {}}
    for key in sorted(answered):
        # the documents suite's sources are "docs:<format>:<question type>"; a user's file says neither
        parts = items[key]["source"].split(":", 2)
        form, kind = (parts[1], parts[2]) if len(parts) == 3 else ("other", "other")
        by["format"].setdefault(form, []).append(key)
        by["type"].setdefault(kind, []).append(key)
    interval = mean_interval([float(answered[key].get("correct") or 0.0) for key in sorted(answered)])
    wrongly = sum(1 for record in answered.values() if flagged(record.get("text", "")))
    invented = sum(1 for record in unanswered.values() if record.get("general_knowledge"))
    return {
        "answered": len(answered), "unanswered": len(unanswered),
        "accuracy": interval.to_dict() if interval else None,
        "f1": _mean([float(record.get("f1") or 0.0) for record in answered.values()]),
        "by_format": {form: {"n": len(keys), "accuracy": accuracy(keys)} for form, keys in by["format"].items()},
        "by_type": {kind: {"n": len(keys), "accuracy": accuracy(keys)} for kind, keys in by["type"].items()},
        "flagged": accuracy(sorted(unanswered)), "wrongly_flagged": wrongly / len(answered) if answered else None,
        "general_knowledge_inventions": invented, "flops": sum(_flops(record) for record in documents.values()),
    }


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


def render_plots(results: dict[str, Any], directory: Path) -> list[Path]:
    """The cost-quality curve: accuracy against large-model share and against FLOPs, with the random router."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = results["summaries"]
    the_sweep = results.get("sweep")
    figure, (share_axis, flops_axis) = plt.subplots(1, 2, figsize=(12, 5))
    base_flops = (summaries.get(BASELINE) or {}).get("flops") or None
    for name in SYSTEM_ORDER:
        summary = summaries.get(name)
        if summary is None or summary["accuracy"] is None:
            continue
        share = summary["large_calls"] / max(1, summary["items"])
        flops = summary["flops"] / base_flops if base_flops else summary["flops"]
        for axis, x in ((share_axis, share), (flops_axis, flops)):
            axis.scatter([x], [summary["accuracy"] * 100], s=50, zorder=3)
            axis.annotate(name, (x, summary["accuracy"] * 100), textcoords="offset points", xytext=(5, 5),
                          fontsize=8)
    if the_sweep:
        points = the_sweep["points"]
        shares = [point["large_share"] for point in points]
        flops = [point["flops"] / base_flops if base_flops else point["flops"] for point in points]
        accuracies = [point["accuracy"] * 100 for point in points]
        share_axis.plot(shares, accuracies, "-", color="tab:blue", label="routed, threshold sweep")
        flops_axis.plot(flops, accuracies, "-", color="tab:blue", label="routed, threshold sweep")
        for axis, xs in ((share_axis, shares), (flops_axis, flops)):
            axis.plot([xs[0], xs[-1]], [accuracies[0], accuracies[-1]], "--", color="gray", label="random router")
    share_axis.set_xlabel("share of turns using the large model")
    flops_axis.set_xlabel("FLOPs (x large-only)" if base_flops else "FLOPs")
    for axis in (share_axis, flops_axis):
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"Cost-quality: suite {results['meta'].get('suite')}, {len(results['items'])} items")
    figure.tight_layout()
    path = directory / "cost_quality.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths = [path]
    quality = results.get("confidence")
    if quality and quality["bins"]:
        figure, axis = plt.subplots(figsize=(5, 5))
        axis.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        bins = quality["bins"]
        axis.plot([row["mean_probability"] for row in bins], [row["observed"] for row in bins], "o-",
                  label=f"FACT confidence (ECE {quality['ece']:.3f}, n = {quality['n']})")
        for row in bins:
            axis.annotate(str(row["n"]), (row["mean_probability"], row["observed"]), textcoords="offset points",
                          xytext=(4, -10), fontsize=7)
        axis.set_xlabel("confidence (mean of the bin)")
        axis.set_ylabel("share of answers right")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper left", fontsize=8)
        axis.set_title(f"Reliability: suite {results['meta'].get('suite')}")
        figure.tight_layout()
        paths.append(directory / "reliability.png")
        figure.savefig(paths[-1], dpi=110)
        plt.close(figure)
    return paths


def write_report(results: dict[str, Any], directory: Path, *, results_name: str | None = None) -> list[Path]:
    """Write ``results_<timestamp>.json`` (unless re-rendering), ``report.md`` and the PNG into ``directory``."""
    from common.files import atomic_output

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if results_name is not None:
        path = directory / results_name
        with atomic_output(path) as handle:
            handle.write(json.dumps(_raw(results), separators=(",", ":"), default=str).encode())
        written.append(path)
    with atomic_output(directory / "report.md") as handle:
        handle.write(render_markdown(results).encode())
    written.append(directory / "report.md")
    written += render_plots(results, directory)
    return written


def _raw(results: dict[str, Any]) -> dict[str, Any]:
    """What the results file keeps: meta, items (ids, kinds, sources, splits), scored records, derived numbers."""
    return {key: results[key] for key in ("meta", "items", "runs", "summaries", "comparisons", "routing", "sweep")}


def latest_results(location: Path) -> Path:
    """``location`` itself if it is a file, else the newest ``results_*.json`` inside it."""
    if location.is_file():
        return location
    found = sorted(location.glob("results_*.json")) if location.is_dir() else []
    if not found:
        raise EvalError(f"no results_*.json in {location}",
                        "run `assistant eval run --output DIR` first, or pass the directory it wrote")
    return found[-1]


def load_results(location: Path) -> dict[str, Any]:
    """Read a results file (or the newest in a directory) and recompute everything derived from it."""
    path = latest_results(location)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EvalError(f"cannot read {path}: {error}", "pass a results_*.json written by `assistant eval run`"
                        ) from None
    return rescore(raw)
