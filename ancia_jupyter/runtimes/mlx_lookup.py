"""Prompt-lookup decoding on mlx-lm: the drafts of ``prompt_lookup.py``, each read with its token in one forward
pass over the chat's prompt cache, which is trimmed back past the tokens the model refused.

mlx-lm's own loop decodes one token per pass; with drafts, code copied from the prompt is written several tokens
a pass. That pays where a pass over a few tokens costs little more than a pass over one (a GPU, as Apple
silicon's); on a CPU MLX's pass over several tokens costs nearly as many single passes, and it gains nothing.

MLX computes a pass over several tokens with other kernels than over one (matrix against matrix, not matrix
against vector), so their logits differ in the last bits: a draft is checked only where the two likeliest
tokens are not nearly tied, and a near tie is decided by the token read alone, as plain decoding reads it.
Greedy answers only, and only where the user asked for drafting everywhere (``prompt_lookup=True``): "auto"
keeps to runtimes whose batches are exact. A model whose cache cannot always be cut back (a sliding window, a
state-space layer) is decoded plainly.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..errors import ModelError
from .prompt_lookup import draft_and_check

PREFILL_STEP = 2048  # as mlx-lm's generate_step: the prompt but its last token in passes of this many, then it


class CacheDecoder:
    """One answer's pass over the model with its prompt cache, as drafting reads and checks it."""

    def __init__(self, model: Any, state: list[Any]) -> None:
        self.model, self.state = model, state
        self._logits: Any = None  # of the last pass: every token's, or only the last one's

    def read(self, tokens: list[int], every: bool = False) -> None:
        import mlx.core as mx

        logits = self.model(mx.array(tokens)[None], cache=self.state)[0]
        self._logits = logits if every else logits[-1:]
        mx.eval(self._logits)

    def drop(self, count: int) -> None:
        from mlx_lm.models.cache import trim_prompt_cache

        if count > 0 and trim_prompt_cache(self.state, count) != count:
            raise ModelError("The model's prompt cache could not be cut back past a refused draft; turn "
                             "prompt_lookup off for this model.")

    def sample(self, index: int = -1) -> int:
        """Greedy, as mlx-lm's sampler at temperature 0 picks: the first of the highest log-probabilities."""
        import mlx.core as mx
        import numpy as np

        logits = self._logits[index]
        return int(np.array(mx.argmax(logits - mx.logsumexp(logits, keepdims=True))))

    def logits(self, index: int) -> Any:
        import mlx.core as mx
        import numpy as np

        return np.array(self._logits[index].astype(mx.float32))


def can_draft(state: list[Any]) -> bool:
    """Whether every layer's cache can be cut back by any number of tokens at any length."""
    from mlx_lm.models.cache import KVCache, QuantizedKVCache

    return bool(state) and all(isinstance(layer, (KVCache, QuantizedKVCache)) for layer in state)


def greedy_with_drafts(model: Any, state: list[Any], rest: list[int], history: list[int],
                       budget: int) -> Generator[int, None, None]:
    """The tokens greedy decoding writes after ``rest`` (the prompt's tokens not in ``state`` yet, at least one),
    drafting from ``history`` (the whole prompt), at most ``budget`` of them."""
    import mlx.core as mx

    decoder = CacheDecoder(model, state)
    for at in range(0, len(rest) - 1, PREFILL_STEP):
        model(mx.array(rest[at:min(at + PREFILL_STEP, len(rest) - 1)])[None], cache=state)
        mx.eval([c.state for c in state])
    decoder.read(rest[-1:])
    return draft_and_check(decoder, None, history, budget, lookup=True, exact=False)
