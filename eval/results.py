"""The figures of a run: scores, summaries by system and kind, the composed systems and the sweep, paired
comparisons, the confidence's quality; results files read back and recomputed.

Everything here reads the results JSON (or the records it will hold), so ``assistant eval report DIR`` re-renders
a report, with the current metrics, without running a model."""

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
    starting_chat,
    sweep,
    swept,
    uses_large,
)

ROUTES = ("FACT", "MATH", "CHAT")


BASELINE = "large-only"
SYSTEM_ORDER = ("large-only", "large-pipeline", "small-only", "routed", "routed-no-escalation", "oracle")


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
                  threshold: float, chat_threshold: float | None, meta: dict[str, Any],
                  chat_start: str = "small") -> dict[str, Any]:
    """The results document: items (ids, kinds, sources and splits; no dataset text), every system's scored
    records, summaries, intervals and the sweep."""
    answers = {item.id: {"kind": item.kind, "answers": list(item.answers)} for item in items}
    item_table = {item.id: {"kind": item.kind, "source": item.source, "split": item.split} for item in items}
    scored_runs = {name: scored(records, answers) for name, records in runs.items()}
    return rescore({"meta": meta | {"threshold": threshold, "chat_threshold": chat_threshold, "chat_start": chat_start,
                                    "composed": composed},
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
    if weak is not None:  # results written before the setting existed drafted chat on the small model
        weak = starting_chat(weak, str(meta.get("chat_start", "small")))
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


def raw_results(results: dict[str, Any]) -> dict[str, Any]:
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


def recomposed(results: dict[str, Any], source: Path, *, chat_start: str) -> dict[str, Any]:
    """``results`` with the routed system composed again as if ``assistant.chat_start`` had been ``chat_start``
    (no model runs: CHAT turns take large-pipeline's record where the large model starts); the meta says so. Sound
    only when nothing else that answers has changed since the run."""
    meta = results["meta"] | {"chat_start": chat_start, "recomposed": {
        "from": str(source), "created": results["meta"].get("created"),
        "was": {"chat_start": results["meta"].get("chat_start", "small")}}}
    return rescore({"meta": meta, "items": results["items"], "runs": results["runs"]})
