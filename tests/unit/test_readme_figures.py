"""Published figures are re-derived from the committed results files, not typed by hand: the archived headline of
2026-12-02 (its datasets can no longer be obtained) and the README's interim figures."""

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


def test_the_readme_interim_table_is_the_rendering_of_its_dev_results() -> None:
    """Interim figures are labelled as dev figures because they are: the results file says so."""
    document = load_results(ROOT / "docs" / "eval" / "interim" / "mixed-dev-100")
    assert document["meta"]["split"] == "dev" and document["meta"]["suite"] == "mixed-dev"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Interim: a dev subset on the new datasets", 1)[1]
    assert "**Dev items, not a headline**" in section
    table = section.split("<!-- interim:start -->", 1)[1].split("<!-- interim:end -->", 1)[0]
    assert table.strip() == render_headline([document]).strip()


def test_the_readme_documents_table_is_the_rendering_of_its_test_results() -> None:
    from eval.render import render_documents

    document = load_results(ROOT / "docs" / "eval" / "documents" / "docs-test")
    assert document["meta"]["split"] == "test" and document["meta"]["suite"] == "docs-test"
    assert all(set(item) == {"kind", "source", "split"} for item in document["items"].values())  # no dataset text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- documents:start -->", 1)[1].split("<!-- documents:end -->", 1)[0]
    assert table.strip() == render_documents(document).strip()
