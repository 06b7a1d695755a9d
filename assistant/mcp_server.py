"""The assistant as a Model Context Protocol server (the official ``mcp`` SDK), for agents in other processes.

Tools: ``ask`` (the routed answer with route, sources, confidence, escalation and cost), ``search_documents``,
``calculate`` (the exact calculator), ``list_documents``, and ``add_documents`` only when ``mcp.allow_add_documents``
is on. Cited passages are resources at ``doc://<percent-encoded chunk id>``. ``ask`` waits in the same lines as the
HTTP server's chat requests (when mounted at ``/mcp``), obeys the same time limit, reports each graph step as a
progress notification and stops generating when the client cancels the call. Failures are tool errors whose
message says what to fix; nothing a client sends reaches a shell, a file path or the calculator's text evaluation.
"""


import asyncio
from typing import Annotated, Literal
from urllib.parse import quote, unquote

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from assistant import documents as library
from assistant.admission import Generation, Lines, QueueFullError
from assistant.core.answer import Answer, AnswerView
from assistant.core.assistant import Assistant
from assistant.core.settings import McpSettings, ServerSettings
from assistant.core.text import normalize_question
from assistant.core.threads import THREAD_ID_PATTERN
from assistant.indexing import IndexWrites, UploadQueueFullError
from models.errors import ContextOverflowError
from retrieval.documents import Document
from tools.calculator import calculate as run_calculator
from tools.errors import CalculatorError

DOC_SCHEME = "doc://"
MCP_PATH = "/mcp"
DOC_ID_PATTERN = r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]*(/[A-Za-z0-9_:-][A-Za-z0-9_.:-]*)*$"
INSTRUCTIONS = (
    "A local assistant. Use `ask` for any question: arithmetic is computed exactly, facts are answered from the "
    "indexed documents with citations, anything else by a small model that escalates to a larger one when unsure. "
    "Use `search_documents` to read passages yourself, `calculate` for exact arithmetic, and read a cited passage "
    "with its doc:// resource."
)


def doc_uri(chunk_id: str) -> str:
    """The resource URI of a chunk (the id percent-encoded, so ids with / and # stay one path segment)."""
    return DOC_SCHEME + quote(chunk_id, safe="")


class Source(BaseModel):
    """A passage the answer was drawn from."""

    marker: int = Field(description="The n of the answer's [n] citing this passage.")
    chunk_id: str
    doc_id: str
    title: str
    section: str = Field("", description="The headings above the passage in its document.")
    score: float
    used: bool = Field(description="Whether the passage's sentences were shown to the model.")
    cited: bool = Field(False, description="Whether the passage supports the answer.")
    quote: str = Field("", description="The sentence of the passage that supports the answer.")
    uri: str = Field(description="The doc:// resource holding the passage.")


class Cost(BaseModel):
    """What the answer cost, over every model call."""

    prompt_tokens: int
    completion_tokens: int
    flops: float
    cost_usd: float
    model_calls: int
    seconds: float
    tokens_per_second: float | None = Field(description="Output tokens per second of model time (None: no model).")
    energy_joules: float | None = Field(description="Estimated energy of the turn (None: no power model known).")
    energy_source: str = Field(description="How the energy was estimated.")


class AskResult(BaseModel):
    """The routed answer and how it was reached."""

    text: str
    route: str = Field(description="MATH (calculator), FACT (documents) or CHAT (the language model).")
    confidence: float
    escalated: bool = Field(description="Whether the larger model answered.")
    escalation_reason: str
    sources: list[Source]
    cost: Cost
    thread_id: str | None = Field(description="Pass it back to continue the conversation (None: not kept).")
    working: str = Field("", description="A word problem's step-by-step working, every result written by the "
                                         "calculator (empty for other questions).")


class Passage(BaseModel):
    """A passage found by a search."""

    chunk_id: str
    doc_id: str
    title: str
    score: float
    text: str
    uri: str


class SearchResult(BaseModel):
    """The passages that best match a query, best first."""

    passages: list[Passage]


class Calculation(BaseModel):
    """An exact result of the calculator."""

    expression: str = Field(description="The expression as the calculator read it.")
    exact: str
    decimal: str
    solutions: list[str]


class DocumentInfo(BaseModel):
    """A document in the index."""

    doc_id: str
    title: str
    chunks: int


class DocumentList(BaseModel):
    """A page of the indexed documents."""

    total: int
    documents: list[DocumentInfo]


def _ask_result(view: AnswerView) -> AskResult:
    """The answer's one view as MCP's typed result."""
    total = view.cost.total
    sources = [Source(marker=s.marker, chunk_id=s.chunk_id, doc_id=s.doc_id, title=s.title, section=s.section,
                      score=s.score, used=s.used, cited=s.cited, quote=s.quote, uri=doc_uri(s.chunk_id))
               for s in view.sources]
    cost = Cost(prompt_tokens=total.prompt_tokens, completion_tokens=total.completion_tokens, flops=total.flops,
                cost_usd=total.cost_usd, model_calls=total.calls, seconds=view.wall_seconds,
                tokens_per_second=total.tokens_per_second, energy_joules=view.cost.energy_joules,
                energy_source=view.cost.energy_source)
    return AskResult(text=view.text, route=view.route, confidence=view.confidence, escalated=view.escalated,
                     escalation_reason=view.escalation_reason, sources=sources, cost=cost, thread_id=view.thread_id,
                     working=view.working)


def _readable(view: AnswerView) -> str:
    """The answer's one view as text, each cited passage named by its doc:// resource."""
    return "\n".join(view.text_lines(link=lambda source: doc_uri(source.chunk_id)))


def build_mcp(assistant: Assistant, server_settings: ServerSettings, mcp_settings: McpSettings,
              lines: Lines | None = None, writes: IndexWrites | None = None) -> FastMCP:
    """The MCP server over ``assistant``; ``lines`` (the queues) and ``writes`` (the thread that changes the index)
    are shared with the HTTP server when mounted beside it."""
    writes = writes or IndexWrites()
    lines = lines or Lines(server_settings.concurrency, server_settings.queue_size,
                           server_settings.calculator_concurrency, server_settings.calculator_queue_size)
    hosts = [*server_settings.allowed_hosts, *(f"{host}:*" for host in server_settings.allowed_hosts)]
    origins = [*server_settings.cors_origins,
               *(f"http://{host}:*" for host in ("127.0.0.1", "localhost", "[::1]"))]
    mcp = FastMCP("small-first-assistant", instructions=INSTRUCTIONS, streamable_http_path=MCP_PATH,
                  host=server_settings.host, port=server_settings.port, log_level="WARNING",
                  transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                                               allowed_hosts=hosts, allowed_origins=origins))
    question_chars = mcp_settings.max_question_chars
    read_only = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, openWorldHint=False))
    async def ask(question: Annotated[str, Field(min_length=1, max_length=question_chars,
                                                 description="The question or request, in plain language.")],
                  ctx: Context,  # type: ignore[type-arg]
                  thread_id: Annotated[str | None, Field(pattern=THREAD_ID_PATTERN, description=(
                      "Continue this conversation (letters, digits, . _ : -); omit for a one-off question, "
                      "which is not kept."))] = None,
                  escalation: Annotated[Literal["auto", "never", "always"] | None, Field(description=(
                      "auto: the larger model answers only when the small one is unsure; never; always."))] = None,
                  ) -> Annotated[CallToolResult, AskResult]:
        """Answer a question: exact arithmetic, facts from the indexed documents with citations, or a language
        model's answer; reports the route, sources, confidence, whether it escalated, and the cost."""
        question = normalize_question(question)
        if not question.strip():
            raise ToolError("the question is empty once control characters are removed; send some text")
        persisted = thread_id is not None or server_settings.keep_anonymous_threads
        try:
            slot = await lines.slot_for(question)
        except QueueFullError as error:
            raise ToolError(f"{error}: the assistant is answering other requests") from None
        generation = Generation(assistant, slot, server_settings.request_timeout_s)
        answer: Answer | None = None
        steps = 0
        working = ""
        try:
            async for event in generation.turn(question, thread_id or "", escalation=escalation, max_tokens=None,
                                               persist=persisted, client="mcp"):
                if event["type"] == "step":
                    steps += 1
                    await ctx.report_progress(steps, None, f"{event['step']}")
                elif event["type"] == "working":  # a word problem's working, one progress message per line
                    working += event["text"]
                    while "\n" in working:
                        line, working = working.split("\n", 1)
                        if line.strip():
                            steps += 1
                            await ctx.report_progress(steps, None, f"working: {line.strip()}")
                elif event["type"] == "answer":
                    answer = event["answer"]
        except TimeoutError:
            raise ToolError(f"the answer took longer than the {server_settings.request_timeout_s:g} s limit and was "
                            "stopped; ask a shorter question or raise server.request_timeout_s") from None
        except ContextOverflowError as error:
            raise ToolError(f"{error.message}; {error.hint}") from None
        finally:
            generation.release_if_unstarted()
        if answer is None:
            raise ToolError("the turn ended without an answer; please retry")
        view = answer.view(answer.thread_id if persisted else None)
        result = _ask_result(view)
        return CallToolResult(content=[TextContent(type="text", text=_readable(view))],
                              structuredContent=result.model_dump(mode="json"))

    @mcp.tool(annotations=read_only)
    async def search_documents(
            query: Annotated[str, Field(min_length=1, max_length=question_chars, description="What to look for.")],
            k: Annotated[int, Field(ge=1, le=mcp_settings.max_search_k, description="How many passages.")] = 5,
    ) -> SearchResult:
        """Find the indexed passages that best match a query (hybrid dense + BM25 search), best first."""
        retriever = assistant.retriever
        if retriever is None or not len(retriever.follow()):
            return SearchResult(passages=[])
        hits = await asyncio.to_thread(retriever.search, normalize_question(query), k)
        return SearchResult(passages=[Passage(chunk_id=hit.chunk_id, doc_id=hit.doc_id, title=hit.title,
                                              score=hit.score, text=hit.text, uri=doc_uri(hit.chunk_id))
                                      for hit in hits])

    @mcp.tool(annotations=read_only)
    async def calculate(expression: Annotated[str, Field(min_length=1, max_length=2000, description=(
            "Arithmetic or algebra, e.g. '347 * 29', 'sqrt(2) + 1/3', '15% of 240', 'solve x^2 - 4 = 0'."))],
                        ) -> Calculation:
        """Compute exactly with the calculator (SymPy behind a whitelist parser; never evaluates code)."""
        text = normalize_question(expression)
        try:
            slot = await lines.calculation_slot(text)
        except QueueFullError as error:
            raise ToolError(str(error)) from None
        try:
            result = await asyncio.to_thread(run_calculator, text)
        except CalculatorError as error:
            raise ToolError(error.message) from None
        finally:
            slot.release()
        return Calculation(expression=result.expression, exact=result.exact, decimal=result.decimal,
                           solutions=list(result.solutions))

    @mcp.tool(annotations=read_only)
    async def list_documents(
            prefix: Annotated[str, Field(max_length=500, description="Only ids starting with this.")] = "",
            offset: Annotated[int, Field(ge=0)] = 0,
            limit: Annotated[int, Field(ge=1, le=500)] = 100,
    ) -> DocumentList:
        """List the indexed documents (id, title, chunk count), a page at a time."""
        total, page = library.list_documents(assistant.retriever, prefix=prefix, offset=offset, limit=limit)
        return DocumentList(total=total, documents=[
            DocumentInfo(doc_id=item["id"], title=item["title"], chunks=item["chunks"]) for item in page])

    if mcp_settings.allow_add_documents:
        @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
        async def add_document(
                doc_id: Annotated[str, Field(max_length=200, pattern=DOC_ID_PATTERN, description=(
                    "A stable id: letters, digits, _ . : - and / between parts; no part starts with a dot."))],
                text: Annotated[str, Field(min_length=1, max_length=mcp_settings.max_document_chars)],
                title: Annotated[str, Field(max_length=300)] = "",
        ) -> DocumentList:
            """Add (or replace) one text document in the index the assistant answers from."""
            retriever = assistant.retriever
            if retriever is None:
                raise ToolError("this assistant has no document index")
            document = Document(f"mcp/{doc_id}", normalize_question(text), title, f"mcp:{doc_id}")
            try:
                report = await asyncio.wrap_future(writes.submit(
                    lambda: retriever.add_documents([document], progress=False)))
            except UploadQueueFullError as error:
                raise ToolError(error.message) from None
            if report.conflicts:
                raise ToolError(f"the id mcp/{doc_id} belongs to another source; choose another id")
            stored = retriever.follow().documents().get(document.doc_id, [])
            return DocumentList(total=1, documents=[DocumentInfo(doc_id=document.doc_id, title=title,
                                                                 chunks=len(stored))])

    @mcp.resource("doc://{chunk_id}", mime_type="text/plain",
                  description="A passage of an indexed document, by percent-encoded chunk id.")
    def passage(chunk_id: str) -> str:
        """The text of one indexed passage, headed by its document's title."""
        retriever = assistant.retriever
        wanted = unquote(chunk_id)
        record = next((chunk for chunk in (retriever.follow().chunks.values() if retriever is not None else [])
                       if chunk.chunk_id == wanted), None)
        if record is None:
            raise ResourceError(f"no passage {wanted!r}; use the uri of a source or search result")
        return f"{record.title}\n\n{record.text}" if record.title else record.text

    return mcp

