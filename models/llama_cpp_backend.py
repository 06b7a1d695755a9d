"""GGUF models through llama-cpp-python, behind the ``ChatModel`` interface."""

from __future__ import annotations

import contextlib
import ctypes
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.base import (
    Completion,
    FinishReason,
    Message,
    StreamItem,
    TextDelta,
    Tool,
    Usage,
    collect_stream,
    parse_tool_calls,
    tool_names,
)
from models.errors import ContextOverflowError, ModelError
from models.probabilities import TokenProbabilityRecorder
from models.prompt_cache import PromptStates, SavedState, common_prefix, evaluated_prompt_tokens


class LlamaCppModel:
    """A local GGUF model. One llama.cpp context serves one completion at a time: callers queue on a lock.

    The chat template comes from the GGUF file and renders in llama-cpp-python's sandboxed Jinja
    environment. Every call returns token probabilities, read from the context's logits as each token is sampled
    (no ``logits_all``, no logits processor). The evaluated
    states of recent kinds of prompt are kept (``prompt_cache_entries``) and restored when routes interleave, and
    every call reports how many prompt tokens were really evaluated (``Usage.evaluated_prompt_tokens``). With
    ``reuse_prompts`` off every prompt is evaluated from an empty context: what a call computes then does not depend
    on what the model was asked before (a prompt evaluated in other batches gives slightly other logits).
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        parameters: int,
        price_per_million_tokens: float = 0.0,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_batch: int = 512,
        seed: int = 0,
        prompt_cache_entries: int = 4,
        reuse_prompts: bool = True,
    ) -> None:
        import llama_cpp  # deferred: importing llama_cpp loads the shared library

        self.name = name
        self.path = path
        self.parameters = parameters
        self.price_per_million_tokens = price_per_million_tokens
        self._llama_cpp: Any = llama_cpp  # typed as Any: its TypedDict stubs do not describe streaming
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._formatter: Any = None
        started = time.perf_counter()
        try:
            self._llama: Any = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=n_batch,
                seed=seed,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"llama.cpp could not load {path}: {error}",
                             "check the file is a chat GGUF model (`assistant models list`)") from error
        self.load_seconds = time.perf_counter() - started
        self.n_ctx = n_ctx
        self.reuse_prompts = reuse_prompts
        self.prompt_states = PromptStates(prompt_cache_entries if reuse_prompts else 0)
        self._evaluated: int | None = None
        self._recorder: TokenProbabilityRecorder | None = None
        self._n_vocab = int(self._llama.n_vocab())
        generate = self._llama.generate

        def prepared_generate(tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            # llama-cpp-python calls this with the rendered prompt's tokens, inside our lock.
            tokens = list(tokens)
            self._prepare(tokens)
            return self._observed(generate(tokens, *args, **kwargs), len(tokens))

        self._llama.generate = prepared_generate  # type: ignore[method-assign]

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (for benchmarks; hold :attr:`lock` while using it)."""
        return self._llama

    @property
    def lock(self) -> threading.Lock:
        """The lock serialising access to the llama.cpp context."""
        return self._lock

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """Answer the conversation (see ``ChatModel.chat``)."""
        return collect_stream(self.stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                          json_schema=json_schema, tools=tools))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Iterator[StreamItem]:
        """Stream text deltas, then the ``Completion``. Closing the generator stops generation.

        With ``tools`` the GGUF's chat template lists them and the reply's ``<tool_call>`` blocks become
        ``tool_calls``; the text is then sent as one delta at the end (a call is never streamed as text).
        """
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        grammar = self._grammar(json_schema) if json_schema is not None else None
        continued = bool(messages) and messages[-1]["role"] == "assistant" and not tools
        prompt = self._continuation_prompt(messages) if continued else ""
        with self._lock:
            self._evaluated = None
            recorder = self._recorder = TokenProbabilityRecorder(self._is_end_of_generation)
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            if continued:
                chunks = self._llama.create_completion(prompt, max_tokens=max_tokens, temperature=temperature,
                                                       stop=list(stop or []), stream=True, grammar=grammar)
            else:
                chunks = self._llama.create_chat_completion(
                    messages=[_template_message(message) for message in messages],
                    tools=list(tools) if tools else None,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=list(stop or []),
                    stream=True,
                    grammar=grammar,
                )
            pieces: list[str] = []
            finish_reason: FinishReason = "stop"
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    text = (choice.get("text") if continued else choice["delta"].get("content")) or ""
                    if text:
                        pieces.append(text)
                        if not tools:
                            yield TextDelta(text)
                    if choice.get("finish_reason") == "length":
                        finish_reason = "length"
            except ValueError as error:
                if "context window" not in str(error):
                    raise
                raise ContextOverflowError(
                    f"the prompt does not fit the {self.name} model's context: {error}",
                    "shorten the message or the conversation, or raise llama.n_ctx / models.<tier>.n_ctx") from error
            finally:
                chunks.close()
                self._release_sampler()
                recorder.release()
                self._recorder = None
                self._save_state()
            completion_tokens = recorder.completion_tokens(finish_reason)
            usage = Usage(
                model=self.name,
                prompt_tokens=recorder.prompt_tokens or 0,
                completion_tokens=completion_tokens,
                wall_seconds=time.perf_counter() - wall_start,
                cpu_seconds=time.process_time() - cpu_start,
                parameters=self.parameters,
                price_per_million_tokens=self.price_per_million_tokens,
                evaluated_prompt_tokens=self._evaluated,
            )
            text, calls = parse_tool_calls("".join(pieces), tool_names(tools)) if tools else ("".join(pieces), [])
            if tools and text:
                yield TextDelta(text)
            yield Completion(text=text, finish_reason="tool_calls" if calls else finish_reason, usage=usage,
                             token_probabilities=recorder.probabilities(completion_tokens), tool_calls=calls)

    def _continuation_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt under which the model goes on writing the final (assistant) message: the conversation
        rendered by the GGUF's own chat template, cut where that message's text would begin, then its text."""
        if self._formatter is None:
            template = self._llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError(f"the {self.name} model's GGUF has no chat template to continue a reply with",
                                 "use a chat GGUF model (`assistant models list`)")
            model = self._llama._model
            self._formatter = self._llama_cpp.llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=model.token_get_text(model.token_eos()),
                bos_token=model.token_get_text(model.token_bos()))
        rendered = self._formatter(messages=[*(_template_message(message) for message in messages[:-1]),
                                             {"role": "assistant", "content": _CUT}]).prompt
        return str(rendered[: rendered.index(_CUT)]) + messages[-1]["content"]

    def _observed(self, tokens: Iterator[int], prompt_tokens: int) -> Iterator[int]:
        """``generate``'s tokens, each recorded with the logits it was sampled from (still in the context: the
        next evaluation runs only when the generator resumes)."""
        recorder = self._recorder
        if recorder is not None:
            recorder.prompt_tokens = prompt_tokens
        context = self._llama._ctx
        try:
            for token in tokens:
                if recorder is not None:
                    logits = np.ctypeslib.as_array(context.get_logits_ith(-1), shape=(self._n_vocab,))
                    recorder.observe(int(token), logits)
                yield token
        finally:
            close = getattr(tokens, "close", None)
            if close is not None:
                close()

    def _prepare(self, prompt: list[int]) -> None:
        """Restore the saved state sharing most of ``prompt`` when it shares more than the context, and note how
        many prompt tokens llama-cpp-python will evaluate."""
        llama = self._llama
        if not self.reuse_prompts:
            llama.reset()
        context = llama.input_ids[: llama.n_tokens]
        saved = self.prompt_states.best(prompt, common_prefix(context, prompt)) if len(self.prompt_states) else None
        if saved is not None:
            context = saved.tokens if self._restore(saved) else context[:0]
        self._evaluated = evaluated_prompt_tokens(context, prompt, not getattr(llama, "_requires_eval", True))

    def _restore(self, saved: SavedState) -> bool:
        """Load a saved sequence state into the context; False (and an empty context) if llama.cpp refuses it."""
        llama, size = self._llama, len(saved.state)
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        buffer = (ctypes.c_uint8 * size).from_buffer_copy(saved.state)
        if self._llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, size, 0) != size:
            llama.reset()
            return False
        llama.input_ids[: len(saved.tokens)] = saved.tokens
        llama.n_tokens = len(saved.tokens)
        llama._requires_eval = True
        return True

    def _save_state(self) -> None:
        """Keep the context's state for this kind of prompt (about 1 ms; skipped when the cache is off)."""
        llama = self._llama
        if self.prompt_states.capacity <= 0 or llama.n_tokens <= 0:
            return
        size = self._llama_cpp.llama_state_seq_get_size(llama._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = self._llama_cpp.llama_state_seq_get_data(llama._ctx.ctx, buffer, size, 0)
        self.prompt_states.store(llama.input_ids[: llama.n_tokens], bytes(buffer)[:written])

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model's vocabulary."""
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=True))

    def _release_sampler(self) -> None:
        # llama-cpp-python keeps the last generation's sampler chain, and a replaced chain sits in a reference cycle
        # until a full garbage collection: under load that held native memory and the processor's buffers for
        # hundreds of calls (RSS +45 MB per 100 calls from 16 threads; flat with this). Free it now.
        sampler = getattr(self._llama, "_sampler", None)
        if sampler is not None:
            sampler.close()
            self._llama._sampler = None

    def _is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._llama._model.vocab, token))

    def _grammar(self, schema: dict[str, Any]) -> Any:
        # The key keeps the schema's property order: the grammar makes the model write properties in that order.
        key = json.dumps(schema)
        if key not in self._grammars:
            try:
                self._grammars[key] = self._llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, RuntimeError) as error:
                raise ModelError(f"JSON schema cannot be turned into a grammar: {error}",
                                 "simplify the schema (objects, arrays, enums, strings, numbers)") from error
        return self._grammars[key]


_CUT = "\x00continue-here\x00"
"""Marks where a continued assistant message's text goes in the rendered template."""


def _template_message(message: Message) -> dict[str, Any]:
    """A message as chat templates expect it: a tool call's arguments as an object, not OpenAI's JSON text."""
    rendered: dict[str, Any] = dict(message)
    if message.get("tool_calls"):
        calls = []
        for call in message.get("tool_calls", []):
            function = dict(call.get("function", {}))
            if isinstance(function.get("arguments"), str):
                with contextlib.suppress(ValueError):
                    function["arguments"] = json.loads(function["arguments"])
            calls.append({**call, "function": function})
        rendered["tool_calls"] = calls
    return rendered
