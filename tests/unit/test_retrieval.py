"""Retrieval with the fake embedder: chunking, ids, dedup, add/remove/search, persistence, crash safety, no pickle."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.cli import main
from assistant.core.settings import RetrievalSettings
from retrieval.bm25 import BM25Index, tokenize
from retrieval.chunking import chunk_text
from retrieval.documents import Document, read_paths
from retrieval.embedders import FakeEmbedder, load_embedder
from retrieval.errors import IndexCorruptError, IndexMismatchError, RetrievalError
from retrieval.retriever import Retriever
from retrieval.store import ChunkStore, read_current
from tests.documents import minimal_pdf

CORPUS = [
    Document("broncos.txt", "The Denver Broncos defeated the Carolina Panthers to win Super Bowl 50. "
             "The game was played at Levi's Stadium in Santa Clara, California.", "Super Bowl 50"),
    Document("paris.txt", "Paris is the capital and most populous city of France. The Eiffel Tower stands "
             "on the Champ de Mars.", "Paris"),
    Document("python.txt", "Python is a programming language created by Guido van Rossum. Its first release "
             "was in 1991.", "Python"),
    Document("amazon.txt", "The Amazon rainforest covers much of the Amazon basin of South America. The forest "
             "holds the largest river by discharge.", "Amazon"),
]


def _settings(**overrides: object) -> RetrievalSettings:
    return RetrievalSettings(embedder="fake", knowledge_base="none", **overrides)  # type: ignore[arg-type]


def _retriever(directory: Path, embedder: FakeEmbedder | None = None, **overrides: object) -> Retriever:
    return Retriever.open(directory, embedder or FakeEmbedder(), _settings(**overrides))


def _assert_consistent(retriever: Retriever) -> None:
    records, vectors = retriever.store.vectors_in_order()
    assert retriever.store.ntotal == len(retriever.store) == len(records) == len(vectors)


# ---- chunking ------------------------------------------------------------------------------------

def test_short_text_is_one_chunk() -> None:
    text = "One sentence. Another one."
    assert [(span.start, span.end) for span in chunk_text(text, 200, 50)] == [(0, len(text))]


def test_chunks_respect_the_limit_end_on_sentences_and_overlap() -> None:
    sentences = [f"Sentence number {index} talks about topic {index}." for index in range(40)]
    text = " ".join(sentences)
    spans = chunk_text(text, 300, 80)
    assert len(spans) > 1
    pieces = [text[span.start : span.end] for span in spans]
    assert all(len(piece) <= 300 for piece in pieces)
    assert all(piece.endswith(".") for piece in pieces)
    for previous, current in itertools.pairwise(spans):
        assert current.start < previous.end, "consecutive chunks overlap"
    for sentence in sentences:
        assert any(sentence in piece for piece in pieces), sentence


def test_paragraph_breaks_and_unbroken_text() -> None:
    text = "First paragraph here.\n\nSecond paragraph here."
    assert len(chunk_text(text, 60, 0)) == 1
    blob = "x" * 2500
    spans = chunk_text(blob, 1000, 100)
    assert [span.end - span.start for span in spans] == [1000, 1000, 500]
    with pytest.raises(ValueError, match="at least 50"):
        chunk_text("text", 10, 0)


# ---- documents -----------------------------------------------------------------------------------

def test_read_paths_reads_every_supported_type_and_reports_failures(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Plain text document.")
    (folder / "sub" / "b.md").write_text("# A Title\n\nMarkdown body.")
    (folder / "c.jsonl").write_text(json.dumps({"id": "row-1", "text": "First row.", "title": "T"}) + "\n\n"
                                    + json.dumps({"content": "Second row."}) + "\n")
    (folder / "d.pdf").write_bytes(minimal_pdf("Hello PDF world"))
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    (folder / "empty.txt").write_text("   ")
    report = read_paths([folder, tmp_path / "missing.txt"])
    by_id = {document.doc_id: document for document in report.documents}
    assert set(by_id) == {"docs/a.txt", "docs/sub/b.md", "row-1", "docs/c.jsonl:3", "docs/d.pdf"}
    assert by_id["docs/sub/b.md"].title == "A Title"
    assert "Hello PDF world" in by_id["docs/d.pdf"].text
    failures = dict(report.failures)
    assert "no text" in failures[str(folder / "empty.txt")]
    assert failures[str(tmp_path / "missing.txt")] == "no such file or directory"


def test_bad_jsonl_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\nnot json\n')
    report = read_paths([path])
    assert report.documents == [] and "bad.jsonl:2 is not valid JSON" in report.failures[0][1]


# ---- BM25 ----------------------------------------------------------------------------------------

def test_bm25_ranks_the_document_sharing_rare_words_first() -> None:
    index = BM25Index([10, 11, 12], ["the cat sat on the mat", "dogs playing in the park", "a cat and a dog played"])
    ranked = [vector_id for vector_id, _ in index.search("played with cats", 3)]
    assert ranked[0] == 12 and sorted(ranked) == [10, 11, 12]
    assert [vector_id for vector_id, _ in index.search("mat", 3)] == [10]
    assert index.search("zebra", 3) == []
    assert tokenize("The Players played!") == ["player", "play"]


# ---- index operations ----------------------------------------------------------------------------

def test_add_search_remove_and_stable_ids(tmp_path: Path) -> None:
    retriever = _retriever(tmp_path / "index", chunk_chars=100, chunk_overlap_chars=0)
    report = retriever.add_documents(CORPUS, progress=False)
    assert sorted(report.added) == sorted(document.doc_id for document in CORPUS)
    _assert_consistent(retriever)
    ids = sorted(record.chunk_id for record in retriever.store.chunks.values())
    assert "broncos.txt#0" in ids and "broncos.txt#1" in ids
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search("Which team won Super Bowl 50?", k=2, mode=mode)  # type: ignore[arg-type]
        assert hits[0].doc_id == "broncos.txt", mode
    hit = retriever.search("Eiffel Tower", k=1)[0]
    assert (hit.doc_id, hit.title) == ("paris.txt", "Paris") and hit.dense_rank and hit.bm25_rank
    assert retriever.remove("paris.txt") == 1
    _assert_consistent(retriever)
    assert all(hit.doc_id != "paris.txt" for hit in retriever.search("Eiffel Tower Paris France", k=10))
    assert retriever.remove("paris.txt") == 0
    with pytest.raises(RetrievalError, match="empty"):
        retriever.search("   ")


def test_unchanged_replaced_and_duplicate_documents(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    retriever = _retriever(tmp_path / "index", embedder)
    retriever.add_documents(CORPUS, progress=False)
    embedded = sum(embedder.calls)
    again = retriever.add_documents(CORPUS, progress=False)
    assert sorted(again.unchanged) == sorted(document.doc_id for document in CORPUS)
    assert sum(embedder.calls) == embedded, "unchanged documents are not embedded again"
    changed = Document("paris.txt", "Paris hosted the 1900 and 1924 Summer Olympics.", "Paris")
    copy = Document("copy-of-python.txt", CORPUS[2].text, "Python")
    report = retriever.add_documents([changed, copy], progress=False)
    assert report.replaced == ["paris.txt"] and report.duplicates == [("copy-of-python.txt", "python.txt")]
    assert retriever.search("Olympics", k=1, mode="bm25")[0].doc_id == "paris.txt"
    assert not retriever.search("Eiffel", k=5, mode="bm25")
    _assert_consistent(retriever)


def test_round_trip_and_hnsw_deletes(tmp_path: Path) -> None:
    for index_type in ("flat", "hnsw"):
        directory = tmp_path / index_type
        retriever = _retriever(directory, index_type=index_type)
        retriever.add_documents(CORPUS, progress=False)
        retriever.remove("amazon.txt")
        expected = [hit.chunk_id for hit in retriever.search("programming language Python", k=3)]
        reloaded = _retriever(directory, index_type=index_type)
        assert reloaded.store.index_type == index_type
        assert [hit.chunk_id for hit in reloaded.search("programming language Python", k=3)] == expected
        assert "amazon.txt" not in reloaded.store.documents()
        _assert_consistent(reloaded)
        added = reloaded.add_documents([Document("new.txt", "A brand new document about volcanoes.")],
                                       progress=False)
        assert added.chunks_added == 1
        assert reloaded.search("volcanoes", k=1)[0].doc_id == "new.txt"
        _assert_consistent(reloaded)


def test_ids_are_never_reused(tmp_path: Path) -> None:
    retriever = _retriever(tmp_path / "index")
    retriever.add_documents(CORPUS[:1], progress=False)
    first = set(retriever.store.chunks)
    retriever.remove(CORPUS[0].doc_id)
    retriever.add_documents(CORPUS[1:2], progress=False)
    assert not first & set(retriever.store.chunks)


def test_an_index_for_another_embedder_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    _retriever(directory).add_documents(CORPUS, progress=False)
    with pytest.raises(IndexMismatchError, match="built with embedder fake-64") as error:
        _retriever(directory, FakeEmbedder(dimension=32))
    assert "assistant index rebuild" in str(error.value)
    with pytest.raises(IndexMismatchError):
        _retriever(directory, FakeEmbedder(name="other"))


def test_rebuild_re_embeds_with_the_running_embedder(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    _retriever(directory).add_documents(CORPUS, progress=False)
    stored = ChunkStore.load(directory, "fake-64", 64)
    other = FakeEmbedder(dimension=32)
    retriever = Retriever(other, stored, directory, _settings())
    assert retriever.rebuild(progress=False) == len(stored)
    reopened = _retriever(directory, FakeEmbedder(dimension=32))
    assert reopened.search("Eiffel Tower", k=1)[0].doc_id == "paris.txt"


# ---- crash safety and format ---------------------------------------------------------------------

@pytest.mark.parametrize("step", ["chunks", "vectors", "index", "manifest"])
def test_a_save_interrupted_before_the_switch_leaves_the_previous_index(tmp_path: Path, step: str) -> None:
    directory = tmp_path / "index"
    retriever = _retriever(directory)
    retriever.add_documents(CORPUS[:2], progress=False)
    before = read_current(directory)
    retriever.add_documents(CORPUS[2:], progress=False, save=False)
    with pytest.raises(RetrievalError, match=f"injected failure after {step}"):
        retriever.store.save(directory, fail_after=step)
    assert read_current(directory) == before
    reloaded = _retriever(directory)
    assert sorted(reloaded.store.documents()) == sorted(document.doc_id for document in CORPUS[:2])
    _assert_consistent(reloaded)
    reloaded.add_documents(CORPUS[2:], progress=False)  # the next save succeeds over the leftovers
    assert len(_retriever(directory).store.documents()) == len(CORPUS)


def test_a_save_interrupted_after_the_switch_has_the_new_index(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    retriever = _retriever(directory)
    retriever.add_documents(CORPUS[:2], progress=False)
    retriever.add_documents(CORPUS[2:], progress=False, save=False)
    with pytest.raises(RetrievalError):
        retriever.store.save(directory, fail_after="current")
    assert len(_retriever(directory).store.documents()) == len(CORPUS)


WRITER = """
import sys
from pathlib import Path
from typing import Any
from assistant.core.settings import RetrievalSettings
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
directory = Path(sys.argv[1])
retriever = Retriever.open(directory, FakeEmbedder(), RetrievalSettings(embedder="fake", knowledge_base="none"))
index = 0
while True:
    index += 1
    text = " ".join(f"word{index}x{j} sentence." for j in range(200))
    retriever.add_documents([Document(f"doc-{index}", text)], progress=False)
    if index % 3 == 0:
        retriever.remove(f"doc-{index - 1}")
    print(index, flush=True)
"""


def test_killing_a_writer_mid_save_always_leaves_a_loadable_index(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for delay in (0.9, 1.3, 1.7, 2.1, 2.6):
        process = subprocess.Popen([sys.executable, str(script), str(directory)], stdout=subprocess.PIPE)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.stdout is not None
        written = process.stdout.read().split()
        process.stdout.close()
        if read_current(directory) is None:
            assert not written
            continue
        retriever = _retriever(directory)
        _assert_consistent(retriever)
        assert len(retriever.store) > 0
    assert read_current(directory) is not None


def test_a_corrupted_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    _retriever(directory).add_documents(CORPUS, progress=False)
    current = directory / (read_current(directory) or "")
    with (current / "vectors.npy").open("r+b") as stream:
        stream.seek(-4, os.SEEK_END)
        stream.write(b"\x00\x00\x00\x01")
    with pytest.raises(IndexCorruptError, match="does not match the manifest"):
        _retriever(directory)
    (directory / "CURRENT").write_text("../../etc")
    with pytest.raises(IndexCorruptError, match="not a generation name"):
        _retriever(directory)


def test_no_pickle_anywhere_in_the_index(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    _retriever(directory).add_documents(CORPUS, progress=False)
    current = directory / (read_current(directory) or "")
    names = sorted(path.name for path in current.iterdir())
    assert names == ["chunks.jsonl", "index.faiss", "manifest.json", "vectors.npy"]
    for path in current.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["embedder"] == "fake-64" and manifest["dimension"] == 64 and manifest["metric"] == "inner_product"
    assert manifest["chunk_count"] == len((current / "chunks.jsonl").read_text().splitlines())
    assert set(manifest["files"]) == {"chunks.jsonl", "vectors.npy", "index.faiss"}
    assert np.load(current / "vectors.npy", allow_pickle=False).shape == (manifest["chunk_count"], 64)
    source = "\n".join(path.read_text() for path in (Path(__file__).parents[2] / "retrieval").glob("*.py"))
    assert "import pickle" not in source and "allow_pickle=True" not in source


def test_unknown_embedder_has_a_hint() -> None:
    with pytest.raises(RetrievalError, match="did you mean 'minilm'"):
        load_embedder("minilmm")


# ---- command line --------------------------------------------------------------------------------

def test_cli_add_info_search_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for document in CORPUS:
        (docs / document.doc_id).write_text(document.text)
    flags = ["--retrieval-embedder", "fake", "--retrieval-knowledge-base", "none",
             "--retrieval-index-dir", str(tmp_path / "index")]
    assert main(["index", "add", str(docs), *flags]) == 0
    assert "4 added" in capsys.readouterr().out
    assert main(["index", "add", str(docs), *flags]) == 0
    assert "4 unchanged" in capsys.readouterr().out
    assert main(["index", "info", "--json", *flags]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["documents"] == 4 and info["chunks"] == info["faiss_ntotal"] and info["manifest"]["chunk_count"] == 4
    assert main(["index", "search", "Eiffel Tower", "--k", "1", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out)[0]["chunk_id"] == "docs/paris.txt#0"
    assert main(["index", "search", "Eiffel Tower", *flags]) == 0
    assert capsys.readouterr().out.startswith("1. [docs/paris.txt#0] paris")
    assert main(["index", "remove", "docs/paris.txt", *flags]) == 0
    assert main(["index", "remove", "docs/paris.txt", *flags]) == 1
    assert "no document 'docs/paris.txt'" in capsys.readouterr().err


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    """#20 finding 5: a link to a file outside the folder (e.g. /etc/shadow) was indexed and served as a source."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::")
    folder = tmp_path / "notes"
    (folder / "linked").mkdir(parents=True)
    (folder / "plain.md").write_text("An ordinary note.")
    (folder / "shadow.txt").symlink_to(secret)
    (folder / "linked" / "dir").symlink_to(secret.parent, target_is_directory=True)  # rglob does not descend
    (folder / "inside.txt").symlink_to(folder / "plain.md")  # a link that stays inside is fine
    report = read_paths([folder])
    assert sorted(document.doc_id for document in report.documents) == ["notes/inside.txt", "notes/plain.md"]
    assert all("secret-hash" not in document.text for document in report.documents)
    skipped = dict(report.failures)
    assert "not followed" in skipped[str(folder / "shadow.txt")]
    followed = read_paths([folder], follow_symlinks=True)
    assert "notes/shadow.txt" in {document.doc_id for document in followed.documents}


def test_folders_with_the_same_file_names_do_not_replace_each_other(tmp_path: Path) -> None:
    """#20 finding 5: adding two folders whose files share relative names silently replaced the first's documents."""
    first, second = tmp_path / "alpha", tmp_path / "beta"
    for folder, word in ((first, "apples"), (second, "bananas")):
        folder.mkdir()
        (folder / "readme.md").write_text(f"This folder is about {word}.")
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), _settings())
    retriever.add_documents(read_paths([first]).documents, progress=False)
    retriever.add_documents(read_paths([second]).documents, progress=False)
    assert set(retriever.store.documents()) == {"alpha/readme.md", "beta/readme.md"}
    # The same folder name from another place keeps its id: refused, not silently replaced.
    elsewhere = tmp_path / "other" / "alpha"
    elsewhere.mkdir(parents=True)
    (elsewhere / "readme.md").write_text("A different folder that is also called alpha.")
    report = retriever.add_documents(read_paths([elsewhere]).documents, progress=False)
    assert report.conflicts == [("alpha/readme.md", str(first / "readme.md"), str(elsewhere / "readme.md"))]
    assert not report.replaced
    assert "apples" in retriever.store.documents()["alpha/readme.md"][0].text
    # The same file, edited, is still replaced in place.
    (first / "readme.md").write_text("This folder is about pears now.")
    assert retriever.add_documents(read_paths([first]).documents, progress=False).replaced == ["alpha/readme.md"]


_WRITER = """
import sys
from pathlib import Path
from typing import Any
from retrieval.embedders import FakeEmbedder
from retrieval.documents import Document
from retrieval.retriever import Retriever
from retrieval.settings import RetrievalSettings
directory, name = Path(sys.argv[1]), sys.argv[2]
retriever = Retriever.open(directory, FakeEmbedder(), RetrievalSettings(embedder="fake", knowledge_base="none"))
print("opened", flush=True)
sys.stdin.readline()  # both writers have opened the index before either adds
documents = [Document(f"{name}/{i}", f"{name} document number {i} about topic {i}") for i in range(50)]
retriever.add_documents(documents, progress=False)
"""


def test_two_concurrent_writers_keep_both_sets_of_documents(tmp_path: Path) -> None:
    """#20 finding 5: two concurrent `index add` runs both reported success and one writer's 50 documents were lost."""
    directory = tmp_path / "index"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for name in ("left", "right")]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "opened"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    stored = Retriever.open(directory, FakeEmbedder(), _settings()).store.documents()
    assert sum(doc_id.startswith("left/") for doc_id in stored) == 50
    assert sum(doc_id.startswith("right/") for doc_id in stored) == 50


class _FailingEmbedder(FakeEmbedder):
    """Embeds ``batches_left`` more batches of passages once armed, then fails, like a crash mid-indexing."""

    def __init__(self) -> None:
        super().__init__()
        self.batches_left: int | None = None

    def embed_passages(self, texts: Any) -> Any:
        if self.batches_left is not None:
            if self.batches_left == 0:
                raise RuntimeError("embedder crashed")
            self.batches_left -= 1
        return super().embed_passages(texts)


def test_a_change_that_fails_midway_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    """#21: an upload whose indexing fails after some chunks were embedded changes neither memory nor disk."""
    embedder = _FailingEmbedder()
    retriever = _retriever(tmp_path / "index", embedder)
    retriever.add_documents(CORPUS[:2], progress=False)
    before = (len(retriever.store), read_current(tmp_path / "index"), retriever.search("Paris capital", k=1))
    many = [Document(f"bulk-{n}.txt", f"Bulk document number {n} about topic {n}.") for n in range(100)]
    embedder.batches_left = 1  # the first 64 chunks are embedded and added, then the second batch fails
    with pytest.raises(RuntimeError, match="embedder crashed"):
        retriever.add_documents(many, progress=False)
    embedder.batches_left = None
    assert (len(retriever.store), read_current(tmp_path / "index"), retriever.search("Paris capital", k=1)) == before
    _assert_consistent(retriever)
    reopened = _retriever(tmp_path / "index")
    assert set(reopened.store.documents()) == {"broncos.txt", "paris.txt"}


def test_searches_during_a_change_see_the_index_before_it(tmp_path: Path) -> None:
    """Writers work on a copy: a search while a document is half-indexed sees whole documents only."""
    retriever = _retriever(tmp_path / "index")
    retriever.add_documents(CORPUS[:2], progress=False)
    seen: list[set[str]] = []
    progress: list[tuple[int, int]] = []

    def search_meanwhile(done: int, total: int) -> None:
        progress.append((done, total))
        seen.append({hit.doc_id for hit in retriever.search("Bulk document", k=50)})

    many = [Document(f"bulk-{n}.txt", f"Bulk document number {n} about topic {n}.") for n in range(100)]
    retriever.add_documents(many, progress=False, on_progress=search_meanwhile)
    assert seen and all(not any(doc.startswith("bulk-") for doc in docs) for docs in seen)
    assert progress[-1] == (100, 100) and len(progress) == 2
    assert "bulk-7.txt" in {hit.doc_id for hit in retriever.search("Bulk document number 7 topic 7", k=3)}
