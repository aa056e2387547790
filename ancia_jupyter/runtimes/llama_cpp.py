"""GGUF models on llama.cpp (llama-cpp-python): fast on CPUs, no conversion.

The prompt is the model's own chat template (from the GGUF metadata) rendered as Hugging Face renders it
and tokenized by the model's own tokenizer, so context fitting counts exactly what the model reads. Tokens
are sampled one at a time, so a stop request lands within a token and the KV cache stays under our control.

One context serves every chat (``llama_sequences.py``): each generation runs on a sequence of its own, so
the model worker can step several in turn, and a chat's next turn reuses the prefix its sequence holds, or
the snapshot its ``PromptCache`` got when its sequence was given to another chat. A long prompt is read in
slices, each a step of its own, so the other generations and short jobs run in between.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ModelError
from . import llama_cache_file as cache_file
from .base import Chunk, PromptCache, Runtime, file_identity
from .chat_template import CHATML_TEMPLATE, compile_template, merge_system, render
from .llama_sequences import PROMPT_SLICE, SEQUENCES, Sequence, SharedContext
from .prompt_lookup import SamplingRule, draft_and_check, exact_batches
from .tool_calls import ToolCallSplitter, ToolSyntax, parse_tool_calls

_backend_ready = False


class LlamaCppRuntime(Runtime):
    name = "llama_cpp"
    reads_ahead = True

    def __init__(self) -> None:
        self.model: Any = None  # llama_cpp._internals.LlamaModel
        self.context: SharedContext | None = None
        self.path: Path | None = None
        self._template: Any = None
        self._specials: dict[str, str] = {}
        self.tool_syntax: ToolSyntax | None = None
        self.prompt_lookup = False  # draft from the text so far for every answer (the setting ``prompt_lookup``)
        self.exact_batches = False  # a batch computes what single tokens do: drafts change no bit of an answer

    def configure(self, settings: Mapping[str, Any]) -> None:
        self.prompt_lookup = settings.get("prompt_lookup") is True  # "auto": the answers that copy say so

    # -- loading ----------------------------------------------------------------------------------------

    def load(self, path: Path) -> None:
        global _backend_ready
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"There is no GGUF model file at {self.path}.")
        try:
            import llama_cpp
            from llama_cpp._internals import LlamaModel
            from llama_cpp._logger import set_verbose
            from llama_cpp._utils import suppress_stdout_stderr
        except ImportError as exc:
            raise ModelError("GGUF models need llama-cpp-python: `pip install llama-cpp-python`.") from exc
        set_verbose(False)  # llama.cpp's own log: errors only
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        try:
            with suppress_stdout_stderr(disable=False):
                self.model = LlamaModel(path_model=str(self.path), params=llama_cpp.llama_model_default_params(),
                                        verbose=False)
        except Exception as exc:  # llama.cpp logs the reason; its exception only says that it failed
            raise ModelError(f"llama.cpp could not load {self.path}: not a model it supports, or a damaged file "
                             "(download it again, or choose another quantization).") from exc
        cores = os.cpu_count() or 1
        trained = self.model.n_ctx_train()
        self.context = SharedContext(self.model, cores, SEQUENCES * (trained if trained > 0 else 32768))
        vocab = self.model.vocab
        metadata = self.model.metadata()
        file_type = metadata.get("general.file_type", "")
        self.exact_batches = exact_batches(llama_cpp.llama_print_system_info().decode(errors="replace"),
                                           int(file_type) if file_type.isdigit() else None)
        source = metadata.get("tokenizer.chat_template")
        try:
            self._template = compile_template(source or CHATML_TEMPLATE)
        except Exception as exc:
            self.unload()
            raise ModelError(f"The chat template in {self.path.name} does not parse: {exc}") from exc
        self._specials = {name: self._text(vocab, token) for name, token in
                          (("bos_token", self.model.token_bos()), ("eos_token", self.model.token_eos()))}
        self.tool_syntax = None
        if source and "tools" in source:  # a template without tools gets no tool descriptions, so no calls
            texts = {self._text(vocab, i): i for i in range(self.model.n_vocab())}
            self.tool_syntax = ToolSyntax(source, texts, lambda text, **_: self._tokenize(text))

    # -- prompt caches on disk ------------------------------------------------------------------------------

    def identity(self) -> str | None:
        return file_identity(self.name, self.path) if self.path is not None else None

    def save_cache(self, cache: PromptCache, path: Path) -> list[int] | None:
        exported = self.context.export(cache) if self.context is not None else None
        if exported is None:
            return None
        tokens, state = exported
        cache_file.write(path, tokens, state)
        return tokens

    def load_cache(self, path: Path) -> PromptCache | None:
        found = cache_file.read(path)
        if found is None:
            return None
        tokens, state = found
        return PromptCache(tokens=tokens, state=state, nbytes=len(state))

    def open_context(self, window: int) -> None:
        if self.context is not None:
            with contextlib.suppress(ModelError):  # MemoryFitError too: the first question says so
                self.context.ensure(min(window or self.trained_context, self.context.limit))

    def warm(self, cache: PromptCache) -> None:
        if self.context is not None:
            self.context.warm(cache)

    def held_tokens(self, cache: PromptCache) -> list[int]:
        held = self.context.holder(cache) if self.context is not None else None
        return list(held.tokens) if held is not None else list(cache.tokens)

    def prefill(self, cache: PromptCache, tokens: list[int]) -> int:
        if self.context is None:
            return 0
        context = self.context
        try:
            sequence, reused = context.acquire(cache, tokens, len(tokens))
        except ModelError:  # no room now: the question reads these tokens itself
            return 0
        try:
            rest = tokens[reused:]
            for at in range(0, len(rest), PROMPT_SLICE):
                context.decode(sequence, rest[at:at + PROMPT_SLICE])
        finally:
            context.release(sequence)
        return len(rest)

    @property
    def trained_context(self) -> int:
        return int(self.model.n_ctx_train()) if self.model is not None else 0

    def unload(self) -> None:
        if self.context is not None:
            self.context.clear()
        if self.model is not None:
            self.model.close()
        self.model, self.context, self.tool_syntax = None, None, None

    @staticmethod
    def _text(vocab: Any, token: int) -> str:
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", "replace") if token >= 0 else ""

    # -- prompts ----------------------------------------------------------------------------------------

    @property
    def supports_tools(self) -> bool:
        return bool(self.tool_syntax is not None and self.tool_syntax.has_tool_calling)

    def _tokenize(self, text: str) -> list[int]:
        """``text``'s tokens, control tokens written in it included. A buffer of the text's size (a token
        holds at least one byte), not llama-cpp-python's one of the trained context, zeroed at every call."""
        import llama_cpp

        data = text.encode("utf-8")
        tokens = (llama_cpp.llama_token * (len(data) + 1))()
        n = llama_cpp.llama_tokenize(self.model.vocab, data, len(data), tokens, len(data) + 1, False, True)
        if n < 0:  # never for byte-level vocabularies; others may say how much room they need
            tokens = (llama_cpp.llama_token * -n)()
            n = llama_cpp.llama_tokenize(self.model.vocab, data, len(data), tokens, -n, False, True)
        if n < 0:
            raise ModelError("llama.cpp could not tokenize the prompt.")
        return tokens[:n]

    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        tools = tools if tools and self.supports_tools else None
        try:
            text = render(self._template, messages, tools=tools, special_tokens=self._specials)
        except Exception as exc:
            if "system" not in str(exc).lower():
                raise ModelError(f"The model's chat template failed: {exc}") from exc
            text = render(self._template, merge_system(messages), tools=tools, special_tokens=self._specials)
        return self._tokenize(text)

    def text_tokens(self, text: str) -> list[int]:
        return list(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def special_token(self, text: str) -> int | None:
        if self.model is None:
            return None
        tokens = self._tokenize(text)  # control tokens are parsed from their text here
        return tokens[0] if len(tokens) == 1 and self._text(self.model.vocab, tokens[0]) == text else None

    def message_tokens(self, message: dict) -> int:
        text = self.message_text(message)
        return len(self._tokenize(text)) + 8  # + role and separators

    # -- generation -------------------------------------------------------------------------------------

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        """Stream an answer on a sequence of the shared context. Yields an empty chunk after each slice of a
        long prompt (a step: other generations run meanwhile); text chunks; then the final chunk."""
        import llama_cpp

        if images:
            raise ModelError("This model has no vision support; select a vision model to send images.")
        if not prompt:
            raise ModelError("Nothing to answer: the prompt is empty.")
        if self.model is None or self.context is None:
            raise ModelError("No GGUF model is loaded.")
        cache = cache if cache is not None else PromptCache()
        context = self.context
        window = min(int(params.get("context_window") or 0) or self.trained_context, context.limit)
        if len(prompt) >= window:
            raise ModelError(f"The prompt has {len(prompt)} tokens but the model's context holds {window}; "
                             "raise context_window with `ancia.models.set_params(context_window=...)`.")
        max_tokens = max(1, min(int(params.get("max_tokens", 256)), window - len(prompt)))
        context.ensure(window)
        sequence, reused = context.acquire(cache, prompt, len(prompt) + max_tokens)
        sampler = None
        try:
            started = time.perf_counter()
            rest = prompt[reused:]
            for at in range(0, len(rest), PROMPT_SLICE):
                if at:
                    yield Chunk()  # a step: the sampler reads the logits of the very last slice, below
                    if should_stop():
                        break
                context.decode(sequence, rest[at:at + PROMPT_SLICE])
            prompt_time = time.perf_counter() - started

            vocab = self.model.vocab
            decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span tokens
            splitter = ToolCallSplitter(self.tool_syntax) if tools and self.supports_tools else None
            generated: list[int] = []
            finish = "stopped" if should_stop() else None
            sampler = self._sampler(params)
            rule = SamplingRule(params) if float(params.get("temperature", 0.0)) > 0 else None
            started = time.perf_counter()
            # "auto" asks to draft answers that copy their prompt, where drafting changes nothing they say
            lookup = self.prompt_lookup or bool(params.get("prompt_lookup")) and self.exact_batches
            tokens = draft_and_check(SequenceDecoder(self, context, sequence, sampler), rule, list(prompt),
                                     max_tokens, lookup=lookup, exact=self.exact_batches)
            for token in tokens if finish is None else ():
                generated.append(token)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                text = decoder.decode(self._piece(vocab, token))
                text = splitter.feed(text) if splitter else text
                if text:
                    yield Chunk(text=text)
                if should_stop():
                    finish = "stopped"
                    break
                if len(generated) >= max_tokens:
                    finish = "length"
                    break
            tokens.close()
            generation_time = time.perf_counter() - started
        finally:
            if sampler is not None:
                llama_cpp.llama_sampler_free(sampler)
            context.release(sequence)
        if finish != "stopped":
            tail = decoder.decode(b"", final=True)
            tail = splitter.feed(tail) + splitter.finish() if splitter else tail
            if tail:
                yield Chunk(text=tail)
        parser = self.tool_syntax.tool_parser if splitter and self.tool_syntax else None
        calls = [call for text in splitter.tool_texts
                 for call in parse_tool_calls(parser, text, tools)] if splitter and parser else []
        if calls and finish != "stopped":
            finish = "tool_calls"
        read = len(prompt) - reused
        yield Chunk(tool_calls=calls, finish_reason=finish, prompt_tokens=len(prompt), cached_tokens=reused,
                    generation_tokens=len(generated), prompt_tps=read / prompt_time if prompt_time > 0 else 0.0,
                    generation_tps=len(generated) / generation_time if generation_time > 0 else 0.0)

    def _sampler(self, params: dict[str, Any]) -> Any:
        """A llama.cpp sampler chain for ``params``; filters apply to the raw logits, as mlx-lm does."""
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        temperature = float(params.get("temperature", 0.0))
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        top_k, top_p = int(params.get("top_k") or 0), float(params.get("top_p") or 1.0)
        if top_k > 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(top_k))
        if top_p < 1.0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
        seed = params.get("seed")
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(
            llama_cpp.LLAMA_DEFAULT_SEED if seed is None else int(seed)))
        return chain

    def _logits(self, ctx: Any, index: int) -> Any:
        import llama_cpp
        import numpy as np

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(self.model.n_vocab(),))

    def _sample(self, sampler: Any, ctx: Any, index: int = -1) -> int:
        """The next token, from the logits of the token decoded at ``index`` of the last batch in ``ctx``."""
        import llama_cpp

        return int(llama_cpp.llama_sampler_sample(sampler, ctx, index))

    @staticmethod
    def _piece(vocab: Any, token: int) -> bytes:
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        if n < 0:  # a longer piece: the size it needs comes back negated
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]


class SequenceDecoder:
    """One answer's sequence in the shared context, with its sampler, as drafting reads and checks it."""

    def __init__(self, runtime: LlamaCppRuntime, context: SharedContext, sequence: Sequence, sampler: Any) -> None:
        self.runtime, self.context, self.sequence, self.sampler = runtime, context, sequence, sampler

    def read(self, tokens: list[int], every: bool = False) -> None:
        self.context.decode(self.sequence, tokens, every)

    def drop(self, count: int) -> None:
        self.context.truncate(self.sequence, len(self.sequence.tokens) - count)

    def sample(self, index: int = -1) -> int:
        return self.runtime._sample(self.sampler, self.context.ctx.ctx, index)

    def logits(self, index: int) -> Any:
        return self.runtime._logits(self.context.ctx.ctx, index)
