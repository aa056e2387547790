"""Scripted output for the real runtimes: make a model say given texts, never end, or take its time.

    with scripted(says("It is 69.8 F.")):         # the next answer, word for word; later ones end at once
    with scripted(says(call, "Done.")):           # tool-call rounds: one text per generation
    with scripted(endless(), slow(0.01)):         # answers that run to max_tokens, 10 ms a token

Pieces combine: each one is asked, token by token, for a token to write or tokens to leave out (a text said
wins over ``endless``). They act on every generation of the mlx-lm, mlx-vlm and llama.cpp runtimes, through
what those runtimes call: mlx-lm's and mlx-vlm's ``stream_generate`` (given one more logits processor) and
the llama.cpp runtime's sampler. Nothing in the runtimes knows about it.

A kernel cell or a child process cannot hold a ``with`` open: ``install`` does the same until the function it
returns is called, and ``child_env`` puts this folder on a child's PYTHONPATH so that it can import this module.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent

Step = tuple[int | None, tuple[int, ...]]  # the token to write (None: the model's choice), tokens left out


@dataclass(frozen=True)
class Vocab:
    """What a piece needs of a tokenizer: a text's tokens, and the tokens that end a generation."""

    encode: Callable[[str], list[int]]
    ends: tuple[int, ...]


Turn = Callable[[], Step]  # one generation: called once per token
Piece = Callable[[Vocab], Turn]  # called once per generation


def says(*texts: str, then: str | None = "") -> Piece:
    """Each generation writes the next of ``texts`` and ends; later ones write ``then`` (``""``: end at once;
    ``None``: the model's own tokens)."""
    rounds = iter(texts)

    def turn(vocab: Vocab) -> Turn:
        text = next(rounds, then)
        if text is None:
            return lambda: (None, ())
        tokens = iter(vocab.encode(text))
        return lambda: (next(tokens, vocab.ends[0]), ())

    return turn


def endless() -> Piece:
    """The model may not end a generation: it runs to max_tokens or until it is stopped."""
    return lambda vocab: lambda: (None, vocab.ends)


def slow(seconds: float) -> Piece:
    """Every token takes ``seconds`` more."""

    def turn(vocab: Vocab) -> Turn:
        def step() -> Step:
            time.sleep(seconds)
            return None, ()

        return step

    return turn


def _turn(pieces: tuple[Piece, ...], vocab: Vocab) -> Turn:
    turns = [piece(vocab) for piece in pieces]

    def step() -> Step:
        steps = [turn() for turn in turns]
        token = next((token for token, _ in steps if token is not None), None)
        return token, tuple(sorted({t for _, left_out in steps for t in left_out}))

    return step


# -- where the runtimes are reached ---------------------------------------------------------------------


def _logits_processor(turn: Turn) -> Callable[[Any, Any], Any]:
    import mlx.core as mx

    def processor(tokens: Any, logits: Any) -> Any:
        token, left_out = turn()
        if token is not None:
            mask = mx.full(logits.shape, -1e9, dtype=logits.dtype)
            mask[..., token] = 0.0
            return logits + mask
        if left_out:
            logits[..., list(left_out)] = -1e9
        return logits

    return processor


def _mlx_lm_vocab(tokenizer: Any) -> Vocab:
    return Vocab(lambda text: tokenizer.encode(text, add_special_tokens=False), tuple(sorted(tokenizer.eos_token_ids)))


def _mlx_vlm_vocab(processor: Any) -> Vocab:
    tokenizer = processor.tokenizer if hasattr(processor, "tokenizer") else processor
    criteria = getattr(tokenizer, "stopping_criteria", None)
    ends = criteria.eos_token_ids if criteria is not None else [tokenizer.eos_token_id]
    return Vocab(lambda text: tokenizer.encode(text, add_special_tokens=False), tuple(sorted(ends)))


def _with_processor(stream_generate: Callable, vocab: Callable[[Any], Vocab], pieces: tuple[Piece, ...]) -> Callable:
    """mlx-lm's or mlx-vlm's ``stream_generate``, with one more logits processor: a new turn per call."""

    def scripted_stream_generate(model: Any, tokenizer: Any, *args: Any, **kwargs: Any) -> Any:
        processors = [*(kwargs.get("logits_processors") or []), _logits_processor(_turn(pieces, vocab(tokenizer)))]
        return stream_generate(model, tokenizer, *args, **{**kwargs, "logits_processors": processors})

    return scripted_stream_generate


def _llama_cpp(pieces: tuple[Piece, ...]) -> tuple[Callable, Callable]:
    """Wrappers of the llama.cpp runtime's ``_sampler`` (once per generation: a new turn, kept by its sampler
    chain, so generations stepped in turn each follow their own script) and ``_sample``."""
    turns: dict[int, Turn] = {}  # by sampler chain

    def sampler(original: Callable) -> Callable:
        def scripted_sampler(runtime: Any, params: dict[str, Any]) -> Any:
            model = runtime.model
            vocab = Vocab(lambda text: model.tokenize(text.encode(), add_bos=False, special=True), (model.token_eos(),))
            chain = original(runtime, params)
            turns[_address(chain)] = _turn(pieces, vocab)
            return chain

        return scripted_sampler

    def sample(original: Callable) -> Callable:
        def scripted_sample(runtime: Any, chain: Any, ctx: Any, index: int = -1) -> int:
            import llama_cpp

            token, left_out = turns[_address(chain)]()
            if token is not None:
                return token
            logits = llama_cpp.llama_get_logits_ith(ctx, index)
            for t in left_out:
                logits[t] = -math.inf
            return original(runtime, chain, ctx, index)

        return scripted_sample

    return sampler, sample


def _address(chain: Any) -> int:
    import ctypes

    return ctypes.cast(chain, ctypes.c_void_p).value or 0


def _patches(pieces: tuple[Piece, ...]) -> list[tuple[Any, str, Callable[[Callable], Callable]]]:
    """(owner, name, wrap): what each runtime generates with, where it looks it up when it generates."""
    from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

    sampler, sample = _llama_cpp(pieces)
    patches = [(import_module("mlx_lm.generate"), "stream_generate",  # the module: the package's is a function
                lambda f: _with_processor(f, _mlx_lm_vocab, pieces)),
               (LlamaCppRuntime, "_sampler", sampler), (LlamaCppRuntime, "_sample", sample)]
    if find_spec("mlx_vlm") is not None:
        patches.append((import_module("mlx_vlm.generate"), "stream_generate",
                        lambda f: _with_processor(f, _mlx_vlm_vocab, pieces)))
    return patches


def install(*pieces: Piece) -> Callable[[], None]:
    """Script every generation from now on; returns the function that undoes it (undo the latest first)."""
    replaced = []
    for owner, name, wrap in _patches(pieces):
        original = getattr(owner, name)
        setattr(owner, name, wrap(original))
        replaced.append((owner, name, original))

    def undo() -> None:
        for owner, name, original in reversed(replaced):
            setattr(owner, name, original)

    return undo


@contextmanager
def scripted(*pieces: Piece) -> Iterator[None]:
    """Script every generation inside the ``with``."""
    undo = install(*pieces)
    try:
        yield
    finally:
        undo()


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this folder on PYTHONPATH, for a kernel or a child process that imports this module."""
    return {**env, "PYTHONPATH": os.pathsep.join([str(FOLDER), *filter(None, [env.get("PYTHONPATH")])])}
