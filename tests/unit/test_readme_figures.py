"""Published figures are re-derived from the committed results files, not typed by hand: the archived headline of
2026-12-02 (its datasets can no longer be obtained) and the README's headline (commit a74c497)."""

from __future__ import annotations

from pathlib import Path

from eval.render import render_headline
from eval.results import load_results

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "docs" / "eval" / "archive" / "2026-12-02-bigbench-1.0.0"
# The same files, in the same order, as the command the archive's note shows above its table.
HEADLINE = [ARCHIVE / name for name in ("mixed-test", "shift-nyt", "shift-reddit", "shift-amazon")]
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def test_the_archived_headline_is_the_rendering_of_its_committed_results() -> None:
    documents = [load_results(path) for path in HEADLINE]
    assert all(document["meta"]["split"] == "test" for document in documents)
    note = (ARCHIVE / "README.md").read_text(encoding="utf-8")
    assert "can no longer be obtained" in note
    table = note.split(START, 1)[1].split(END, 1)[0]
    assert table.strip() == render_headline(documents).strip()


def test_committed_results_hold_no_dataset_text() -> None:
    for path in HEADLINE:
        document = load_results(path)
        assert all(set(item) == {"kind", "source", "split"} for item in document["items"].values())


def test_records_with_evaluated_tokens_get_a_nominal_flops_column() -> None:
    """#19: FLOPs count evaluated prompt tokens; the report shows the nominal figure beside them, and results made
    before (one figure) render as they always did."""
    from eval.render import render_markdown
    from eval.results import rescore

    document = load_results(HEADLINE[0])
    for records in document["runs"].values():
        for record in records.values():
            for usage in record.get("usage", []):
                usage["flops"] = usage.pop("nominal_flops", usage["flops"])
    assert "nominal FLOPs" not in render_markdown(rescore(document))
    for usage in next(iter(document["runs"]["large-only"].values()))["usage"]:
        usage["nominal_flops"] = usage["flops"]
        usage["flops"] = usage["flops"] / 2
    rendered = render_markdown(rescore(document))
    assert "nominal FLOPs" in rendered and "tokens computed" in rendered


README_HEADLINE = ROOT / "docs" / "eval" / "headline-a74c497-chat-large"


def test_the_readme_headline_is_the_rendering_of_its_test_results() -> None:
    """The headline table comes from the committed test-split results (the files the README's command names)."""
    documents = [load_results(README_HEADLINE / name) for name in ("mixed-test", "ood-hotpotqa")]
    assert [document["meta"]["suite"] for document in documents] == ["mixed-test", "ood-hotpotqa"]
    for document in documents:
        assert document["meta"]["split"] == "test"
        assert all(set(item) == {"kind", "source", "split"} for item in document["items"].values())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ("eval headline docs/eval/headline-a74c497-chat-large/mixed-test \\\n"
            "  docs/eval/headline-a74c497-chat-large/ood-hotpotqa" in readme)
    # composed as main answers, from the run's own records: the runs are the run's, only the composition differs
    for document, name in zip(documents, ("mixed-test", "ood-hotpotqa"), strict=True):
        assert document["meta"]["chat_start"] == "large"
        assert document["runs"] == load_results(ROOT / "docs" / "eval" / "headline-a74c497" / name)["runs"]
    table = readme.split(START, 1)[1].split(END, 1)[0]
    assert table.strip() == render_headline(documents).strip()


def test_the_readme_unanswerable_figures_are_counted_from_their_results() -> None:
    """The README's "not in your documents" sentence: flagged FACT turns per half of unanswerable-test."""
    document = load_results(README_HEADLINE / "unanswerable-test")
    assert document["meta"]["split"] == "test" and document["meta"]["answerable"] is False
    counts: dict[str, list[int]] = {}
    for key, record in document["systems"]["routed-no-escalation"].items():
        if record["route"] != "FACT":
            continue
        half = counts.setdefault(document["items"][key]["source"].split("/")[0], [0, 0])
        half[0] += bool(record.get("general_knowledge") or record.get("not_in_documents"))
        half[1] += 1
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    hotpot, squad = counts["hotpotqa"], counts["squad-v2-dev"]
    assert f"{hotpot[0]} of the {hotpot[1]} that reach retrieval are\n  flagged" in readme
    assert f"{squad[0]} of {squad[1]} ({100 * squad[0] / squad[1]:.1f}%): {squad[1] - squad[0]} are presented" in readme


def test_the_readme_documents_table_is_the_rendering_of_its_test_results() -> None:
    from eval.render import render_documents

    document = load_results(ROOT / "docs" / "eval" / "documents" / "docs-test")
    assert document["meta"]["split"] == "test" and document["meta"]["suite"] == "docs-test"
    assert all(set(item) == {"kind", "source", "split"} for item in document["items"].values())  # no dataset text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- documents:start -->", 1)[1].split("<!-- documents:end -->", 1)[0]
    assert table.strip() == render_documents(document).strip()
