"""The chat page in headless Chromium over a real socket, on scripted models (fast): rendering and its safety,
threads across reloads, stop and regenerate, knobs, and the documents panel. tests/e2e/test_serve_real.py runs the
same page on the shipped models."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import WebDriverWait

from assistant.api import Assistant
from assistant.core.routing import CascadeRouter, Route, RouteDecision
from assistant.core.settings import ServerSettings, Settings
from assistant.server.page import PAGE_CSP
from models.base import Message
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from tests.documents import minimal_pdf
from tests.routers import FixedRouter
from tests.servers import SMALL_WRITES_CHAT, GatedModel, Running, ask_on_page, browser

pytestmark = pytest.mark.usefixtures("untrained_escalation")  # fake models: see tests/conftest.py

PLANTS = ('<img src=x onerror="window.pwned=1">\n\n[click me](javascript:window.pwned=2)\n\n'
          '<script>window.pwned=3</script>\n\n![tracker](http://127.0.0.1:9/track.png)\n\n'
          '<a href="#" onclick="window.pwned=4">link</a> <iframe src="javascript:window.pwned=5"></iframe>')
MARKDOWN = ("Here is a list:\n\n- first item\n- second **bold** item\n\n```python\nprint('hi')\n```\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n" + PLANTS)


def _reply(messages: Sequence[Message]) -> str:
    """The small model's scripted replies: markdown with XSS plants for chat, the evidence's own words for facts."""
    prompt = "\n".join(str(message["content"]) for message in messages)
    if "zorblax" in prompt.lower():
        return "The zorblax is kept in the blue vault."
    if "parking spaces" in prompt.lower():  # the documents speak of parking, not of spaces
        return "not in the documents"
    if "founders" in prompt.lower():
        return "14 September" if "14 September" in prompt else "not in the documents"
    if "visitors note" in prompt.lower():  # read from the planted passage (not only the question's own words: an
        return "A link in the visitors note"  # echo of the question is no answer)
    if "markdown" in prompt.lower():
        return MARKDOWN
    return "A plain answer."


class _Deliberate:
    """Routes as the cascade router does, after a pause long enough for a page to show it (a fake router decides in
    microseconds: the page renders once per frame, so a stage shorter than a frame is rightly never drawn)."""

    def __init__(self, router: CascadeRouter, seconds: float) -> None:
        self.router, self.seconds = router, seconds

    def route(self, question: str, previous: Route | None = None) -> RouteDecision:
        time.sleep(self.seconds)
        return self.router.route(question, previous)


def _assistant(tmp_path: Path, small: FakeChatModel, route_seconds: float = 0.0) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    retriever.add_documents([Document("planted.md", "Visitors note: " + PLANTS, "Planted <b>title</b>",
                                      "planted.md")], progress=False)
    large = FakeChatModel(name="large", responder=_reply)
    if not route_seconds:
        return Assistant.from_parts(small, large, FakeEmbedder(), retriever, settings, tmp_path / "threads.sqlite")
    router = _Deliberate(CascadeRouter(FakeEmbedder(), small), route_seconds)
    return Assistant(small, large, router, retriever, settings, tmp_path / "threads.sqlite")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Assistant]]:
    instance = _assistant(tmp_path, FakeChatModel(name="small", responder=_reply))
    with Running(instance, ServerSettings()) as running:
        yield running.url, instance
    instance.close()


@pytest.fixture
def page() -> Iterator[Any]:
    driver = browser()
    yield driver
    driver.quit()


def test_the_page_has_a_strict_content_security_policy(served: tuple[str, Assistant]) -> None:
    url, _ = served
    for path in ("/", "/static/app.js", "/static/vendor/purify.min.js"):
        response = httpx.get(url + path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == PAGE_CSP
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in PAGE_CSP and "unsafe" not in PAGE_CSP
    assert httpx.get(url + "/static/../server.py").status_code == 404
    assert httpx.get(url + "/static/%2e%2e/server.py").status_code == 404
    assert httpx.get(url + "/static/vendor/VENDORED.md").status_code == 404  # only the shipped js/css/txt


def test_markdown_is_rendered_and_planted_script_stays_inert(served: tuple[str, Assistant], page: Any) -> None:
    url, _ = served
    page.get(url + "/")
    turn = ask_on_page(page, "Show me some markdown please", 1)
    answer = turn.find_element(By.CSS_SELECTOR, ".answer")
    assert [item.text for item in answer.find_elements(By.CSS_SELECTOR, "ul li")] == ["first item",
                                                                                     "second bold item"]
    assert answer.find_element(By.CSS_SELECTOR, "pre code").text.startswith("print('hi')")
    assert answer.find_element(By.CSS_SELECTOR, "pre .copy-code").text == "Copy"
    assert answer.find_element(By.CSS_SELECTOR, "table td").text == "1"
    # The plants: no image, script, iframe or handler survives, and no javascript: link.
    assert not answer.find_elements(By.CSS_SELECTOR, "img, script, iframe, [onerror], [onclick]")
    for link in answer.find_elements(By.TAG_NAME, "a"):
        href = link.get_attribute("href") or ""
        assert not href.lower().startswith("javascript"), href
        assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    # A retrieved passage with the same plants is shown as text.
    turn = ask_on_page(page, "What does the visitors note say about onerror?", 2)
    assert turn.find_element(By.CSS_SELECTOR, ".route").text == "FACT"
    sources = turn.find_element(By.CSS_SELECTOR, ".sources")
    sources.find_element(By.TAG_NAME, "summary").click()
    assert "Planted <b>title</b>" in sources.text
    assert "<img src=x" in sources.find_element(By.TAG_NAME, "blockquote").text
    assert not sources.find_elements(By.CSS_SELECTOR, "img, script, iframe, b")
    assert page.execute_script("return window.pwned === undefined")
    blocked = [entry["message"] for entry in page.get_log("browser") if "track.png" in entry["message"]]
    assert not any("Refused" not in message for message in blocked), blocked  # never fetched


def test_a_thread_survives_a_reload_and_can_be_renamed_and_deleted(served: tuple[str, Assistant],
                                                                   page: Any) -> None:
    url, instance = served
    page.get(url + "/")
    box = page.find_element(By.ID, "question")
    box.send_keys("first line", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "second line")  # Shift+Enter: a new line
    assert box.get_attribute("value") == "first line\nsecond line" and not page.find_elements(By.CLASS_NAME, "turn")
    box.clear()
    ask_on_page(page, "What is 347 * 29?", 1)
    turn = ask_on_page(page, "Tell me about the weather", 2)
    assert turn.find_element(By.CSS_SELECTOR, ".route").text in ("CHAT", "FACT")
    assert not turn.find_element(By.CSS_SELECTOR, ".tokens").is_displayed()  # cost figures behind "details"
    turn.find_element(By.CSS_SELECTOR, ".meta .cost summary").click()
    assert turn.find_element(By.CSS_SELECTOR, ".tokens").text.endswith("tokens")
    assert "FLOP" in turn.find_element(By.CSS_SELECTOR, ".flops").text
    thread = page.execute_script("return localStorage.getItem('thread')")
    page.refresh()
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == 2)
    restored = page.find_elements(By.CSS_SELECTOR, ".turn")
    assert restored[0].find_element(By.CSS_SELECTOR, ".answer").text == "10063"
    assert restored[0].find_element(By.CSS_SELECTOR, ".route").text == "MATH"
    entry = WebDriverWait(page, 10).until(until.presence_of_element_located(
        (By.CSS_SELECTOR, f"#threads li[data-id='{thread}']")))
    assert "What is 347 * 29?" in entry.text and "2 turns" in entry.text
    entry.find_element(By.CSS_SELECTOR, ".rename").click()
    title = page.find_element(By.CSS_SELECTOR, "#threads input")
    title.send_keys(Keys.CONTROL, "a")
    title.send_keys("Sums and weather", Keys.ENTER)
    WebDriverWait(page, 10).until(lambda driver: "Sums and weather" in driver.find_element(By.ID, "threads").text)
    assert instance.threads.thread(thread).summary.title == "Sums and weather"  # type: ignore[union-attr]
    delete = page.find_element(By.CSS_SELECTOR, f"#threads li[data-id='{thread}'] .delete")
    delete.click()
    delete.click()  # the first click asks
    WebDriverWait(page, 10).until(lambda driver: not driver.find_elements(
        By.CSS_SELECTOR, f"#threads li[data-id='{thread}']"))
    assert instance.threads.thread(thread) is None and instance.history(thread) == []


def test_regenerate_answers_again_in_place_of_the_last_turn(served: tuple[str, Assistant], page: Any) -> None:
    url, instance = served
    page.get(url + "/")
    ask_on_page(page, "What is 2 + 2?", 1)
    turn = ask_on_page(page, "Tell me about the weather", 2)
    copy = turn.find_element(By.CSS_SELECTOR, ".actions .copy")
    copy.click()
    WebDriverWait(page, 5).until(lambda driver: copy.text == "Copied")
    page.find_element(By.ID, "escalation").send_keys("always")
    turn.find_element(By.CSS_SELECTOR, ".regenerate").click()
    WebDriverWait(page, 10).until(until.presence_of_element_located(
        (By.CSS_SELECTOR, ".turn:nth-child(2) .escalation.escalated")))
    thread = page.execute_script("return localStorage.getItem('thread')")
    record = instance.threads.thread(thread)
    assert record is not None and [turn.question for turn in record.turns] == ["What is 2 + 2?",
                                                                               "Tell me about the weather"]
    assert record.turns[1].details["escalated"] is True
    assert [message["content"] for message in instance.history(thread)][::2] == ["What is 2 + 2?",
                                                                                 "Tell me about the weather"]
    assert instance.models["large"].calls[-1].temperature == 0.8  # "Regenerate" samples a different chat answer


def test_the_model_choice_reaches_the_server_and_is_kept_with_the_turn(served: tuple[str, Assistant],
                                                                       page: Any) -> None:
    """#35: the Model knob has the chosen model answer as a chat (no calculator, no documents); the answer says which
    model it was, the choice survives a reload, and "assistant" routes again."""
    url, instance = served
    page.get(url + "/")
    page.find_element(By.ID, "answer-with").send_keys("large")
    turn = ask_on_page(page, "What is 2 + 2?", 1)
    badge = turn.find_element(By.CSS_SELECTOR, ".meta .escalation")
    assert badge.text == "large model, chosen" and "you chose" in badge.get_attribute("title")
    assert turn.find_element(By.CSS_SELECTOR, ".meta [data-route]").get_attribute("data-route") == "CHAT"
    thread = page.execute_script("return localStorage.getItem('thread')")
    record = instance.threads.thread(thread)
    assert record is not None and record.turns[0].details["route_stage"] == "forced"
    assert list(record.turns[0].details["cost"]["per_model"]) == ["large"]
    page.refresh()
    WebDriverWait(page, 10).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".turn .meta .escalation"))
    assert page.find_element(By.ID, "answer-with").get_attribute("value") == "large"
    page.find_element(By.ID, "answer-with").send_keys("assistant")
    routed = ask_on_page(page, "What is 3 + 4?", 2)
    assert routed.find_element(By.CSS_SELECTOR, ".meta [data-route]").get_attribute("data-route") == "MATH"


def test_stop_aborts_the_answer_and_the_next_question_starts_at_once(tmp_path: Path, page: Any) -> None:
    small = GatedModel("small", words=2000, seconds_per_word=0.01)
    instance = _assistant(tmp_path, small)
    try:
        with Running(instance, ServerSettings(concurrency=1, queue_size=0)) as running:
            page.get(running.url + "/")
            box = page.find_element(By.ID, "question")
            box.send_keys("Write a long story about dragons", Keys.ENTER)
            WebDriverWait(page, 10).until(lambda driver: "word5" in driver.find_element(By.CLASS_NAME, "answer").text)
            assert page.find_element(By.ID, "stop").is_displayed()
            box.send_keys(Keys.ESCAPE)
            WebDriverWait(page, 10).until(until.presence_of_element_located(
                (By.CSS_SELECTOR, ".answer[data-state='stopped']")))
            assert small.stopped.wait(5), "the model went on generating after Stop"
            assert small.produced < 2000
            # kept as far as it was written, marked stopped: its actions come once the server has kept it
            WebDriverWait(page, 10).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".turn .regenerate"))
            stopped = page.find_element(By.CSS_SELECTOR, ".answer[data-state='stopped']").text
            assert stopped.startswith("word0 word1") and stopped.endswith("[stopped]")
            assert stopped.count("[stopped]") == 1
            small.words = 3
            # One slot and no queue: this is answered only if the stopped turn gave its slot back.
            turn = ask_on_page(page, "Write a short poem about cats", 2, timeout=15)
            assert turn.find_element(By.CSS_SELECTOR, ".answer").text == "word0 word1 word2"
            page.refresh()  # what the page showed is what a reload shows
            WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == 2)
            answers = page.find_elements(By.CSS_SELECTOR, ".turn .answer")
            assert answers[0].text == stopped and answers[0].get_attribute("data-state") == "stopped"
            assert answers[1].text == "word0 word1 word2" and answers[1].get_attribute("data-state") == "done"
    finally:
        instance.close()


def test_the_documents_panel_uploads_indexes_cites_and_removes(served: tuple[str, Assistant], page: Any,
                                                               tmp_path: Path) -> None:
    url, instance = served
    notes = tmp_path / "vault notes.md"
    notes.write_text("# Vault notes\n\nThe zorblax is kept in the blue vault under the old mill.\n")
    report = tmp_path / "report.pdf"
    report.write_bytes(minimal_pdf("Quarterly report of the glimmerfish hatchery"))
    bad = tmp_path / "program.exe"
    bad.write_bytes(b"MZ\x90\x00binary")
    page.get(url + "/")
    page.find_element(By.ID, "toggle-documents").click()
    files = page.find_element(By.ID, "files")
    files.send_keys(f"{notes}\n{report}\n{bad}")
    WebDriverWait(page, 30).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#uploads .done")) == 2)
    refused = page.find_element(By.CSS_SELECTOR, "#uploads .failed").text
    assert "refused" in refused and ".exe" not in refused.split("only")[-1]
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#document-list li")) == 2)
    listed = {item.get_attribute("data-id"): item.text for item in
              page.find_elements(By.CSS_SELECTOR, "#document-list li")}
    assert set(listed) == {"uploads/vault notes.md", "uploads/report.pdf"}
    assert "1 chunk" in listed["uploads/vault notes.md"]
    turn = ask_on_page(page, "Where is the zorblax kept?", 1)
    assert "blue vault" in turn.find_element(By.CSS_SELECTOR, ".answer").text
    turn.find_element(By.CSS_SELECTOR, ".sources summary").click()
    assert "Vault notes" in turn.find_element(By.CSS_SELECTOR, ".sources").text
    removing = page.find_element(By.CSS_SELECTOR, "#document-list li[data-id='uploads/vault notes.md'] .remove")
    removing.click()  # the first click only asks
    store = instance.retriever.store  # type: ignore[union-attr]
    assert removing.text == "Remove?" and "uploads/vault notes.md" in store.documents()
    removing.click()
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#document-list li")) == 1)
    assert "uploads/vault notes.md" not in instance.retriever.store.documents()  # type: ignore[union-attr]
    # Drag and drop onto the drop zone.
    page.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File(["# Dropped\\n\\nA dropped file about quokkas."], "dropped.md"));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    """)
    WebDriverWait(page, 20).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#document-list li")) == 2)
    assert "uploads/dropped.md" in instance.retriever.store.documents()  # type: ignore[union-attr]


HOLIDAYS = """# Brindle holiday policy

## Public holidays

| Holiday | Date |
| --- | --- |
| Founders' Day | 14 September |
| Winter closure | 24 December |

## Annual leave

Full-time employees get 27 days of paid annual leave.
"""


def test_a_table_answer_is_cited_by_number_opens_its_passage_and_a_refusal_is_plain(
        served: tuple[str, Assistant], page: Any, tmp_path: Path) -> None:
    from eval.documents import markdown_to_docx

    url, instance = served
    notes = tmp_path / "holidays.md"
    notes.write_text(HOLIDAYS)
    report = tmp_path / "parking.docx"
    report.write_bytes(markdown_to_docx("# Brindle offices\n\n## Parking\n\nVisitors park at the front gate.\n"))
    page.get(url + "/")
    page.find_element(By.ID, "toggle-documents").click()
    page.find_element(By.ID, "files").send_keys(f"{notes}\n{report}")
    WebDriverWait(page, 30).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#uploads .done")) == 2)
    page.find_element(By.ID, "toggle-documents").click()
    turn = ask_on_page(page, "When is Founders' Day?", 1)
    answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
    assert answer == "14 September [1]"
    sources = turn.find_element(By.CSS_SELECTOR, ".sources")
    sources.find_element(By.TAG_NAME, "summary").click()
    place = sources.find_element(By.CSS_SELECTOR, ".source-place").text
    assert place.startswith("[1] Brindle holiday policy › Public holidays")
    assert "Founders' Day" in sources.find_element(By.CSS_SELECTOR, "mark").text  # the supporting row, marked
    sources.find_element(By.CSS_SELECTOR, ".open-document").click()
    viewer = WebDriverWait(page, 10).until(until.visibility_of_element_located((By.ID, "viewer")))
    WebDriverWait(page, 10).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#viewer .passage.cited"))
    cited = viewer.find_element(By.CSS_SELECTOR, ".passage.cited")
    assert "Founders' Day" in cited.find_element(By.TAG_NAME, "mark").text
    assert "Full-time employees get 27 days" in viewer.text  # the whole document, the cited passage marked
    page.find_element(By.ID, "viewer-close").click()
    refused = ask_on_page(page, "How many parking spaces do Brindle offices have for Founders' Day visitors?", 2)
    assert refused.find_element(By.CSS_SELECTOR, ".answer").text == "I could not find this in your documents."
    assert "Closest passages" in refused.find_element(By.CSS_SELECTOR, ".sources summary").text
    shown = [element.text for element in page.find_elements(By.CSS_SELECTOR, ".turn .answer")]
    page.refresh()
    WebDriverWait(page, 20).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == 2)
    assert [element.text for element in page.find_elements(By.CSS_SELECTOR, ".turn .answer")] == shown
    document = httpx.get(url + "/v1/documents/uploads/holidays.md").json()
    assert document["title"] == "Brindle holiday policy" and "| Founders' Day | 14 September |" in document["text"]
    assert {passage["section"] for passage in document["passages"]} >= {"Brindle holiday policy › Public holidays"}
    assert httpx.get(url + "/v1/documents/uploads/nope.md").status_code == 404
    assert instance.retriever is not None


def test_an_upload_cut_off_midway_changes_nothing(served: tuple[str, Assistant]) -> None:
    """S18: a client that sends half a multipart body and hangs up leaves no job and the index as it was."""
    url, instance = served
    port = int(url.rsplit(":", 1)[1])
    before = set(instance.retriever.store.documents())  # type: ignore[union-attr]
    boundary = "cutoff"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n# Half\n\nThe zorblax ").encode()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: multipart/form-data; boundary=" + boundary.encode() +
                           b"\r\nContent-Length: 5000\r\n\r\n" + head)
        time.sleep(0.3)
    time.sleep(0.5)
    assert httpx.get(url + "/v1/documents/jobs").json()["data"] == []
    assert set(instance.retriever.store.documents()) == before  # type: ignore[union-attr]
    ok = httpx.post(url + "/v1/documents", files={"file": ("whole.md", b"# Whole\n\nA complete file.")})
    assert ok.status_code == 202


def test_a_server_with_a_key_asks_the_page_for_it(tmp_path: Path, page: Any) -> None:
    """Off loopback the API needs a key: the page asks for it once, then every call (chat, threads, uploads)
    carries it."""
    from pydantic import SecretStr

    instance = _assistant(tmp_path, FakeChatModel(name="small", responder=_reply))
    try:
        with Running(instance, ServerSettings(api_key=SecretStr("s3cret"))) as running:
            page.get(running.url + "/")
            form = WebDriverWait(page, 10).until(until.visibility_of_element_located((By.ID, "key-form")))
            form.find_element(By.ID, "api-key").send_keys("s3cret", Keys.ENTER)
            WebDriverWait(page, 10).until(until.invisibility_of_element_located((By.ID, "key-form")))
            assert ask_on_page(page, "What is 6 * 7?", 1).find_element(By.CSS_SELECTOR, ".answer").text == "42"
            WebDriverWait(page, 10).until(lambda driver: "What is 6 * 7?" in driver.find_element(By.ID, "threads").text)
    finally:
        instance.close()


def test_an_empty_index_is_explained_and_the_documents_panel_offered(tmp_path: Path, page: Any) -> None:
    """A new user's page: no knowledge base, nothing indexed. It says so, offers the Documents panel, and the
    notice goes once a file is in."""
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    instance = Assistant.from_parts(FakeChatModel(name="small", responder=_reply), FakeChatModel(name="large"),
                                    FakeEmbedder(), retriever, settings, tmp_path / "threads.sqlite")
    with Running(instance, ServerSettings()) as running:
        page.get(running.url + "/")
        notice = WebDriverWait(page, 10).until(until.visibility_of_element_located((By.ID, "empty-index")))
        assert "document index is empty" in notice.text
        assert not page.find_element(By.ID, "documents").is_displayed()
        notice.find_element(By.ID, "open-documents").click()
        assert page.find_element(By.ID, "documents").is_displayed()
        assert page.find_element(By.ID, "toggle-documents").get_attribute("aria-expanded") == "true"
        WebDriverWait(page, 10).until(lambda driver: driver.find_element(By.ID, "knowledge-base").text
                                      == "The index is empty.")
        notes = tmp_path / "notes.md"
        notes.write_text("# Notes\n\nThe zorblax is kept in the blue vault.\n")
        page.find_element(By.ID, "files").send_keys(str(notes))
        WebDriverWait(page, 60).until(until.invisibility_of_element_located((By.ID, "empty-index")))
        assert page.find_element(By.ID, "knowledge-base").text == "1 document in the index in all."
        page.refresh()
        WebDriverWait(page, 10).until(lambda driver: driver.execute_script(
            "return document.readyState") == "complete")
        time.sleep(0.5)
        assert not page.find_element(By.ID, "empty-index").is_displayed()
    instance.close()


def test_a_word_problems_working_shows_under_its_toggle_as_text_and_after_a_reload(tmp_path: Path,
                                                                                  page: Any) -> None:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    large = FakeChatModel(name="large").enqueue(
        "She buys 3 * 4 = 13", " <b>pens</b> at $2: 12 * 2 = 25", " dollars.\nAnswer: 24")
    instance = Assistant(FakeChatModel(name="small"), large, FixedRouter("MATH"), None,  # type: ignore[arg-type]
                         settings, tmp_path / "threads.sqlite")
    working = "She buys 3 * 4 = 12 <b>pens</b> at $2: 12 * 2 = 24 dollars.\nAnswer: 24"
    with Running(instance, ServerSettings()) as running:
        page.get(running.url + "/")
        turn = ask_on_page(page, "Ann buys 3 packs of 4 pens at $2 a pen. How much money does she spend?", 1)
        assert turn.find_element(By.CSS_SELECTOR, ".answer").text == "$24"
        toggle = turn.find_element(By.CSS_SELECTOR, "details.working")
        assert toggle.is_displayed() and toggle.get_attribute("open") is None  # folded once the answer came
        toggle.find_element(By.TAG_NAME, "summary").click()
        text = page.execute_script("return arguments[0].querySelector('.working-text').textContent", toggle)
        assert text == working and not toggle.find_elements(By.TAG_NAME, "b")  # text, never HTML
        page.refresh()
        WebDriverWait(page, 10).until(until.presence_of_element_located((By.CSS_SELECTOR, ".turn details.working")))
        restored = page.find_element(By.CSS_SELECTOR, ".turn details.working")
        assert page.execute_script("return arguments[0].querySelector('.working-text').textContent",
                                   restored) == working
    instance.close()


def test_the_page_says_what_the_turn_is_doing_and_how_fast_it_writes(tmp_path: Path, page: Any) -> None:
    """Instead of a bare cursor: the stage ("choosing how to answer", "writing") and tokens per second while the
    model writes; the line goes once the answer is done."""
    small = GatedModel("small", words=100, seconds_per_word=0.05)
    instance = _assistant(tmp_path, small, route_seconds=0.5)
    try:
        with Running(instance, ServerSettings()) as running:
            page.get(running.url + "/")
            page.execute_script("""
                window.seenStages = [];
                new MutationObserver(() => {
                  for (const line of document.querySelectorAll('.stage')) {
                    if (!line.hidden && line.textContent) window.seenStages.push(line.textContent);
                  }
                }).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
            """)
            page.find_element(By.ID, "question").send_keys("Write a long story about dragons", Keys.ENTER)
            WebDriverWait(page, 20).until(lambda driver: re.fullmatch(
                r"writing · \d+\.\d tok/s", driver.find_element(By.CLASS_NAME, "stage").text))
            WebDriverWait(page, 15).until(until.presence_of_element_located(
                (By.CSS_SELECTOR, ".answer[data-state='done']")))
            assert not page.find_element(By.CLASS_NAME, "stage").is_displayed()
            seen = page.execute_script("return window.seenStages")
            assert "choosing how to answer…" in seen and any(text.startswith("writing") for text in seen)
    finally:
        instance.close()


def _apart(one: dict[str, float], other: dict[str, float]) -> bool:
    """Whether two element rectangles do not overlap (half a pixel of rounding allowed)."""
    return (one["x"] + one["width"] <= other["x"] + 0.5 or other["x"] + other["width"] <= one["x"] + 0.5
            or one["y"] + one["height"] <= other["y"] + 0.5 or other["y"] + other["height"] <= one["y"] + 0.5)


def test_at_375_px_code_is_not_covered_the_documents_panel_closes_and_buttons_name_their_answer(
        served: tuple[str, Assistant]) -> None:
    url, _ = served
    narrow = browser(375, 812)
    try:
        narrow.get(url + "/")
        controls = narrow.find_elements(By.CSS_SELECTOR, "header.top > button, header.top h1, .knobs label")
        boxes = [node.rect for node in controls if node.is_displayed()]
        assert len(boxes) >= 6 and all(box["x"] >= 0 and box["x"] + box["width"] <= 375 for box in boxes)
        for index, one in enumerate(boxes):  # the header's controls, the Model knob among them, never overlap
            assert all(_apart(one, other) for other in boxes[index + 1:]), one
        first = ask_on_page(narrow, "Show me some markdown", 1)
        code = first.find_element(By.CSS_SELECTOR, ".answer pre code")
        copy = first.find_element(By.CSS_SELECTOR, ".answer pre .copy-code")
        assert copy.rect["y"] + copy.rect["height"] <= code.rect["y"] + 1  # the button sits above the code
        ask_on_page(narrow, "Say something plain", 2)
        names = [node.get_attribute("aria-label") for node in narrow.find_elements(By.CSS_SELECTOR, ".actions .copy")]
        assert names == ["Copy the answer to “Show me some markdown”", "Copy the answer to “Say something plain”"]
        assert narrow.find_element(By.CSS_SELECTOR, ".actions .regenerate").get_attribute("aria-label") == \
            "Regenerate the answer to “Say something plain”"
        narrow.find_element(By.ID, "toggle-documents").click()
        panel = narrow.find_element(By.ID, "documents")
        assert panel.is_displayed() and panel.rect["width"] >= 370  # it covers the chat on a phone...
        narrow.find_element(By.ID, "close-documents").click()  # ...and closes
        assert not panel.is_displayed()
        assert narrow.find_element(By.ID, "toggle-documents").get_attribute("aria-expanded") == "false"
    finally:
        narrow.quit()


def test_a_refused_upload_names_the_file_apart_from_the_reason(served: tuple[str, Assistant], page: Any,
                                                                tmp_path: Path) -> None:
    url, _ = served
    page.get(url + "/")
    page.find_element(By.ID, "toggle-documents").click()
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf at all", encoding="utf-8")
    page.find_element(By.ID, "files").send_keys(str(fake))
    row = WebDriverWait(page, 10).until(until.presence_of_element_located((By.CSS_SELECTOR, "#uploads .failed")))
    name, state = row.find_element(By.CSS_SELECTOR, ".name"), row.find_element(By.CSS_SELECTOR, ".state")
    assert name.text == "fake.pdf" and state.text.startswith("refused")
    assert state.rect["x"] >= name.rect["x"] + name.rect["width"] or state.rect["y"] > name.rect["y"]  # apart
    assert "fake.pdf refused" in row.text or "fake.pdf\nrefused" in row.text


def test_a_first_visit_explains_the_page_and_every_figure_says_what_it_means(served: tuple[str, Assistant],
                                                                              page: Any) -> None:
    url, _ = served
    page.get(url + "/")
    intro = page.find_element(By.ID, "intro")
    assert intro.is_displayed() and "Escalation" in intro.text and "Cost cap" in intro.text
    page.find_element(By.ID, "dismiss-intro").click()
    page.refresh()
    assert not page.find_element(By.ID, "intro").is_displayed()  # dismissed for good...
    page.find_element(By.ID, "show-intro").click()
    assert page.find_element(By.ID, "intro").is_displayed()  # ...and there again on demand
    turn = ask_on_page(page, "What is 347 * 29?", 1)
    badges = turn.find_elements(By.CSS_SELECTOR, ".meta .badge")
    assert len(badges) >= 7 and all(node.get_attribute("title") for node in badges)
    assert "calculator" in turn.find_element(By.CSS_SELECTOR, ".badge.route").get_attribute("title")
    assert "likely" in turn.find_element(By.CSS_SELECTOR, ".badge.confidence").get_attribute("title")
    cost = turn.find_element(By.CSS_SELECTOR, ".badge.cost")
    assert not cost.is_displayed()
    turn.find_element(By.CSS_SELECTOR, ".meta .cost summary").click()
    assert cost.is_displayed() and cost.text.startswith("$")


def test_threads_are_searched_rated_exported_and_agents_threads_kept_apart(served: tuple[str, Assistant],
                                                                           page: Any, tmp_path: Path) -> None:
    url, _ = served
    httpx.post(url + "/v1/chat/completions", headers={"X-Thread-Id": "agent-7", "X-Assistant-Client": "my-agent"},
               json={"model": "assistant", "messages": [{"role": "user", "content": "What is 6 * 7?"}]})
    page.get(url + "/")
    ask_on_page(page, "What is 347 * 29?", 1)
    turn = ask_on_page(page, "Tell me about the weather", 2)
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#threads li")) == 1)
    assert "agent-7" not in page.find_element(By.ID, "threads").get_attribute("innerHTML")  # the agent's is apart
    thread = page.execute_script("return localStorage.getItem('thread')")
    down = turn.find_element(By.CSS_SELECTOR, ".rate.down")
    assert down.get_attribute("aria-label").startswith("Bad answer: the answer to")
    down.click()
    WebDriverWait(page, 10).until(lambda _: down.get_attribute("aria-pressed") == "true")
    stored = httpx.get(f"{url}/v1/threads/{thread}").json()["messages"]
    assert stored[3]["feedback"]["rating"] == "down" and stored[1]["feedback"] is None
    page.refresh()  # the verdict is restored with the thread
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn .rate.down")) == 2)
    assert page.find_elements(By.CSS_SELECTOR, ".turn .rate.down")[1].get_attribute("aria-pressed") == "true"
    # Export: a real download of the JSON transcript (feedback in it), then the markdown's text.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    page.find_element(By.ID, "export-json").click()
    WebDriverWait(page, 10).until(lambda _: [path for path in downloads.iterdir() if path.suffix == ".json"])
    exported = json.loads(next(downloads.glob("*.json")).read_text(encoding="utf-8"))
    assert exported["id"] == thread and exported["messages"][3]["feedback"]["rating"] == "down"
    page.execute_script("""
        window.saved = null;
        HTMLAnchorElement.prototype.click = function () { window.saved = {href: this.href, name: this.download}; };
        const create = URL.createObjectURL;
        URL.createObjectURL = (blob) => { window.savedBlob = blob; return create(blob); };
    """)
    page.set_script_timeout(10)
    page.find_element(By.ID, "export-markdown").click()
    WebDriverWait(page, 10).until(lambda driver: driver.execute_script("return window.saved"))
    saved = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.savedBlob.text().then((text) => done({name: window.saved.name, text}));
    """)
    assert saved["name"].endswith(".md") and "## What is 347 * 29?" in saved["text"]
    assert "feedback: down" in saved["text"]
    # Search: only threads that mention the words.
    ask_on_page(page, "Write a haiku about moss", 3)
    page.find_element(By.ID, "new").click()
    ask_on_page(page, "What is 2 + 2?", 1)
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#threads li")) == 2)
    page.find_element(By.ID, "thread-search").send_keys("10063")
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#threads li")) == 1)
    assert page.find_element(By.CSS_SELECTOR, "#threads li").get_attribute("data-id") == thread


def test_regenerate_with_the_larger_model_and_attach_a_file_from_the_message_box(served: tuple[str, Assistant],
                                                                                  page: Any, tmp_path: Path) -> None:
    url, instance = served
    page.get(url + "/")
    turn = ask_on_page(page, "Tell me about the weather", 1)
    assert not turn.find_elements(By.CSS_SELECTOR, ".escalation.escalated")  # the knob stays at auto
    turn.find_element(By.CSS_SELECTOR, ".regenerate.larger").click()
    WebDriverWait(page, 10).until(until.presence_of_element_located(
        (By.CSS_SELECTOR, ".turn:nth-child(1) .escalation.escalated")))
    record = instance.threads.thread(page.execute_script("return localStorage.getItem('thread')"))
    assert record is not None and len(record.turns) == 1 and record.turns[0].details["escalated"] is True
    assert page.find_element(By.ID, "escalation").get_attribute("value") == "auto"  # only that turn
    note = tmp_path / "moss notes.md"
    note.write_text("# Moss\n\nThe moss garden is watered on Tuesdays.", encoding="utf-8")
    page.find_element(By.ID, "attach-files").send_keys(str(note))
    assert page.find_element(By.ID, "documents").is_displayed()  # the upload's progress shows in the panel
    WebDriverWait(page, 20).until(
        lambda _: "uploads/moss notes.md" in instance.retriever.store.documents())  # type: ignore[union-attr]


def test_a_threads_instructions_reach_its_chat_answers_and_come_back_after_a_reload(tmp_path: Path,
                                                                                    page: Any) -> None:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    small = FakeChatModel(name="small", responder=lambda messages: str(messages[0]["content"]).split("\n\n")[-1])
    instance = Assistant(small, FakeChatModel(name="large"), FixedRouter("CHAT"), None,  # type: ignore[arg-type]
                         settings, tmp_path / "threads.sqlite")
    with Running(instance, ServerSettings()) as running:
        page.get(running.url + "/")
        page.find_element(By.CSS_SELECTOR, "#instructions summary").click()
        page.find_element(By.ID, "system-prompt").send_keys("Answer like a pirate.")
        turn = ask_on_page(page, "Say hello", 1)
        assert turn.find_element(By.CSS_SELECTOR, ".answer").text == "Answer like a pirate."  # the model saw it
        page.refresh()
        WebDriverWait(page, 10).until(until.presence_of_element_located((By.CSS_SELECTOR, ".turn")))
        assert page.find_element(By.ID, "system-prompt").get_attribute("value") == "Answer like a pirate."
        page.find_element(By.ID, "new").click()
        assert page.find_element(By.ID, "system-prompt").get_attribute("value") == ""  # a new thread starts plain
    instance.close()


def test_an_earlier_question_edited_and_sent_again_forks_the_thread_there(served: tuple[str, Assistant],
                                                                           page: Any) -> None:
    url, instance = served
    page.get(url + "/")
    for count, question in enumerate(("What is 2 + 2?", "What is 3 + 3?", "What is 4 + 4?"), start=1):
        ask_on_page(page, question, count)
    second = page.find_elements(By.CSS_SELECTOR, ".turn")[1]
    second.find_element(By.CSS_SELECTOR, ".actions .edit").click()
    box = second.find_element(By.CSS_SELECTOR, ".edit-box")
    assert box.get_attribute("value") == "What is 3 + 3?"
    box.clear()
    box.send_keys("What is 5 + 5?", Keys.ENTER)
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == 2 and
                                  driver.find_elements(By.CSS_SELECTOR, ".turn .answer")[1].text == "10")
    thread = page.execute_script("return localStorage.getItem('thread')")
    record = instance.threads.thread(thread)
    assert record is not None and [(turn.question, turn.answer) for turn in record.turns] == [
        ("What is 2 + 2?", "4"), ("What is 5 + 5?", "10")]
    assert [message["content"] for message in instance.history(thread)][::2] == ["What is 2 + 2?", "What is 5 + 5?"]
    page.refresh()
    WebDriverWait(page, 10).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn .answer")) == 2)
    assert [node.text for node in page.find_elements(By.CSS_SELECTOR, ".turn .question")] == [
        "What is 2 + 2?", "What is 5 + 5?"]
