"use strict";
// The chat page. Model output and retrieved passages are untrusted: answers are rendered as markdown by marked and
// sanitised by DOMPurify (no images, no scripts, no event handlers, only http/https/mailto links); everything else
// from the server (questions, passages, titles, document names) is only ever set with textContent.

const $ = (id) => document.getElementById(id);
const log = $("log");
const question = $("question");
const state = {
  thread: null,          // the open thread's id
  controller: null,      // the AbortController of the answer being streamed
  apiKey: sessionStorage.getItem("apiKey") || "",
};

// ---- helpers --------------------------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function button(label, onClick, className) {
  const node = element("button", className, label);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function announce(text) { $("status").textContent = text; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.apiKey) headers.Authorization = "Bearer " + state.apiKey;
  const response = await fetch(path, Object.assign({}, options, {headers}));
  if (response.status === 401) $("key-form").hidden = false;
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || JSON.stringify(body);
  } catch (_) {
    return response.statusText;
  }
}

function newThreadId() {  // getRandomValues works off loopback too, where randomUUID (secure contexts only) does not
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "web-" + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function formatNumber(value, unit) {
  const steps = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, prefix] of steps) if (value >= size) return (value / size).toFixed(1) + " " + prefix + unit;
  return Math.round(value) + " " + unit;
}

function timeAgo(seconds) {
  const age = Date.now() / 1000 - seconds;
  if (age < 60) return "just now";
  if (age < 3600) return Math.floor(age / 60) + " min ago";
  if (age < 86400) return Math.floor(age / 3600) + " h ago";
  return new Date(seconds * 1000).toLocaleDateString();
}

async function copyText(text, node) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {  // no clipboard permission: select a hidden textarea and copy that
    const area = element("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = node.textContent;
  node.textContent = "Copied";
  setTimeout(() => { node.textContent = label; }, 1200);
}

// ---- markdown, sanitised --------------------------------------------------------------------------------------

const ALLOWED_TAGS = ["p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
                      "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "span",
                      "input"];
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tagName === "INPUT" && node.getAttribute("type") !== "checkbox") node.remove();
});

function renderMarkdown(target, text) {
  const html = marked.parse(text, {gfm: true, breaks: true, async: false});
  const fragment = DOMPurify.sanitize(html, {
    ALLOWED_TAGS, ALLOWED_ATTR: ["href", "title", "align", "colspan", "rowspan", "type", "checked", "disabled"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i, RETURN_DOM_FRAGMENT: true,
  });
  for (const block of fragment.querySelectorAll("pre")) {
    const code = block.textContent;
    block.appendChild(button("Copy", (event) => copyText(code, event.target), "copy-code"));
  }
  target.replaceChildren(fragment);
}

// ---- one turn on the page -------------------------------------------------------------------------------------

function addTurn(text) {
  const turn = element("article", "turn");
  turn.appendChild(element("div", "question", text));
  const working = element("details", "working");
  working.hidden = true;
  working.appendChild(element("summary", "", "Working"));
  working.appendChild(element("div", "working-text"));  // text only, never HTML: it is the model's writing
  turn.appendChild(working);
  const answer = element("div", "answer");
  answer.dataset.raw = "";
  turn.appendChild(answer);
  const stage = element("p", "stage muted");  // what the turn is doing, and its speed while it writes
  stage.hidden = true;
  turn.appendChild(stage);
  turn.appendChild(element("div", "meta"));
  turn.appendChild(element("div", "actions"));
  log.appendChild(turn);
  return turn;
}

function setAnswer(turn, text, stateName) {
  const answer = turn.querySelector(".answer");
  answer.dataset.raw = text;
  renderMarkdown(answer, text);
  if (stateName) {
    answer.dataset.state = stateName;
    answer.setAttribute("aria-busy", String(stateName === "streaming"));  // screen readers wait for the whole answer
  }
}

function setWorking(turn, text, open) {
  // a word problem's working, the calculator's results in it, under its own toggle
  const working = turn.querySelector(".working");
  working.querySelector(".working-text").textContent = text;
  working.hidden = !text;
  working.open = open;
}

function setStage(turn, label, speed) {
  const stage = turn.querySelector(".stage");
  stage.hidden = !label;
  stage.textContent = label ? label + (speed ? " · " + speed.toFixed(1) + " tok/s" : "…") : "";
}

function addNote(turn, text) {
  turn.querySelector(".answer").appendChild(element("p", "note", text));
}

const ROUTES = {
  FACT: "FACT: answered from your documents (or said they do not answer it)",
  MATH: "MATH: computed exactly by the calculator (a word problem: worked out with it)",
  CHAT: "CHAT: written by a language model",
};

function badge(parent, className, text, tooltip) {
  // every figure says what it means when pointed at (title) and to screen readers (aria-label)
  const node = element("span", "badge " + className, text);
  node.title = tooltip;
  node.setAttribute("aria-label", text + ": " + tooltip);
  parent.appendChild(node);
  return node;
}

function showDetails(turn, info, usage) {
  const meta = turn.querySelector(".meta");
  meta.replaceChildren();
  badge(meta, "route " + info.route, info.route, ROUTES[info.route] || info.route).dataset.route = info.route;
  const total = info.cost.total;
  const chosen = info.route_stage === "forced" ? Object.keys(info.cost.per_model)[0] : null;  // a model choice
  const who = chosen ? chosen + " model, chosen" :
    info.escalated ? "escalated" : (total.calls === 0 ? "no model" : "small model only");
  const why = chosen ? "you chose the model that answers: " :
    info.escalated ? "the larger model answered: " : "the larger model was not asked: ";
  badge(meta, "escalation" + (info.escalated ? " escalated" : ""), who, why + (info.escalation_reason || who));
  badge(meta, "confidence", "confidence " + info.confidence.toFixed(2),
        "how likely this answer is right, as the assistant estimates it (0 to 1; below the threshold the larger " +
        "model takes over)");
  badge(meta, "latency", info.wall_seconds.toFixed(2) + " s", "time from the question to the whole answer");
  const cost = element("details", "cost");
  cost.appendChild(element("summary", "", "details"));
  const figures = element("span", "figures");
  const tokens = usage ? usage.total_tokens : total.prompt_tokens + total.completion_tokens;
  badge(figures, "tokens", tokens + " tokens", "tokens the models read and wrote for this answer");
  badge(figures, "flops", formatNumber(total.flops, "FLOP"),
        "compute spent: 2 x the model's parameters x the tokens it computed");
  if (total.tokens_per_second != null) {
    badge(figures, "speed", total.tokens_per_second.toFixed(1) + " tok/s",
          "tokens written per second of model time (reading the prompt included)");
  }
  if (total.energy_joules != null) {
    badge(figures, "energy", "~" + total.energy_joules.toFixed(1) + " J",
          "estimated energy of this answer (" + total.energy_source + ")");
  }
  badge(figures, "cost", "$" + total.cost_usd.toFixed(6),
        "what the tokens would cost at the models' notional prices per million tokens");
  if (info.escalation_reason) figures.appendChild(element("span", "reason", info.escalation_reason));
  cost.appendChild(figures);
  meta.appendChild(cost);
  if (info.working && !turn.querySelector(".working-text").textContent) setWorking(turn, info.working, false);
  turn.querySelector(".sources")?.remove();
  const sources = info.sources || [];
  const cited = sources.filter((source) => source.cited);
  const shown = info.not_in_documents ? sources.slice(0, 3) : (cited.length ? cited : sources.filter((s) => s.used));
  if (shown.length) {
    const details = element("details", "sources");
    const label = info.not_in_documents ? "Closest passages (they do not answer it)"
      : shown.length + " source" + (shown.length > 1 ? "s" : "");
    details.appendChild(element("summary", "", label));
    if (info.not_in_documents) details.open = true;
    for (const source of shown) details.appendChild(sourceItem(source, sources.indexOf(source) + 1));
    meta.after(details);
  }
}

function placeOf(source) {
  const title = source.title || source.doc_id;
  return source.section && !source.section.startsWith(title) ? title + " › " + source.section
    : (source.section || title);
}

function quoted(text, quote) {
  // the passage with its supporting sentence marked; text nodes only, never HTML
  const block = element("blockquote", "");
  const at = quote ? text.indexOf(quote) : -1;
  if (at < 0) { block.textContent = text; return block; }
  block.append(text.slice(0, at), element("mark", "", quote), text.slice(at + quote.length));
  return block;
}

function sourceItem(source, number) {
  // turns stored before numbered citations have no marker: their place in the list is the same number
  const marker = source.marker || number;
  const item = element("div", "source");
  const heading = element("p", "source-place");
  heading.append(element("strong", "", "[" + marker + "] "), placeOf(source) + " ");
  const open = button("Open", () => openDocument(source), "small open-document");
  open.setAttribute("aria-label", "Open " + (source.title || source.doc_id) + " at passage " + marker);
  heading.appendChild(open);
  item.appendChild(heading);
  item.appendChild(quoted(source.text || "", source.quote));
  return item;
}

async function openDocument(source) {
  const viewer = $("viewer");
  const body = $("viewer-body");
  $("viewer-title").textContent = source.title || source.doc_id;
  body.replaceChildren(element("p", "muted", "loading..."));
  if (!viewer.open) viewer.showModal();
  const response = await api("/v1/documents/" + source.doc_id.split("/").map(encodeURIComponent).join("/"));
  if (!response.ok) { body.replaceChildren(element("p", "error", await errorText(response))); return; }
  const view = await response.json();
  body.replaceChildren();
  let target = null;
  for (const passage of view.passages) {
    if (passage.section) body.appendChild(element("p", "passage-section muted", passage.section));
    const here = passage.chunk_id === source.chunk_id;
    const block = here ? quoted(passage.text, source.quote) : element("blockquote", "", passage.text);
    block.className = "passage" + (here ? " cited" : "");
    block.id = "passage-" + passage.position;
    body.appendChild(block);
    if (here) target = block;
  }
  if (target) { target.tabIndex = -1; target.scrollIntoView({block: "center"}); target.focus(); }
}

function showActions(turn, questionText) {
  // each answer's buttons say which answer they act on (a screen reader lists many "Copy" buttons)
  const which = "the answer to “" + (questionText.length > 60 ? questionText.slice(0, 60) + "…" : questionText) + "”";
  const actions = turn.querySelector(".actions");
  const copy = button("Copy", (event) => copyText(turn.querySelector(".answer").dataset.raw, event.target), "copy");
  copy.setAttribute("aria-label", "Copy " + which);
  actions.replaceChildren(copy);
  for (const old of log.querySelectorAll(".regenerate")) old.remove();
  const again = button("Regenerate", () => regenerate(turn, questionText, null, 0.8), "regenerate");
  again.setAttribute("aria-label", "Regenerate " + which);
  actions.appendChild(again);
  const larger = button("With the larger model", () => regenerate(turn, questionText, "always"), "regenerate larger");
  larger.setAttribute("aria-label", "Regenerate " + which + " with the larger model");
  actions.appendChild(larger);
  if (turn.dataset.saved !== "true") return;
  const edit = button("Edit question", () => editQuestion(turn), "edit");
  edit.setAttribute("aria-label", "Edit the question “" + questionText.slice(0, 60) + "” and ask it again");
  actions.appendChild(edit);
  for (const [rating, label, name] of [["up", "Good", "Good"], ["down", "Bad", "Bad"]]) {
    const vote = button(label, () => rate(turn, rating), "rate " + rating);
    vote.setAttribute("aria-label", name + " answer: " + which);
    vote.setAttribute("aria-pressed", String(turn.dataset.rating === rating));
    actions.appendChild(vote);
  }
}

function savedPosition(turn) {
  // a turn's number in the thread as the server keeps it: turns never saved (failed ones) do not count
  return Array.from(log.querySelectorAll(".turn[data-saved='true']")).indexOf(turn);
}

async function rate(turn, rating) {
  // a second click on the same thumb takes the verdict back; it is stored with the turn and exported with it
  const next = turn.dataset.rating === rating ? null : rating;
  const position = savedPosition(turn);
  const response = await api("/v1/threads/" + encodeURIComponent(state.thread) + "/turns/" + position + "/feedback", {
    method: "PUT", headers: {"Content-Type": "application/json"}, body: JSON.stringify({rating: next}),
  });
  if (!response.ok) { announce("Feedback not saved: " + await errorText(response)); return; }
  turn.dataset.rating = next || "";
  for (const vote of turn.querySelectorAll(".rate")) {
    vote.setAttribute("aria-pressed", String(vote.classList.contains(next)));
  }
  announce(next ? "Thanks for the feedback" : "Feedback removed");
}

function editQuestion(turn) {
  // the question becomes editable; sending it answers in place of this turn and drops the turns after it
  if (state.controller) return;
  const shown = turn.querySelector(".question");
  const box = element("textarea", "edit-box");
  box.value = shown.textContent;
  box.setAttribute("aria-label", "Edited question");
  const send = button("Send", () => {
    const text = box.value.trim();
    if (!text) return;
    const position = savedPosition(turn);
    while (turn.nextElementSibling) turn.nextElementSibling.remove();
    shown.textContent = text;
    form.replaceWith(shown);
    ask(text, {regenerateTurn: turn, editTurn: position});
  }, "primary");
  const cancel = button("Cancel", () => form.replaceWith(shown));
  const form = element("div", "edit-form");
  form.append(box, send, cancel);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send.click(); }
    if (event.key === "Escape") { event.stopPropagation(); cancel.click(); }
  });
  shown.replaceWith(form);
  box.focus();
}

function confirmFirst(node, question, act) {
  // the first click asks (the button reads `question` for 3 s), the second acts
  if (!node.classList.contains("confirm")) {
    const label = node.textContent;
    node.classList.add("confirm");
    node.textContent = question;
    setTimeout(() => { node.classList.remove("confirm"); node.textContent = label; }, 3000);
    return;
  }
  act();
}

// ---- asking ---------------------------------------------------------------------------------------------------

function knobs() {
  const body = {escalation: $("escalation").value};
  if ($("answer-with").value) body.answer_with = $("answer-with").value;  // the person's model choice
  const cap = $("cost-cap").value.trim();
  if (cap !== "" && Number(cap) >= 0) body.cost_cap_usd = Number(cap);
  return body;
}

function conversation(text) {
  // the thread's instructions travel as its system message (kept with the thread by the server)
  const instructions = $("system-prompt").value.trim();
  return (instructions ? [{role: "system", content: instructions}] : []).concat([{role: "user", content: text}]);
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  question.setAttribute("aria-busy", String(busy));
}

async function ask(text, {regenerateTurn = null, replace = false, escalation = null, editTurn = null,
                          temperature = null} = {}) {
  if (state.controller) return;
  if (!state.thread) openThread(newThreadId(), false);
  const turn = regenerateTurn || addTurn(text);
  turn.querySelector(".actions").replaceChildren();
  turn.querySelector(".meta").replaceChildren();
  turn.querySelector(".sources")?.remove();
  setWorking(turn, "", false);
  setAnswer(turn, "", "streaming");
  turn.scrollIntoView({block: "end"});
  state.controller = new AbortController();
  setBusy(true);
  let raw = "";
  let working = "";
  let pending = false;
  let stage = "";
  let deltas = 0;          // each streamed delta is one token of the model's
  let firstDelta = 0;
  const speed = () => (deltas > 1 ? (deltas - 1) / ((performance.now() - firstDelta) / 1000) : 0);
  const render = () => {
    pending = false;
    setAnswer(turn, raw);
    setWorking(turn, working, !raw);
    setStage(turn, stage, speed());
  };
  const schedule = () => {  // one render per frame, however many chunks arrive in it
    if (!pending) { pending = true; requestAnimationFrame(render); }
  };
  const written = () => {
    if (!deltas++) firstDelta = performance.now();
    schedule();
  };
  const request = Object.assign({model: "assistant", stream: true, stream_options: {include_usage: true},
                                 stream_drafts: true, stream_stages: true, regenerate: replace,
                                 messages: conversation(text)}, knobs(),
                                 escalation ? {escalation} : {}, temperature !== null ? {temperature} : {},
                                 editTurn !== null && editTurn >= 0 ? {edit_turn: editTurn} : {});
  if (escalation === "always" && request.answer_with) request.answer_with = "large";  // "With the larger model"
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST", signal: state.controller.signal,
      headers: {"Content-Type": "application/json", "X-Thread-Id": state.thread, "X-Assistant-Client": "web"},
      body: JSON.stringify(request),
    });
    if (!response.ok) {
      setAnswer(turn, "", "error");
      addNote(turn, "Error " + response.status + ": " + await errorText(response));
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let info = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let split;
      while ((split = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, split).split("\n").find((l) => l.startsWith("data: "));
        buffer = buffer.slice(split + 2);
        if (!line || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6));
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        const event = chunk.x_assistant && chunk.x_assistant.event;
        if (event === "stage") {
          stage = chunk.x_assistant.label;  // what the turn does next: searching, checking, asking the larger model
          deltas = 0;
          announce(stage);
          schedule();
        } else if (event === "replace") {
          raw = chunk.x_assistant.text;  // a discarded draft is replaced, never appended to
          schedule();
        } else if (delta && delta.content) {
          raw += delta.content;
          written();
        } else if (delta && delta.reasoning_content) {
          working += delta.reasoning_content;  // shown open while it is written, folded once the answer comes
          written();
        }
        if (chunk.x_assistant && chunk.x_assistant.route) info = chunk.x_assistant;
        if (chunk.usage && info) showDetails(turn, info, chunk.usage);
        else if (info) showDetails(turn, info, null);
      }
    }
    stage = "";
    setStage(turn, "");
    setAnswer(turn, raw, "done");
    setWorking(turn, working, false);
    turn.dataset.saved = "true";
    turn.dataset.rating = "";
    showActions(turn, text);
    $("export").hidden = false;
    announce("Answer ready");
    refreshThreads();
  } catch (error) {
    stage = "";
    setStage(turn, "");
    const stopped = error.name === "AbortError";
    setAnswer(turn, raw, stopped ? "stopped" : "error");
    addNote(turn, stopped ? "[stopped]" : "[error: " + error.message + "]");
    if (stopped) showWhenKept(turn, text, state.thread);
    else showActions(turn, text);
  } finally {
    state.controller = null;
    setBusy(false);
    question.focus();
  }
}

async function showWhenKept(turn, text, thread) {
  // The server keeps a stopped answer as far as it was written, where the turn would have gone. Its actions wait
  // until it is kept, so that Regenerate answers in its place and Edit and feedback find it at its position.
  const saved = Array.from(log.querySelectorAll(".turn[data-saved='true']")).filter((other) => other !== turn);
  const expected = 2 * (saved.length + 1);
  for (let attempt = 0; attempt < 40 && state.thread === thread; attempt++) {
    const response = await api("/v1/threads/" + encodeURIComponent(thread));
    const messages = response.ok ? (await response.json()).messages : [];
    const last = messages[messages.length - 1];
    if (messages.length === expected && last.x_assistant && last.x_assistant.stopped) {
      // as kept: the words the server wrote before it saw the Stop, which a reload shows too
      setAnswer(turn, last.content, "stopped");
      addNote(turn, "[stopped]");
      turn.dataset.saved = "true";
      turn.dataset.rating = "";
      $("export").hidden = false;
      refreshThreads();
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  if (turn.isConnected) showActions(turn, text);
}

function stop() {
  if (state.controller) {
    state.controller.abort();
    announce("Stopped");
  }
}

function regenerate(turn, text, escalation, temperature = null) {
  // A kept turn (finished, or stopped and kept) is answered again in its place; one never saved is asked again.
  // "Regenerate" samples a chat answer (a different one); documents answers and the calculator stay as exact.
  ask(text, {regenerateTurn: turn, replace: turn.dataset.saved === "true", escalation, temperature});
}

// ---- threads --------------------------------------------------------------------------------------------------

function openThread(id, load = true) {
  state.thread = id;
  localStorage.setItem("thread", id);
  history.replaceState(null, "", "#thread=" + encodeURIComponent(id));
  log.replaceChildren();
  $("thread-title").textContent = "";
  $("export").hidden = true;
  $("system-prompt").value = "";
  $("instructions").open = false;
  for (const item of $("threads").children) item.classList.toggle("current", item.dataset.id === id);
  if (load) loadThread(id);
}

async function loadThread(id) {
  const response = await api("/v1/threads/" + encodeURIComponent(id));
  if (!response.ok || state.thread !== id) return;  // 404: a new thread nobody has asked in yet
  const thread = await response.json();
  $("thread-title").textContent = thread.title;
  $("system-prompt").value = thread.system_prompt || "";
  $("instructions").open = Boolean(thread.system_prompt);
  const messages = thread.messages;
  $("export").hidden = false;
  for (let index = 0; index + 1 < messages.length; index += 2) {
    const turn = addTurn(messages[index].content);
    const details = messages[index + 1].x_assistant;
    const stopped = Boolean(details && details.stopped);  // kept as far as it was written when it was stopped
    setAnswer(turn, messages[index + 1].content, stopped ? "stopped" : "done");
    if (stopped) addNote(turn, "[stopped]");
    turn.dataset.saved = "true";
    turn.dataset.rating = (messages[index + 1].feedback && messages[index + 1].feedback.rating) || "";
    if (details && !stopped) showDetails(turn, details, null);
    showActions(turn, messages[index].content);
  }
  log.lastElementChild?.scrollIntoView({block: "end"});
}

async function refreshThreads() {
  // the page's own threads only (agents' threads are tagged with their client and kept apart)
  const search = $("thread-search").value.trim();
  const response = await api("/v1/threads?limit=200&client=web" + (search ? "&q=" + encodeURIComponent(search) : ""));
  if (!response.ok) return;
  const list = $("threads");
  list.replaceChildren();
  for (const thread of (await response.json()).data) {
    const item = element("li");
    item.dataset.id = thread.id;
    item.classList.toggle("current", thread.id === state.thread);
    if (thread.id === state.thread) $("thread-title").textContent = thread.title;
    const open = button("", () => { openThread(thread.id); document.body.classList.remove("threads-open"); }, "open");
    open.appendChild(element("span", "", thread.title));
    open.appendChild(element("small", "", thread.turns + " turn" + (thread.turns === 1 ? "" : "s") + " · " +
                                            timeAgo(thread.updated)));
    open.setAttribute("aria-label", "Open thread " + thread.title);
    item.appendChild(open);
    const renameButton = button("✎", () => rename(item, thread), "small rename");
    renameButton.setAttribute("aria-label", "Rename thread " + thread.title);
    renameButton.title = "Rename";
    const deleteButton = button("✕", (event) => remove(event.currentTarget, thread), "small delete");
    deleteButton.setAttribute("aria-label", "Delete thread " + thread.title);
    deleteButton.title = "Delete";
    item.append(renameButton, deleteButton);
    list.appendChild(item);
  }
}

function rename(item, thread) {
  const input = element("input");
  input.value = thread.title;
  input.setAttribute("aria-label", "New title");
  item.replaceChildren(input);
  input.focus();
  input.select();
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") refreshThreads();
    if (event.key !== "Enter" || !input.value.trim()) return;
    await api("/v1/threads/" + encodeURIComponent(thread.id), {
      method: "PATCH", headers: {"Content-Type": "application/json"}, body: JSON.stringify({title: input.value}),
    });
    refreshThreads();
  });
}

function remove(node, thread) {
  confirmFirst(node, "Delete?", async () => {
    await api("/v1/threads/" + encodeURIComponent(thread.id), {method: "DELETE"});
    if (thread.id === state.thread) openThread(newThreadId(), false);
    refreshThreads();
    announce("Thread deleted");
  });
}

// ---- documents ------------------------------------------------------------------------------------------------

function uploadFile(file) {
  const row = element("li", "upload");
  row.appendChild(element("span", "name", file.name));
  const bar = element("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", "Uploading " + file.name);
  row.appendChild(bar);
  const status = element("span", "state muted", "uploading");
  row.appendChild(status);
  $("uploads").prepend(row);
  const fail = (message) => { row.classList.add("failed"); status.textContent = message; bar.remove(); };
  const form = new FormData();
  form.append("file", file, file.name);
  const request = new XMLHttpRequest();  // fetch cannot report upload progress
  request.open("POST", "/v1/documents");
  if (state.apiKey) request.setRequestHeader("Authorization", "Bearer " + state.apiKey);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
  });
  request.addEventListener("error", () => fail("upload failed: connection error"));
  request.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
    if (request.status === 401) $("key-form").hidden = false;
    if (request.status !== 202) { fail("refused: " + ((body.error && body.error.message) || request.status)); return; }
    bar.value = 0;
    bar.setAttribute("aria-label", "Indexing " + file.name);
    status.textContent = "indexing";
    follow(body.data[0], row, bar, status, fail);
  });
  request.send(form);
}

async function follow(job, row, bar, status, fail) {
  const cancel = button("Cancel", async () => {
    cancel.disabled = true;
    await api("/v1/documents/jobs/" + job.id + "/cancel", {method: "POST"});
  }, "cancel");
  cancel.setAttribute("aria-label", "Cancel indexing " + job.file_name);
  row.appendChild(cancel);
  try {
    await followJob(job, row, bar, status, fail);
  } finally {
    cancel.remove();
  }
}

async function followJob(job, row, bar, status, fail) {
  for (;;) {
    const response = await api("/v1/documents/jobs/" + job.id);
    if (!response.ok) { fail("lost track of the job"); return; }
    job = await response.json();
    if (job.chunks_total) bar.value = Math.round(100 * job.chunks_done / job.chunks_total);
    if (job.state === "done") {
      bar.value = 100;
      row.classList.add("done");
      status.textContent = job.message;
      refreshDocuments();
      announce(job.file_name + " is indexed");
      return;
    }
    if (job.state === "failed" || job.state === "cancelled") { fail(job.message); return; }
    status.textContent = job.state + (job.chunks_total ? " " + job.chunks_done + "/" + job.chunks_total + " chunks" : "");
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function refreshDocuments() {
  const mine = await api("/v1/documents?prefix=" + encodeURIComponent("uploads/") + "&limit=1000");
  const all = await api("/v1/documents?limit=1");
  if (!mine.ok || !all.ok) return;
  const list = $("document-list");
  list.replaceChildren();
  const body = await mine.json();
  if (!body.data.length) list.appendChild(element("li", "muted", "None yet: add files above."));
  for (const doc of body.data) {
    const item = element("li");
    item.dataset.id = doc.id;
    const name = element("span", "", doc.title || doc.id);
    name.title = doc.id;
    item.appendChild(name);
    item.appendChild(element("small", "muted chunks", doc.chunks + " chunk" + (doc.chunks === 1 ? "" : "s")));
    const removeButton = button("Remove", (event) => confirmFirst(event.currentTarget, "Remove?", async () => {
      const response = await api("/v1/documents/" + encodeURIComponent(doc.id), {method: "DELETE"});
      if (response.ok) announce(doc.id + " removed");
      refreshDocuments();
    }), "remove");
    removeButton.setAttribute("aria-label", "Remove " + (doc.title || doc.id) + " from the index");
    item.appendChild(removeButton);
    list.appendChild(item);
  }
  const total = (await all.json()).total;
  $("knowledge-base").textContent = total === 0 ? "The index is empty."
    : total + (total === 1 ? " document" : " documents") + " in the index in all.";
  $("empty-index").hidden = total > 0;
}

async function checkIndex() {
  const response = await api("/v1/documents?limit=1");
  if (response.ok) $("empty-index").hidden = (await response.json()).total > 0;
}

function showDocuments(shown = true) {
  const panel = $("documents");
  panel.hidden = !shown;
  $("toggle-documents").setAttribute("aria-expanded", String(shown));
  if (shown) refreshDocuments();
}

// ---- wiring ---------------------------------------------------------------------------------------------------

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text || state.controller) return;
  question.value = "";
  ask(text);
});
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
document.addEventListener("keydown", (event) => { if (event.key === "Escape") stop(); });
$("stop").addEventListener("click", stop);
$("new").addEventListener("click", () => {
  openThread(newThreadId(), false);
  document.body.classList.remove("threads-open");
  question.focus();
});
$("toggle-threads").addEventListener("click", (event) => {
  const open = document.body.classList.toggle("threads-open");
  event.currentTarget.setAttribute("aria-expanded", String(open));
});
$("open-documents").addEventListener("click", () => { showDocuments(); $("files").focus(); });
let searching = 0;
$("thread-search").addEventListener("input", () => {
  clearTimeout(searching);
  searching = setTimeout(refreshThreads, 200);
});

async function exportThread(format) {
  // fetched (the API key goes in a header), then saved through a link to the blob
  const response = await api("/v1/threads/" + encodeURIComponent(state.thread) + "/export?format=" + format);
  if (!response.ok) { announce("Export failed: " + await errorText(response)); return; }
  const link = element("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = ($("thread-title").textContent || state.thread).slice(0, 60) + (format === "json" ? ".json" : ".md");
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
$("export-markdown").addEventListener("click", () => exportThread("markdown"));
$("export-json").addEventListener("click", () => exportThread("json"));
$("viewer-close").addEventListener("click", () => $("viewer").close());

$("toggle-documents").addEventListener("click", () => showDocuments($("documents").hidden));
$("close-documents").addEventListener("click", () => { showDocuments(false); $("toggle-documents").focus(); });
$("attach").addEventListener("click", () => $("attach-files").click());
$("attach-files").addEventListener("change", (event) => {
  // attached in the message box: the same upload, checks and progress as the Documents panel's, shown there
  showDocuments();
  for (const file of event.target.files) uploadFile(file);
  event.target.value = "";
});
$("files").addEventListener("change", (event) => {
  for (const file of event.target.files) uploadFile(file);
  event.target.value = "";
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  for (const file of event.dataTransfer.files) uploadFile(file);
});
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.apiKey = $("api-key").value.trim();
  sessionStorage.setItem("apiKey", state.apiKey);
  $("key-form").hidden = true;
  refreshThreads();
  checkIndex();
});
for (const id of ["answer-with", "escalation", "cost-cap"]) {
  const saved = localStorage.getItem(id);
  if (saved !== null) $(id).value = saved;
  $(id).addEventListener("change", () => localStorage.setItem(id, $(id).value));
}

function showIntro(shown) {
  $("intro").hidden = !shown;
  $("show-intro").setAttribute("aria-expanded", String(shown));
  if (!shown) localStorage.setItem("introSeen", "1");
}
$("dismiss-intro").addEventListener("click", () => { showIntro(false); question.focus(); });
$("show-intro").addEventListener("click", () => showIntro($("intro").hidden));
showIntro(!localStorage.getItem("introSeen"));  // a first visit explains the page

const known = new URLSearchParams(location.hash.slice(1)).get("thread") || localStorage.getItem("thread");
openThread(known || newThreadId(), Boolean(known));
refreshThreads();
checkIndex();
