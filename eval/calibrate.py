"""``assistant eval calibrate``: pick the escalation threshold from a run's sweep and write it to the settings file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from assistant.core.escalation import EscalationModel
from common.files import atomic_output
from eval.errors import EvalError
from eval.escalation import reconfidence
from eval.results import load_results
from eval.sweep import SweepPoint, choose_threshold

_SECTION = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what the sweep measured at it."""

    threshold: float
    point: SweepPoint
    total_items: int
    settings_file: Path

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"threshold {self.threshold:.4f}: accuracy {self.point.accuracy * 100:.1f}%, "
                f"{self.point.escalated}/{self.total_items} turns escalated "
                f"({self.point.escalated / max(1, self.total_items) * 100:.1f}%), "
                f"large model in {self.point.large_share * 100:.1f}% of turns; written to {self.settings_file}")


def set_toml_value(path: Path, section: str, key: str, literal: str) -> None:
    """Set ``key = literal`` in ``[section]`` of a TOML file, keeping every other line (and comments) as it was."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    start = next((index for index, line in enumerate(lines)
                  if (match := _SECTION.match(line)) and match.group(1).strip() == section), None)
    assignment = f"{key} = {literal}"
    if start is None:
        lines += ([""] if lines and lines[-1].strip() else []) + [f"[{section}]", assignment]
    else:
        end = next((index for index in range(start + 1, len(lines)) if _SECTION.match(lines[index])), len(lines))
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        found = next((index for index in range(start + 1, end) if pattern.match(lines[index])), None)
        if found is None:
            lines.insert(start + 1, assignment)
        else:
            lines[found] = assignment
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EvalError(f"{path} would not be valid TOML after the change ({error})",
                        f"fix the file by hand, then set [{section}] {key} = {literal}") from None
    with atomic_output(path) as handle:
        handle.write(text.encode())


def calibrate(results: Path, settings_file: Path, *, target_escalation: float | None = None,
              target_accuracy: float | None = None, target_relative: float | None = None,
              model: EscalationModel | None = None) -> Calibration:
    """Choose the threshold meeting the target on the run's sweep and write ``[assistant] threshold``.

    With ``model``, the FACT confidences are first recomputed from the recorded features by that model (the one
    that will run), so the threshold fits it. ``target_relative`` asks for that share of large-pipeline's accuracy.
    """
    if sum(value is not None for value in (target_escalation, target_accuracy, target_relative)) != 1:
        raise EvalError("give exactly one of --target-escalation, --target-accuracy and --target-relative",
                        "e.g. --target-escalation 0.2 (at most 20% of turns escalate), --target-accuracy 0.6, or "
                        "--target-relative 0.95 (95% of large-pipeline's accuracy)")
    for value in (target_escalation, target_accuracy, target_relative):
        if value is not None and not 0 <= value <= 1:
            raise EvalError(f"target {value} is not a share between 0 and 1", "e.g. 0.2 for 20%")
    document = load_results(results)
    if document["meta"].get("split") == "test":
        raise EvalError(f"{results} comes from the test suite {document['meta'].get('suite')!r}: a threshold chosen "
                        "on test items would make every test figure optimistic",
                        "calibrate on a dev run, e.g. `assistant eval run --suite mixed-dev --systems routed`")
    if model is not None:
        document = reconfidence(document, model)
    the_sweep = document.get("sweep")
    if not the_sweep:
        raise EvalError("these results have no threshold sweep",
                        "run the eval with --systems routed (it runs routed-no-escalation and large-pipeline)")
    points = [SweepPoint.from_dict(point) for point in the_sweep["points"]]
    if target_relative is not None:
        target_accuracy = target_relative * float(the_sweep["strong_accuracy"])
    total = len(document["items"])
    chosen = choose_threshold(points, target_escalation=target_escalation, target_accuracy=target_accuracy,
                              total_items=total)
    if chosen is None:
        best = max(point.accuracy for point in points)
        raise EvalError(f"no threshold reaches accuracy {target_accuracy}: the best is {best:.3f}",
                        "lower the target, or improve the large model or the retrieval")
    threshold = min(1.0, chosen.threshold)
    set_toml_value(settings_file, "assistant", "threshold", f"{threshold:.4f}")
    return Calibration(threshold, chosen, total, settings_file)
