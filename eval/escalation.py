"""``assistant eval train-escalation``: fit the escalation models on dev records and store them as JSON weights.

Training rows come from dev results files (``assistant eval run`` on ``mixed-dev``, ``facts-dev``,
``unanswerable-dev``); a test results file is refused. Per FACT turn of ``routed-no-escalation`` the records hold the
features the graph saw (``assistant.core.features``) and the score; the models are:

- ``fact``: P(the small model's reading is right | its features), on the reader's FACT turns: of a question the
  documents answer, the answer is right; of one they do not, the reader said so ("not in the documents"). Without
  the second kind every not-found draft looked wrong and went to the large model, which then read an invented answer
  out of the same passages (docs-dev: 2 of 3 such escalations);
- ``answerable``: P(the documents answer the question | question form and retrieval features), on FACT turns of
  answerable suites (label 1) and unanswerable ones (label 0);
- ``program_<tier>`` / ``working_<tier>``: P(the word problem's answer is right | its features), on word-problem
  turns answered by a program or by working with the calculator, one model per tier that solved them (a tier with
  too few rows is skipped);
- ``chat_<tier>``: P(a tier's free answer is acceptable | its features), on CHAT turns of ``routed-no-escalation``
  (the small model) and ``large-pipeline`` (the large one): an open prompt's answer as a person labelled it
  (``eval/data/chat_labels.jsonl``, filed under the answer's digest, so a changed answer is an unlabelled one), a
  question with a checkable answer (a fact the router sent to chat) as it was scored.

Each is an L2-regularised logistic regression (scikit-learn) on standardised features; the regularisation is chosen
by stratified 5-fold cross-validation on log loss, and the cross-validated predictions give the figures stored with
the weights (AUC, expected calibration error, Brier score), so the metadata never reports a fit on its own rows.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.escalation import EscalationModel, LogisticModel, load_escalation_model
from assistant.core.features import ANSWERABILITY_FEATURES
from common.files import atomic_output, sha256_file
from eval.errors import EvalError
from eval.results import load_results, rescore
from eval.stats import calibration, roc_auc

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 5
SEED = 20261202
WEAK = "routed-no-escalation"
STRONG = "large-pipeline"


@dataclass
class Rows:
    """One model's training rows: feature dicts and 0/1 labels."""

    features: list[dict[str, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, features: dict[str, float], label: int) -> None:
        """One more row."""
        self.features.append(features)
        self.labels.append(label)

    def fittable(self) -> bool:
        """Whether each class has a row in every cross-validation fold."""
        return min(self.labels.count(0), self.labels.count(1)) >= FOLDS


READER_FEATURE = "verbatim"
"""A feature only a reader's answer has (assistant.core.features.fact_features)."""
CHAT_FEATURE = "repetition"
"""A feature only a free answer has (assistant.core.features.chat_features)."""
CHAT_LABELS = Path(__file__).resolve().parent / "data" / "chat_labels.jsonl"
"""The shipped hand labels of chat-dev's small-model answers."""

ChatLabels = dict[tuple[str, str], int]
"""(item id, answer digest) -> 1 when the answer is acceptable, 0 when not."""


def answer_digest(text: str) -> str:
    """What a hand label is filed under: the first 16 hex digits of the sha256 of the answer as the record holds it."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_chat_labels(path: Path) -> ChatLabels:
    """Hand labels, one JSON object a line: ``item_id``, ``answer_digest``, ``acceptable`` (true/false), ``why``."""
    labels: ChatLabels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            labels[(str(entry["item_id"]), str(entry["answer_digest"]))] = int(bool(entry["acceptable"]))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise EvalError(f"{path}:{number} is not a chat label ({error})",
                            "each line: {\"item_id\": ..., \"answer_digest\": ..., \"acceptable\": true|false, "
                            "\"why\": ...}") from None
    return labels


def training_rows(documents: Iterable[dict[str, Any]], chat_labels: ChatLabels | None = None) -> dict[str, Rows]:
    """The rows of every model from results documents: their ``routed-no-escalation`` FACT records (``fact``,
    ``answerable``), word-problem records (``program_<tier>``) and CHAT records (``chat``: labelled or scored)."""
    rows = {"fact": Rows(), "answerable": Rows()}
    for document in documents:
        suite_answerable = bool(document["meta"].get("answerable", True))
        items = document.get("items", {})
        for item_id, record in document["runs"].get(STRONG, {}).items():
            _add_chat_row(rows, item_id, record, chat_labels, "large")
        for item_id, record in document["runs"].get(WEAK, {}).items():
            answerable = item_answerable(items.get(item_id, {}), suite_answerable)
            features = record.get("features") or {}
            if record.get("route") == "CHAT":
                _add_chat_row(rows, item_id, record, chat_labels, "small")
                continue
            kind = "program" if "executes" in features else "working" if "checked" in features else ""
            if kind and record.get("correct") is not None:
                rows.setdefault(f"{kind}_{answering_tier(record)}", Rows()).add(features,
                                                                                 int(float(record["correct"]) >= 1.0))
            if record.get("route") != "FACT" or "dense_top" not in features:
                continue
            rows["answerable"].add(features, int(answerable))
            # the fact model judges the reader's answers: a turn the answerability model sent to the refusal or to
            # general knowledge has no reader features (taking it would shrink the shared features to retrieval's)
            if READER_FEATURE not in features:
                continue
            if not answerable:  # the documents do not answer it: the reader was right to say so, wrong otherwise
                rows["fact"].add(features, int(features.get("not_found", 0.0) >= 1.0))
            elif record.get("correct") is not None:
                rows["fact"].add(features, int(float(record["correct"]) >= 1.0))
    return rows


def _add_chat_row(rows: dict[str, Rows], item_id: str, record: dict[str, Any], labels: ChatLabels | None,
                  system_tier: str) -> None:
    """A labelled CHAT turn's row, under ``chat_<tier>`` for the tier that answered it (``system_tier``, the tier
    the run's system starts on, when the record names none)."""
    features = record.get("features") or {}
    if record.get("route") != "CHAT" or CHAT_FEATURE not in features:
        return
    label = chat_label(item_id, record, labels or {})
    if label is not None:
        rows.setdefault(f"chat_{answering_tier(record, system_tier)}", Rows()).add(features, label)


def answering_tier(record: dict[str, Any], default: str = "large") -> str:
    """The tier of the turn's first model call after routing (``default`` when none is recorded)."""
    return next((usage["tier"] for usage in record.get("usage", []) if usage.get("step") != "route"), default)


def chat_label(item_id: str, record: dict[str, Any], labels: ChatLabels) -> int | None:
    """A CHAT turn's label: its score when the item has a checkable answer, else its hand label (None: unlabelled)."""
    if record.get("correct") is not None:
        return int(float(record["correct"]) >= 1.0)
    return labels.get((item_id, answer_digest(str(record.get("text", "")))))


def item_answerable(item: dict[str, Any], suite_answerable: bool) -> bool:
    """Whether the documents answer an item: a documents-suite question says so itself (its type ``unanswerable``
    in its source), any other item takes its suite's word."""
    source = str(item.get("source", ""))
    if source.startswith("docs:"):
        return not source.endswith(":unanswerable")
    return suite_answerable


def feature_names(name: str, rows: Rows) -> tuple[str, ...]:
    """The features model ``name`` uses: the answerability set, or every feature its rows share."""
    if name == "answerable":
        return ANSWERABILITY_FEATURES
    shared = set.intersection(*(set(features) for features in rows.features)) if rows.features else set()
    return tuple(sorted(shared))


def _matrix(rows: Rows, names: Sequence[str]) -> np.ndarray:
    return np.array([[float(features.get(name, 0.0)) for name in names] for features in rows.features])


def fit_logistic(rows: Rows, names: Sequence[str], *, seed: int = SEED) -> tuple[LogisticModel, dict[str, Any]]:
    """The logistic model over ``names`` with the best cross-validated C, and its cross-validated figures."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.array(rows.labels)
    if not rows.fittable():
        raise EvalError(f"{len(labels)} rows with {int(labels.sum())} positives: too few of one class to fit",
                        "add dev results with more items (e.g. --suite facts-dev)")
    raw = _matrix(rows, names)
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale[scale < 1e-9] = 1.0
    standard = (raw - mean) / scale
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000)
        predicted = cross_val_predict(model, standard, labels, cv=folds, method="predict_proba")[:, 1]
        clipped = np.clip(predicted, 1e-6, 1 - 1e-6)
        loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
        if best is None or loss < best[0]:
            best = (loss, c, predicted)
    assert best is not None
    loss, c, predicted = best
    final = LogisticRegression(C=c, max_iter=5000).fit(standard, labels)
    fitted = LogisticModel(tuple(names), tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                           tuple(float(v) for v in final.coef_[0]), float(final.intercept_[0]))
    reliability = calibration(predicted.tolist(), labels.tolist())
    metrics = {"rows": len(labels), "positives": int(labels.sum()), "C": c, "cv_log_loss": round(loss, 4),
               "cv_auc": _round(roc_auc(labels.tolist(), predicted.tolist())),
               "cv_ece": round(reliability["ece"], 4),
               "cv_brier": round(float(np.mean((predicted - labels) ** 2)), 4)}
    return fitted, metrics


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def train_escalation(results: Sequence[Path], output: Path, *, command: str = "", keep: Sequence[str] = (),
                     kept_from: Path | None = None, chat_labels: Path | None = None) -> EscalationModel:
    """Fit every model on the dev results files and write the JSON weights to ``output``; the models named in
    ``keep`` are taken as they are from the weights file ``kept_from`` instead, with their metrics and provenance.
    ``chat_labels`` holds the hand labels of free answers (default: the shipped file, when there is one)."""
    documents = []
    provenance = []
    for path in results:
        document = load_results(path)
        meta = document["meta"]
        if meta.get("split") != "dev":
            raise EvalError(f"{path} comes from the {meta.get('split')!r} suite {meta.get('suite')!r}: the "
                            "escalation models are fitted on dev items only",
                            "train on dev runs, e.g. `assistant eval run --suite facts-dev`")
        documents.append(document)
        provenance.append({"suite": meta.get("suite"), "answerable": meta.get("answerable", True),
                           "commit": (meta.get("git") or {}).get("commit"), "created": meta.get("created"),
                           "records": {name: len(document["runs"].get(name, {})) for name in (WEAK, STRONG)
                                       if name in document["runs"]}})
    labels_path = chat_labels or (CHAT_LABELS if CHAT_LABELS.exists() else None)
    rows = training_rows(documents, load_chat_labels(labels_path) if labels_path else None)
    models: dict[str, LogisticModel] = {}
    metrics: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    if keep:
        if kept_from is None:
            raise EvalError("--keep needs the weights file to keep models from")
        previous = load_escalation_model(kept_from)
        missing = [name for name in keep if name not in previous.models]
        if missing:
            raise EvalError(f"{kept_from} has no model {', '.join(missing)}",
                            f"it has {', '.join(sorted(previous.models))}")
        for name in keep:
            models[name] = previous.models[name]
            metrics[name] = previous.meta.get("metrics", {}).get(name, {})
        kept = {"models": list(keep), "from": {"trained": previous.meta.get("trained"),
                                               "command": previous.meta.get("command"),
                                               "data": previous.meta.get("data")}}
    for name, model_rows in rows.items():
        if name in models:
            continue
        if name.startswith(("program_", "working_", "chat")) and not model_rows.fittable():
            metrics[name] = {"rows": len(model_rows.labels), "skipped": "too few rows of one class"}
            continue
        models[name], metrics[name] = fit_logistic(model_rows, feature_names(name, model_rows))
    if labels_path is not None:
        provenance.append({"chat_labels": labels_path.name, "sha256": sha256_file(labels_path)})
    meta = {"trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
            "data": provenance, "metrics": metrics,
            "note": "fitted on dev items only; figures are 5-fold cross-validated on those rows"}
    if kept:
        meta["kept"] = kept
    fitted = EscalationModel(models, meta)
    with atomic_output(output) as handle:
        handle.write((json.dumps(fitted.to_dict(), indent=1) + "\n").encode())
    return load_escalation_model(output)


def reconfidence(document: dict[str, Any], model: EscalationModel) -> dict[str, Any]:
    """``document`` with its ``routed-no-escalation`` FACT confidences recomputed by ``model`` from the recorded
    features (so a threshold is chosen for the model that will run), and everything derived re-scored."""
    if "fact" not in model.models:
        return document
    runs = dict(document["runs"])
    weak = {}
    for item_id, record in runs.get(WEAK, {}).items():
        features = record.get("features") or {}
        if record.get("route") == "FACT" and "dense_top" in features and not record.get("general_knowledge"):
            confidence = round(model.models["fact"].probability(features), 4)
            record = record | {"confidence": confidence}
            if "decisions" in record:  # the sweep replays the draft decision's own inputs
                record["decisions"] = [item | {"inputs": item["inputs"] | {"confidence": confidence}}
                                       if item["inputs"].get("stage") == "draft" else item
                                       for item in record["decisions"]]
        weak[item_id] = record
    runs[WEAK] = weak
    return rescore(document | {"runs": runs})
