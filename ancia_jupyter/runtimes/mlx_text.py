"""Text models on MLX through mlx-lm: chat templates, sampling, prompt-cache reuse, tool-call parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime, common_prefix, file_identity
from .chat_template import merge_system as _merge_system
from .mlx_lookup import can_draft, greedy_with_drafts
from .tool_calls import ToolCallSplitter, parse_tool_calls

PREFILL_STEP = 512  # prompt tokens read per forward pass when reading ahead (mlx-lm's own prefill step)


class MLXTextRuntime(Runtime):
    name = "mlx_lm"
    reads_ahead = True

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.path: Path | None = None
        self.prompt_lookup = False  # draft greedy answers from the text so far (the setting, when True)

    def configure(self, settings: Mapping[str, Any]) -> None:
        self.prompt_lookup = settings.get("prompt_lookup") is True  # "auto": only where batches are exact

    def load(self, path: Path) -> None:
        from mlx_lm import load

        self.path = Path(path)
        try:
            self.model, self.tokenizer = load(str(path))[:2]  # (model, tokenizer), and the config if asked for
        except Exception as exc:
            raise ModelError(f"Could not load the MLX model in {path}: {exc}") from exc

    # -- prompt caches on disk (mlx-lm's prompt-cache files) ------------------------------------------------

    cache_suffix = ".safetensors"

    def identity(self) -> str | None:
        return file_identity(self.name, self.path) if self.path is not None else None

    def save_cache(self, cache: PromptCache, path: Path) -> list[int] | None:
        from mlx_lm.models.cache import save_prompt_cache

        if cache.state is None or not cache.tokens:
            return None
        save_prompt_cache(str(path), cache.state, {"tokens": json.dumps(cache.tokens)})
        return list(cache.tokens)

    def load_cache(self, path: Path) -> PromptCache | None:
        from mlx_lm.models.cache import load_prompt_cache

        try:
            state, metadata = load_prompt_cache(str(path), return_metadata=True)
            tokens = [int(t) for t in json.loads(metadata["tokens"])]
        except Exception:  # not a cache this model reads: read the prompt afresh
            return None
        return PromptCache(tokens=tokens, state=state, nbytes=sum(getattr(c, "nbytes", 0) for c in state))

    def unload(self) -> None:
        self.model = self.tokenizer = None
        import gc

        import mlx.core as mx

        gc.collect()
        mx.clear_cache()

    @property
    def supports_tools(self) -> bool:
        return bool(self.tokenizer is not None and self.tokenizer.has_tool_calling)

    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        kwargs: dict[str, Any] = {"add_generation_prompt": True, "tokenize": True}
        if tools and self.supports_tools:
            kwargs["tools"] = tools
        try:
            tokens = self.tokenizer.apply_chat_template(messages, **kwargs)
        except Exception as exc:
            if "system" not in str(exc).lower():
                raise ModelError(f"The model's chat template failed: {exc}") from exc
            tokens = self.tokenizer.apply_chat_template(_merge_system(messages), **kwargs)
        if isinstance(tokens, dict):  # some tokenizers return a BatchEncoding
            tokens = tokens["input_ids"]
        return list(tokens)

    def text_tokens(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def special_token(self, text: str) -> int | None:
        if self.tokenizer is None:
            return None
        tokens = list(self.tokenizer.encode(text, add_special_tokens=False))  # added tokens are parsed whole
        return tokens[0] if len(tokens) == 1 and self.tokenizer.decode(tokens) == text else None

    def message_tokens(self, message: dict) -> int:
        text = self.message_text(message)
        return len(self.tokenizer.encode(text, add_special_tokens=False)) + 8  # + role and separators

    def prefill(self, cache: PromptCache, tokens: list[int]) -> int:
        import mlx.core as mx
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        if self.model is None or cache.state is None or not cache.tokens:
            return 0
        reused = common_prefix(cache.tokens, tokens)
        if reused < len(cache.tokens):
            if not can_trim_prompt_cache(cache.state):
                return 0
            trim_prompt_cache(cache.state, len(cache.tokens) - reused)
            cache.tokens = cache.tokens[:reused]
        rest = tokens[reused:]
        for at in range(0, len(rest), PREFILL_STEP):
            self.model(mx.array(rest[at:at + PREFILL_STEP])[None], cache=cache.state)
            mx.eval([c.state for c in cache.state])
            cache.tokens = list(tokens[:reused + min(at + PREFILL_STEP, len(rest))])
        cache.nbytes = sum(getattr(c, "nbytes", 0) for c in cache.state)
        mx.clear_cache()
        return len(rest)

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        import mlx.core as mx
        from mlx_lm.generate import stream_generate
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache
        from mlx_lm.sample_utils import make_sampler

        if images:
            raise ModelError("This model has no vision support; select a vision model to send images.")
        cache = cache if cache is not None else PromptCache()
        reused = common_prefix(cache.tokens, prompt)
        reused = min(reused, len(prompt) - 1)  # the model must see at least one new token
        if cache.state is None or (reused < len(cache.tokens) and not can_trim_prompt_cache(cache.state)):
            cache.state, cache.tokens, reused = make_prompt_cache(self.model), [], 0
        elif reused < len(cache.tokens):
            trim_prompt_cache(cache.state, len(cache.tokens) - reused)
        cache.tokens = list(prompt[:reused])

        temperature = float(params.get("temperature", 0.0))
        sampler = make_sampler(temp=temperature, top_p=float(params.get("top_p", 1.0)) if temperature else 1.0,
                               top_k=int(params.get("top_k", 0)) if temperature else 0)
        use_tools = bool(tools) and self.supports_tools
        splitter = ToolCallSplitter(self.tokenizer) if use_tools else None
        generated: list[int] = []
        last = None
        finish = None
        max_tokens = int(params.get("max_tokens", 256))
        if self.prompt_lookup and temperature <= 0 and can_draft(cache.state):
            responses = self._drafted(prompt, reused, max_tokens, cache.state)
        else:
            responses = stream_generate(self.model, self.tokenizer, prompt[reused:], max_tokens=max_tokens,
                                        sampler=sampler, prompt_cache=cache.state)
        for response in responses:
            last = response
            generated.append(response.token)
            text = splitter.feed(response.text) if splitter else response.text
            if text:
                yield Chunk(text=text)
            if should_stop():
                finish = "stopped"
                break
        if splitter is not None and finish is None and (rest := splitter.finish()):
            yield Chunk(text=rest)
        tool_texts = splitter.tool_texts if splitter else []
        offset = cache.state[0].offset if cache.state and hasattr(cache.state[0], "offset") else 0
        if offset > len(prompt) + len(generated):  # a draft kept past the end of the answer
            trim_prompt_cache(cache.state, offset - len(prompt) - len(generated))
        cache.tokens = (list(prompt) + generated)[:offset]
        cache.nbytes = sum(getattr(c, "nbytes", 0) for c in cache.state)
        calls = [call for text in tool_texts for call in parse_tool_calls(self.tokenizer.tool_parser, text, tools)]
        if finish is None:
            finish = "tool_calls" if calls else (last.finish_reason if last else "stop")
        mx.clear_cache()
        yield Chunk(
            tool_calls=calls, finish_reason=finish, prompt_tokens=len(prompt), cached_tokens=reused,
            generation_tokens=len(generated), prompt_tps=last.prompt_tps if last else 0.0,
            generation_tps=last.generation_tps if last else 0.0,
        )

    def _drafted(self, prompt: list[int], reused: int, max_tokens: int, state: list[Any]) -> Iterator[Any]:
        """What ``stream_generate`` yields, greedy, with drafts from the prompt checked a pass at a time."""
        eos = self.tokenizer.eos_token_ids
        detokenizer = self.tokenizer.detokenizer  # a copy of its own
        started = time.perf_counter()
        tokens = greedy_with_drafts(self.model, state, list(prompt[reused:]), list(prompt), max_tokens)
        prompt_tps, begun, n, token = 0.0, started, 0, None

        def response(finish: str | None) -> SimpleNamespace:
            elapsed = time.perf_counter() - begun
            return SimpleNamespace(text=detokenizer.last_segment, token=token, finish_reason=finish,
                                   prompt_tps=prompt_tps, generation_tps=n / elapsed if elapsed > 0 else 0.0)

        try:
            for n, token in enumerate(tokens, 1):
                if n == 1:
                    begun = time.perf_counter()
                    prompt_tps = (len(prompt) - reused) / max(begun - started, 1e-9)
                if token in eos:
                    break
                detokenizer.add_token(token)
                if n == max_tokens:
                    break
                yield response(None)
        finally:
            tokens.close()
        detokenizer.finalize()
        yield response("stop" if token in eos else "length")
