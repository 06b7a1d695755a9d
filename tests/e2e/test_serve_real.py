"""`assistant serve` as a new user runs it: a real process, the default models, no knowledge base and an empty
index (the default), a real socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from assistant.core.knowledge_base import EMPTY_INDEX_HINT
from tests.documents import minimal_pdf
from tests.servers import ASSISTANT, ask_on_page, start_serve
from tests.servers import browser as open_browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # An index of its own, empty as a new user's: documents uploaded here never reach the user's own index.
    index = log.parent / "index"
    process, url = start_serve(log, {"ASSISTANT_ASSISTANT__CHECKPOINT_PATH": str(log.parent / "threads.sqlite"),
                                     "ASSISTANT_RETRIEVAL__INDEX_DIR": str(index)})
    started = log.read_text()
    assert f"open {url}/" in started and started.count(EMPTY_INDEX_HINT) == 1, started
    yield url
    process.terminate()
    process.wait(timeout=30)


KETTLE = ("# Tarnwick Q7 kettle: warranty\n\nThe Tarnwick Q7 kettle carries a warranty of 38 months from the date "
          "of purchase. Claims go to the Tarnwick service desk in Leeds.\n")
KETTLE_QUESTION = "How many months of warranty does the Tarnwick Q7 kettle have?"


def _upload(served: str, name: str, content: bytes) -> None:
    """POST a file to /v1/documents and wait until its indexing job is done."""
    response = httpx.post(served + "/v1/documents", files={"file": (name, content)}, timeout=60)
    assert response.status_code == 202, response.text
    job = response.json()["data"][0]
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = httpx.get(served + "/v1/documents/jobs/" + job["id"], timeout=30).json()
    assert job["state"] == "done", job


@pytest.fixture
def kettle(served: str) -> str:
    """The served URL with the kettle notes indexed (uploading unchanged text again changes nothing)."""
    _upload(served, "tarnwick-kettle.md", KETTLE.encode())
    return served


def test_a_new_users_server_starts_empty_then_answers_from_an_uploaded_file(served: str) -> None:
    # ready means ready: the large tier is in memory before the first word problem or escalation needs it
    assert httpx.get(served + "/health").json()["loaded"] == ["small", "large"]
    assert httpx.get(served + "/v1/documents").json()["total"] == 0
    client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", timeout=120)
    math = client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "user", "content": "What is 347 * 29?"}])
    assert math.parse().choices[0].message.content == "10063" and math.headers["x-assistant-route"] == "MATH"
    _upload(served, "tarnwick-kettle.md", KETTLE.encode())
    stream = client.chat.completions.create(
        model="assistant", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": KETTLE_QUESTION}], extra_body={"escalation": "never"})
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "38" in text, text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert httpx.get(served + "/").text.startswith("<!doctype html>")


def test_real_models_refuse_an_overlong_message_cleanly_and_stop_when_the_client_leaves(served: str) -> None:
    """#20 findings 2 and 6 on the shipped models: a message past the context window is a 400 (it was a 500), and a
    direct tier stops generating when its client leaves (the next one-token request waited 23.98 s before)."""
    url = served + "/v1/chat/completions"
    long = "Please comment on this sum: " + "1234 + 5678 and " * 650
    for model in ("assistant", "small"):
        response = httpx.post(url, json={"model": model, "messages": [{"role": "user", "content": long}]},
                              timeout=120)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "context_length_exceeded"
    story = {"model": "small", "stream": True, "max_tokens": 1000,
             "messages": [{"role": "user", "content": "Write a very long story about a dragon and a city."}]}
    with httpx.stream("POST", url, json=story, timeout=120) as response:
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: {")
            if received >= 5:
                break
    started = time.monotonic()
    quick = httpx.post(url, json={"model": "small", "max_tokens": 1,
                                  "messages": [{"role": "user", "content": "Say OK."}]}, timeout=120)
    waited = time.monotonic() - started
    assert quick.status_code == 200
    assert waited < 10, f"the next request waited {waited:.1f} s behind an abandoned generation"


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("question", "expected"), [("What is 347 * 29?", "10063"), (KETTLE_QUESTION, "38")])
def test_the_langgraph_agent_example_answers_through_our_mcp_tools(kettle: str, question: str, expected: str) -> None:
    """#22: a LangGraph ReAct agent (langchain-mcp-adapters) driven by the shipped large model over /v1, with our
    `ask` tool over /mcp."""
    completed = subprocess.run([sys.executable, "-W", "ignore", str(EXAMPLES / "langgraph_agent.py"), question,
                                "--url", kettle], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "tools called: ask" in completed.stdout
    assert expected in completed.stdout.lower(), completed.stdout


def test_the_in_process_agent_example_starts_with_an_empty_index(tmp_path: Path) -> None:
    env = dict(os.environ, ASSISTANT_RETRIEVAL__INDEX_DIR=str(tmp_path / "index"),
               ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(tmp_path / "threads.sqlite"))
    completed = subprocess.run([sys.executable, str(EXAMPLES / "python_agent.py")], capture_output=True, text=True,
                               timeout=600, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr.count(EMPTY_INDEX_HINT) == 1, completed.stderr[-3000:]
    assert "A: 10063" in completed.stdout
    # nothing in the index answers it: the answer says so before anything from general knowledge
    assert "A: Not in your documents" in completed.stdout, completed.stdout


def test_binding_beyond_loopback_without_a_key_is_refused() -> None:
    completed = subprocess.run([ASSISTANT, "serve", "--host", "0.0.0.0"], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 2 and "without an API key" in completed.stderr


ZORBLAX = ("# Zorblax care\n\nThe zorblax kept by Ellinor Quade is fed blue kelp every Tuesday morning.\n\n"
           "Visitors wrote: <img src=x onerror=\"window.pwned=1\"> and [a link](javascript:window.pwned=2).\n")
SCREENSHOTS = Path(os.environ.get("ASSISTANT_SCREENSHOT_DIR", "bench/results/screenshots"))


def _cited(turn: Any) -> str:
    from selenium.webdriver.common.by import By

    sources = turn.find_elements(By.CSS_SELECTOR, ".sources")
    if not sources:
        return ""
    sources[0].find_element(By.TAG_NAME, "summary").click()
    return str(sources[0].text)


def test_the_page_on_the_shipped_models(kettle: str, tmp_path: Path) -> None:
    """#21 as a new user meets it: ask, stop (the stopped answer is kept), reload, add a PDF and a markdown file,
    ask what only they answer and see the citation, remove a file and see it gone; planted markup stays inert;
    screenshots light and dark."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    page: Any = open_browser(1280, 900)
    try:
        page.get(kettle + "/")
        math = ask_on_page(page, "What is 347 * 29?", 1, timeout=240)
        assert math.find_element(By.CSS_SELECTOR, ".answer").text == "10063"
        fact = ask_on_page(page, KETTLE_QUESTION, 2, timeout=240)
        assert fact.find_element(By.CSS_SELECTOR, ".route").text == "FACT"
        assert "38" in fact.find_element(By.CSS_SELECTOR, ".answer").text.lower()
        assert "Tarnwick" in _cited(fact)
        fact.find_element(By.CSS_SELECTOR, ".meta .cost summary").click()  # the cost figures, behind "details"
        assert re.fullmatch(r"~\d+\.\d J", fact.find_element(By.CSS_SELECTOR, ".badge.energy").text)
        assert re.fullmatch(r"\d+\.\d tok/s", fact.find_element(By.CSS_SELECTOR, ".badge.speed").text)
        assert not math.find_elements(By.CSS_SELECTOR, ".badge.speed")  # the calculator used no model

        # Stop mid-stream: the model stops, so a one-token request right after is answered at once.
        page.find_element(By.ID, "escalation").send_keys("never")
        page.find_element(By.ID, "question").send_keys("Write a very long story about a dragon who learns to cook.",
                                                       Keys.ENTER)
        WebDriverWait(page, 120).until(  # mid-answer: the answer itself has some words (not only the question)
            lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn .answer")[2].text) > 60)
        page.find_element(By.ID, "stop").click()
        WebDriverWait(page, 10).until(until.presence_of_element_located(
            (By.CSS_SELECTOR, ".turn:nth-child(3) .answer[data-state='stopped']")))
        started = time.monotonic()
        quick = httpx.post(kettle + "/v1/chat/completions", timeout=120, json={
            "model": "small", "max_tokens": 1, "messages": [{"role": "user", "content": "Say OK."}]})
        waited = time.monotonic() - started
        assert quick.status_code == 200 and waited < 10, f"the next request waited {waited:.1f} s"
        page.find_element(By.ID, "escalation").send_keys("auto")
        # the stopped answer is kept as far as it was written: its actions come once the server has kept it
        WebDriverWait(page, 20).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".turn:nth-child(3) .edit"))
        stopped = page.find_element(By.CSS_SELECTOR, ".turn:nth-child(3) .answer").text

        # Reload: every turn comes back, the stopped one as it was shown, marked stopped.
        page.refresh()
        WebDriverWait(page, 20).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == 3)
        restored = page.find_elements(By.CSS_SELECTOR, ".turn")
        assert restored[0].find_element(By.CSS_SELECTOR, ".answer").text == "10063"
        assert restored[1].find_element(By.CSS_SELECTOR, ".route").text == "FACT"
        kept = restored[2].find_element(By.CSS_SELECTOR, ".answer")
        assert kept.text == stopped and kept.get_attribute("data-state") == "stopped" and len(stopped) > 60
        WebDriverWait(page, 20).until(lambda driver: "What is 347 * 29?" in driver.find_element(By.ID, "threads").text)

        # Documents: a markdown file and a PDF, then questions only they answer.
        notes = tmp_path / "zorblax-care.md"
        notes.write_text(ZORBLAX)
        report = tmp_path / "hatchery.pdf"
        report.write_bytes(minimal_pdf("The Glimmerfish hatchery of Varnholt opened in 1987."))
        page.find_element(By.ID, "toggle-documents").click()
        page.find_element(By.ID, "files").send_keys(f"{notes}\n{report}")
        WebDriverWait(page, 120).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#uploads .done")) == 2)
        WebDriverWait(page, 20).until(
            lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#document-list li[data-id]")) == 3)
        page.find_element(By.ID, "toggle-documents").click()
        kelp = ask_on_page(page, "What is the zorblax kept by Ellinor Quade fed?", 4, timeout=240)
        assert "kelp" in kelp.find_element(By.CSS_SELECTOR, ".answer").text.lower()
        cited = _cited(kelp)
        assert "Zorblax care" in cited and "<img src=x" in cited  # the plant is shown as text
        year = ask_on_page(page, "In what year did the Glimmerfish hatchery of Varnholt open?", 5, timeout=240)
        assert "1987" in year.find_element(By.CSS_SELECTOR, ".answer").text
        assert "hatchery" in _cited(year)
        assert not page.find_elements(By.CSS_SELECTOR, "#log img, #log script, #log iframe")
        assert page.execute_script("return window.pwned === undefined")
        _screenshots(page)

        # Remove the markdown file: it is gone from the list and from the answers.
        page.find_element(By.ID, "toggle-documents").click()
        WebDriverWait(page, 20, ignored_exceptions=[StaleElementReferenceException]).until(  # the list re-renders
            lambda driver: [driver.find_element(  # Remove asks first, then removes
                By.CSS_SELECTOR, "#document-list li[data-id='uploads/zorblax-care.md'] .remove").click()
                for _ in range(2)] and True)
        WebDriverWait(page, 30).until(
            lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#document-list li[data-id]")) == 2)
        listed = httpx.get(kettle + "/v1/documents", params={"prefix": "uploads/"}).json()
        assert sorted(item["id"] for item in listed["data"]) == ["uploads/hatchery.pdf", "uploads/tarnwick-kettle.md"]
        page.find_element(By.ID, "toggle-documents").click()
        again = ask_on_page(page, "What is the zorblax kept by Ellinor Quade fed?", 6, timeout=240)
        assert "Zorblax care" not in _cited(again)
    finally:
        page.quit()


HOLIDAYS = ("# Brindle & Co holiday policy\n\n## Public holidays\n\n| Holiday | Date |\n| --- | --- |\n"
            "| Founders' Day | 14 September |\n| Winter closure | 24 December |\n\n## Annual leave\n\n"
            "Full-time employees get **27 days** of paid annual leave a year.\n")
OFFICES = ("# Brindle & Co offices\n\n## Leeds office\n\nThe Leeds office is on Wharf Street and opens at 8:30.\n\n"
           "## Approvals\n\n- Leave of up to 10 days: your team lead approves.\n"
           "- Leave of more than 10 days: Mira Thorne approves.\n")


def test_a_new_users_markdown_and_word_files_are_answered_cited_and_never_invented(served: str,
                                                                                  tmp_path: Path) -> None:
    """#31 on the shipped models: a table cell from a markdown file and a list item from a Word file, each with a
    numbered citation that opens its passage; a question about them they do not answer gets the plain refusal; what
    the page showed is what a reload shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    from eval.documents import markdown_to_docx

    _upload(served, "brindle-holidays.md", HOLIDAYS.encode())
    _upload(served, "brindle-offices.docx", markdown_to_docx(OFFICES))
    page: Any = open_browser(1280, 900)
    try:
        page.get(served + "/")  # a new browser: a new thread
        day = ask_on_page(page, "When is Founders' Day at Brindle & Co?", 1, timeout=240)
        text = day.find_element(By.CSS_SELECTOR, ".answer").text
        assert "14 September" in text and re.search(r"\[\d\]$", text), text
        sources = day.find_element(By.CSS_SELECTOR, ".sources")
        sources.find_element(By.TAG_NAME, "summary").click()
        assert "Brindle & Co holiday policy › Public holidays" in sources.text
        sources.find_element(By.CSS_SELECTOR, ".open-document").click()
        WebDriverWait(page, 20).until(until.visibility_of_element_located((By.CSS_SELECTOR, "#viewer .passage.cited")))
        assert "Founders' Day" in page.find_element(By.CSS_SELECTOR, "#viewer .passage.cited").text
        page.find_element(By.ID, "viewer-close").click()
        approver = ask_on_page(page, "Who approves leave of more than 10 days at Brindle & Co?", 2, timeout=240)
        assert "Mira Thorne" in approver.find_element(By.CSS_SELECTOR, ".answer").text
        assert "Brindle & Co offices › Approvals" in _cited(approver)  # the Word file's heading, kept
        refused = ask_on_page(page, "How many parking spaces does the Brindle & Co Leeds office have?", 3, timeout=240)
        assert refused.find_element(By.CSS_SELECTOR, ".answer").text == "I could not find this in your documents."
        shown = [turn.find_element(By.CSS_SELECTOR, ".answer").text for turn in
                 page.find_elements(By.CSS_SELECTOR, ".turn")]
        page.refresh()
        WebDriverWait(page, 30).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".turn")) == len(shown))
        assert [turn.find_element(By.CSS_SELECTOR, ".answer").text
                for turn in page.find_elements(By.CSS_SELECTOR, ".turn")] == shown
    finally:
        page.quit()


def _screenshots(page: Any) -> None:
    """The page light and dark, desktop and 375 px wide (ASSISTANT_SCREENSHOT_DIR=docs/screenshots refreshes the
    README's pictures)."""
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.execute_script("for (const open of document.querySelectorAll('details[open]')) open.open = false;")
    for scheme in ("light", "dark"):
        page.execute_cdp_cmd("Emulation.setEmulatedMedia",
                             {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        for width, height, name in ((1280, 900, "desktop"), (375, 812, "375px")):
            page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
            if name == "desktop":
                page.find_element(By.ID, "toggle-documents").click()  # show the documents panel too
            page.execute_script("const log = document.getElementById('log'); log.scrollTop = log.scrollHeight;")
            shot = SCREENSHOTS / f"page-{name}-{scheme}.png"
            assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
            if name == "desktop":
                page.find_element(By.ID, "toggle-documents").click()
    page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
