"""GGUF models on llama.cpp (llama-cpp-python): fast on CPUs, no conversion.

The prompt is the model's own chat template (from the GGUF metadata) rendered as Hugging Face renders it
and tokenized by the model's own tokenizer, so context fitting counts exactly what the model reads. Tokens
are sampled one at a time against one llama context, so a stop request lands within a token and the KV
cache stays under our control.

One context serves every chat. A turn reuses the longest prefix the context already holds; when another
chat's turn is about to overwrite it, the owner's KV state is first saved into that chat's ``PromptCache``
(only then: a snapshot costs ~0.1 s per 250 tokens), and restored when its chat comes back. Snapshots hold
the sequence's KV cells only, not llama-cpp-python's per-token logits copy, so they are ~10x smaller.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime
from .chat_template import CHATML_TEMPLATE, compile_template, merge_system, render
from .mlx_text import common_prefix
from .tool_calls import ToolCallSplitter, ToolSyntax, parse_tool_calls

DEFAULT_CONTEXT = 4096  # grown when a request's context_window asks for more


class LlamaCppRuntime(Runtime):
    name = "llama_cpp"

    def __init__(self) -> None:
        self.llama: Any = None
        self.path: Path | None = None
        self._template: Any = None
        self._specials: dict[str, str] = {}
        self.tool_syntax: ToolSyntax | None = None
        self._owner: weakref.ref[PromptCache] | None = None  # the chat whose tokens the context holds

    # -- loading ----------------------------------------------------------------------------------------

    def load(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"There is no GGUF model file at {self.path}.")
        self._open(DEFAULT_CONTEXT)
        import llama_cpp

        trained = llama_cpp.llama_model_n_ctx_train(self.llama.model)
        if 0 < trained < DEFAULT_CONTEXT:
            self._open(trained)
        vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        source = self.llama.metadata.get("tokenizer.chat_template")
        try:
            self._template = compile_template(source or CHATML_TEMPLATE)
        except Exception as exc:
            self.unload()
            raise ModelError(f"The chat template in {self.path.name} does not parse: {exc}") from exc
        self._specials = {name: self._text(vocab, token) for name, token in
                          (("bos_token", self.llama.token_bos()), ("eos_token", self.llama.token_eos()))}
        self.tool_syntax = None
        if source and "tools" in source:  # a template without tools gets no tool descriptions, so no calls
            texts = {self._text(vocab, i): i for i in range(self.llama.n_vocab())}
            self.tool_syntax = ToolSyntax(source, texts, lambda text, **_: self._tokenize(text))

    def _open(self, n_ctx: int) -> None:
        """(Re)create the model and its context; the context's tokens are gone, saved snapshots stay valid."""
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelError("GGUF models need llama-cpp-python: `pip install llama-cpp-python`.") from exc
        if self.llama is not None:
            self.llama.close()
        self.llama, self._owner = None, None
        cores = os.cpu_count() or 1
        try:
            self.llama = Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=cores, n_threads_batch=cores,
                               verbose=False)
        except Exception as exc:  # llama.cpp logs the reason; its exception only says that it failed
            raise ModelError(f"llama.cpp could not load {self.path}: not a model it supports, or a damaged file "
                             "(download it again, or choose another quantization).") from exc

    def unload(self) -> None:
        if self.llama is not None:
            self.llama.close()
        self.llama, self._owner, self.tool_syntax = None, None, None

    @staticmethod
    def _text(vocab: Any, token: int) -> str:
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", "replace") if token >= 0 else ""

    # -- prompts ----------------------------------------------------------------------------------------

    @property
    def supports_tools(self) -> bool:
        return bool(self.tool_syntax is not None and self.tool_syntax.has_tool_calling)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        tools = tools if tools and self.supports_tools else None
        try:
            text = render(self._template, messages, tools=tools, special_tokens=self._specials)
        except Exception as exc:
            if "system" not in str(exc).lower():
                raise ModelError(f"The model's chat template failed: {exc}") from exc
            text = render(self._template, merge_system(messages), tools=tools, special_tokens=self._specials)
        return self._tokenize(text)

    def message_tokens(self, message: dict) -> int:
        text = self.message_text(message)
        return len(self._tokenize(text)) + 8  # + role and separators

    # -- generation -------------------------------------------------------------------------------------

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        import llama_cpp

        if images:
            raise ModelError("This model has no vision support; select a vision model to send images.")
        if not prompt:
            raise ModelError("Nothing to answer: the prompt is empty.")
        cache = cache if cache is not None else PromptCache()
        window = int(params.get("context_window") or 0)
        if window > self.llama.n_ctx():
            self._save_owner()
            self._open(window)
        n_ctx = self.llama.n_ctx()
        if len(prompt) >= n_ctx:
            raise ModelError(f"The prompt has {len(prompt)} tokens but the model's context holds {n_ctx}; "
                             "raise context_window with `ancia.models.set_params(context_window=...)`.")
        max_tokens = min(int(params.get("max_tokens", 256)), n_ctx - len(prompt))
        reused = self._take_context(prompt, cache)

        started = time.perf_counter()
        self.llama.n_tokens = reused  # eval drops the KV cells from here on
        self.llama.eval(prompt[reused:])
        prompt_time = time.perf_counter() - started

        vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span tokens
        splitter = ToolCallSplitter(self.tool_syntax) if tools and self.supports_tools else None
        generated: list[int] = []
        finish = None
        sampler = self._sampler(params)
        started = time.perf_counter()
        try:
            while True:
                token = self._sample(sampler)
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
                self.llama.eval([token])
        finally:
            llama_cpp.llama_sampler_free(sampler)
        generation_time = time.perf_counter() - started
        if finish != "stopped":
            rest = decoder.decode(b"", final=True)
            rest = splitter.feed(rest) + splitter.finish() if splitter else rest
            if rest:
                yield Chunk(text=rest)
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

    def _sample(self, sampler: Any) -> int:
        """The next token, from the logits of the last token evaluated."""
        import llama_cpp

        return int(llama_cpp.llama_sampler_sample(sampler, self.llama.ctx, -1))

    @staticmethod
    def _piece(vocab: Any, token: int) -> bytes:
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        if n < 0:  # a longer piece: the size it needs comes back negated
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]

    # -- per-chat KV state ------------------------------------------------------------------------------

    def _live(self) -> list[int]:
        return self.llama.input_ids[: self.llama.n_tokens].tolist()

    def _take_context(self, prompt: list[int], cache: PromptCache) -> int:
        """Make the context hold the longest prefix of ``prompt`` on hand; how many tokens it holds."""
        reused = common_prefix(self._live(), prompt)
        owner = self._owner() if self._owner is not None else None
        if owner is not cache:
            self._save_owner()
            if cache.state is not None and common_prefix(cache.tokens, prompt) > reused:
                reused = self._restore(cache, prompt)
            self._owner = weakref.ref(cache)
        return min(reused, len(prompt) - 1)  # the model must read at least one token to answer

    def _save_owner(self) -> None:
        """Snapshot the context into the chat that owns it, unless that chat is gone or already saved."""
        import llama_cpp

        owner = self._owner() if self._owner is not None else None
        live = self._live()
        if owner is None or not live or (owner.state is not None and owner.tokens == live):
            return
        ctx = self.llama.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        owner.state, owner.tokens, owner.nbytes = ctypes.string_at(buf, written), live, written

    def _restore(self, cache: PromptCache, prompt: list[int]) -> int:
        """Load ``cache``'s snapshot into the context; how much of ``prompt`` it holds (0 if it would not load).

        llama.cpp replaces the sequence's cells, or on failure leaves the sequence empty."""
        import llama_cpp

        state = cache.state
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        loaded = llama_cpp.llama_state_seq_set_data(self.llama.ctx, buf, len(state), 0) == len(state)
        tokens = cache.tokens if loaded else []
        self.llama.input_ids[: len(tokens)] = tokens
        self.llama.n_tokens = len(tokens)
        cache.state, cache.tokens, cache.nbytes = None, [], 0  # the context holds it now; saved again on leaving
        return common_prefix(tokens, prompt)
