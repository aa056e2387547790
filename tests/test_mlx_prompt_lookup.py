"""Prompt-lookup decoding on MLX (the setting ``prompt_lookup=True``): a greedy answer is the one plain decoding
writes, in fewer passes over the model when it copies its prompt, and the chat's prompt cache holds exactly the
tokens of the prompt and the answer afterwards, wherever the answer ends."""

from __future__ import annotations

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.runtimes.base import PromptCache
from ancia_jupyter.runtimes.mlx_text import MLXTextRuntime

GREEDY = {"temperature": 0.0, "top_p": 1.0, "top_k": 0}
TEXT = list(range(300, 360))  # tokens of the tiny vocabulary that the chat template never uses


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from tiny_model import build_tiny_model

    loaded = MLXTextRuntime()
    loaded.load(build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama"))
    yield loaded
    loaded.unload()


@pytest.fixture
def passes(runtime, monkeypatch) -> list[int]:
    """The number of tokens of each pass over the model from now on."""
    sizes: list[int] = []
    model_type = type(runtime.model)
    real = model_type.__call__
    monkeypatch.setattr(model_type, "__call__",
                        lambda self, inputs, *args, **kwargs: (sizes.append(inputs.shape[1]),
                                                               real(self, inputs, *args, **kwargs))[1])
    return sizes


@pytest.fixture
def copier(runtime, monkeypatch) -> list[int]:
    """The tiny model made to copy ``TEXT`` and end its turn: after the assistant's header its first token,
    after each of its tokens the next, after the last the end of the turn. A prompt holding ``TEXT`` then gives
    drafts that are kept, up to the end of the turn and past it (the prompt's own turn goes on after TEXT)."""
    import mlx.core as mx

    newline, end = runtime.text_tokens("\n")[0], sorted(runtime.tokenizer.eos_token_ids)[0]
    follows = {newline: TEXT[0], **dict(zip(TEXT, [*TEXT[1:], end], strict=True))}
    model_type = type(runtime.model)
    real = model_type.__call__

    def copying(self, inputs, *args, **kwargs):
        logits = real(self, inputs, *args, **kwargs)
        vocab = logits.shape[-1]
        rows = [mx.zeros((vocab,)).at[follows[t]].add(1000.0) if t in follows else mx.zeros((vocab,))
                for t in inputs[0].tolist()]
        return logits + mx.stack(rows)[None].astype(logits.dtype)

    monkeypatch.setattr(model_type, "__call__", copying)
    return [*TEXT, end]


def copy_prompt(runtime) -> list[int]:
    """A user turn asking to copy TEXT, and the assistant's header."""
    tokens = runtime.prompt_tokens([{"role": "user", "content": "Copy this:"}])
    end = tokens.index(sorted(runtime.tokenizer.eos_token_ids)[0])
    return [*tokens[:end], *TEXT, *tokens[end:]]


def answer(runtime, prompt, lookup: bool, cache: PromptCache | None = None, should_stop=lambda: False,
           **params):
    runtime.prompt_lookup = lookup
    chunks = list(runtime.stream(prompt, {**GREEDY, "max_tokens": 120, **params},
                                 cache=cache if cache is not None else PromptCache(), should_stop=should_stop))
    return "".join(c.text for c in chunks), chunks[-1]


def test_greedy_answers_are_the_same_with_and_without_drafts(runtime):
    """The model left to its own choices, on prompts full of repeats."""
    for text in ("one two three four " * 20, "def f(x):\n    return x\n" * 10):
        prompt = runtime.prompt_tokens([{"role": "user", "content": text}])
        plain, plain_end = answer(runtime, prompt, False)
        drafted, drafted_end = answer(runtime, prompt, True)
        assert (drafted, drafted_end.generation_tokens, drafted_end.finish_reason) == (
            plain, plain_end.generation_tokens, plain_end.finish_reason)


def test_an_answer_that_copies_its_prompt_is_written_several_tokens_a_pass(runtime, copier, passes):
    prompt = copy_prompt(runtime)
    plain, plain_end = answer(runtime, prompt, False)
    plain_passes = len(passes)
    passes.clear()
    cache = PromptCache()
    drafted, drafted_end = answer(runtime, prompt, True, cache)
    assert drafted == plain == runtime.tokenizer.decode(TEXT)
    assert drafted_end.finish_reason == plain_end.finish_reason == "stop"
    assert drafted_end.generation_tokens == plain_end.generation_tokens == len(copier)
    assert len(passes) < plain_passes / 3 and max(passes[2:]) > 1
    # the last draft went on past the end of the turn, as the prompt does: the cache holds no more than was said
    assert cache.state[0].offset == len(cache.tokens) and cache.tokens == [*prompt, *copier][:len(cache.tokens)]
    assert len(cache.tokens) >= len(prompt) + len(TEXT)


@pytest.mark.parametrize("stop_at", [1, 2, 5, 13, 40])
def test_the_cache_holds_just_the_prompt_and_the_answer_wherever_the_answer_stops(runtime, copier, stop_at):
    """A draft is read ahead of what is written: when the answer ends inside it (a Stop, its token limit),
    the cache is cut back to what was written."""
    prompt = copy_prompt(runtime)
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= stop_at

    stopped = PromptCache()
    _, end = answer(runtime, prompt, True, stopped, should_stop=stop)
    assert end.finish_reason == "stopped" and end.generation_tokens == stop_at
    limited = PromptCache()
    _, end = answer(runtime, prompt, True, limited, max_tokens=stop_at)
    assert end.finish_reason == "length" and end.generation_tokens == stop_at
    for cache in (stopped, limited):
        assert cache.state[0].offset == len(cache.tokens) >= len(prompt) + stop_at - 1
        assert cache.tokens == [*prompt, *copier][:len(cache.tokens)]


def test_sampled_answers_and_the_default_setting_are_left_to_mlx_lm(runtime, copier, passes):
    """Drafting on MLX checks greedy answers only, and only where asked for everywhere: its batches round
    otherwise than single tokens, so "auto" (a fix, code for a cell) decodes plainly."""
    prompt = copy_prompt(runtime)
    answer(runtime, prompt, True, temperature=0.7, seed=1)
    assert max(passes[1:]) == 1
    passes.clear()
    answer(runtime, prompt, False, prompt_lookup=True)  # what "auto" asks for an answer that copies
    assert max(passes[1:]) == 1


def test_the_setting_reaches_a_chat_on_an_mlx_model(tiny, monkeypatch):
    from ancia_jupyter.runtimes import mlx_text

    drafted: list[int] = []
    real = mlx_text.greedy_with_drafts
    monkeypatch.setattr(mlx_text, "greedy_with_drafts", lambda *args: (drafted.append(1), real(*args))[1])
    first = ancia.chat("Hello there")
    ancia.settings.update(prompt_lookup=True)
    second = ancia.chat("Hello there")
    assert drafted == [1] and second.text == first.text


@pytest.mark.real_model
def test_the_real_default_model_on_mlx_copies_code_the_same_in_far_fewer_passes(smollm2, monkeypatch):
    from ancia_jupyter.runtimes.mlx_lookup import CacheDecoder

    ancia.models.set_runtime(smollm2, "mlx")
    code = "\n".join(f"def scale_{i}(values):\n    return [v * {i} for v in values]" for i in range(6))
    question = f"Repeat this code exactly, in a python code block:\n\n{code}"
    plain = ancia.chat(question, max_tokens=40, tools=False)
    sizes: list[int] = []
    real = CacheDecoder.read
    monkeypatch.setattr(CacheDecoder, "read", lambda self, tokens, every=False: (sizes.append(len(tokens)),
                                                                                  real(self, tokens, every))[1])
    ancia.settings.update(prompt_lookup=True)
    drafted = ancia.chat(question, max_tokens=40, tools=False)
    assert drafted.text == plain.text and "def scale_1" in drafted.text
    assert drafted.usage["completion_tokens"] == plain.usage["completion_tokens"] == 40
    assert len(sizes) < 40 / 2 and max(sizes) > 4
