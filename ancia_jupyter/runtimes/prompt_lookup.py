"""Prompt-lookup decoding: draft the next tokens from where the text so far already appeared, check them all
in one batch.

A fix of a cell, code asked for in a given shape, an edited question answered again: these answers copy long
runs of their prompt. When the last few tokens written also appear earlier (in the prompt or the answer), the
tokens that followed them there are a good guess for what comes next, as far as the latest two occurrences
agree: where they part (the number in ``def step_4`` after ``def step_3``), the model has a choice to make, and
the guess stops there. The model reads the guess in one batch (a batch of a few tokens costs far less than
reading them one by one) and keeps the longest run it agrees with, plus the token it would have written after
it, so one step may write several tokens.

What is written does not change: at temperature 0 a draft token is kept only if it is the one greedy decoding
picks; above 0 a draft token ``d`` is kept with probability ``p(d)`` and, when refused, the token is drawn from
``p`` without ``d`` (the speculative-sampling rule for a draft that is certain), so every token still follows
the model's own distribution. Greedy answers are the same token for token where llama.cpp's batches compute
what single tokens compute: a build without llamafile's matrix kernels (they serve only batches, and round
differently) and weights that are not repacked for the CPU (repacked ones switch kernels at four tokens; see
``exact_batches``). Elsewhere a draft is checked only where the two likeliest tokens are not nearly tied, but a
token stored with a batch's rounding can still tip a later near tie the other way: the same model and
distribution, not always the same bits, which is why the setting's "auto" drafts only where batches are exact.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Protocol

# On a CPU each token in a batch costs about half of one read alone, and a batch has a cost of its own: short
# drafts pay little, and past eight tokens the drafts refused part-way cost more than the longer kept ones
# save (measured over %ancia fix answers; a GPU would take longer drafts, but they are rarely kept whole).
MAX_DRAFT = 8  # the most tokens guessed at once
REFUSED_PAUSE = 4  # tokens written without drafting after a draft refused at its first token
NGRAMS = (3,)  # the lengths of the tail looked up, longest first: two tokens recur too often by chance
AGREE = 2  # the latest occurrences of the tail whose continuations must agree
LOOK_BACK = 4096  # how far back the lookup searches
# GGUF file types (general.file_type) whose weights llama.cpp's CPU backend does not repack: repacked ones
# (Q4_0, Q8_0, the K-quants on some CPUs) switch from a one-token kernel to a batch kernel at four tokens.
# F32, F16, Q4_1, Q5_0, Q5_1 and BF16.
UNPACKED_FILE_TYPES = frozenset({0, 1, 3, 8, 9, 32})


def exact_batches(system_info: str, file_type: int | None) -> bool:
    """Whether llama.cpp computes a token in a batch with the bits it computes for the token alone, so that
    checked drafts write exactly what plain greedy decoding writes."""
    return "LLAMAFILE = 1" not in system_info and file_type in UNPACKED_FILE_TYPES


def find_draft(history: Sequence[int], limit: int = MAX_DRAFT) -> list[int]:
    """What followed the latest earlier occurrences of the text's last few tokens, as far as the latest
    ``AGREE`` of them agree (all of it when there is one), at most ``limit`` tokens."""
    if limit <= 0:
        return []
    start = max(0, len(history) - LOOK_BACK)
    for n in NGRAMS:
        if len(history) <= n:
            continue
        tail = list(history[-n:])
        follows: list[list[int]] = []
        for at in range(len(history) - n - 1, start - 1, -1):  # the latest match first, not the tail itself
            if history[at] == tail[0] and list(history[at:at + n]) == tail:
                follow = list(history[at + n:at + n + limit])
                if follow:
                    follows.append(follow)
                    if len(follows) == AGREE:
                        break
        if follows:
            agreed = next((k for k, token in enumerate(follows[0])
                           if any(len(f) <= k or f[k] != token for f in follows[1:])), len(follows[0]))
            if agreed:
                return follows[0][:agreed]
    return []


TIE = 0.25  # logits this close: a batch and a single token may rank them differently


def near_tie(logits: Any) -> bool:
    """Whether the two likeliest tokens are too close to trust a batch's ranking of them."""
    import numpy as np

    values = np.asarray(logits)
    top = np.partition(values, -2)[-2:]
    return bool(top[1] - top[0] < TIE)


class SamplingRule:
    """The model's distribution for one position, as its sampler chain draws from it (top-k, then top-p over
    the raw logits, then the temperature), and the acceptance rule for a certain draft token."""

    def __init__(self, params: dict[str, Any]) -> None:
        import numpy as np

        self.temperature = float(params.get("temperature", 0.0))
        self.top_k = int(params.get("top_k") or 0)
        self.top_p = float(params.get("top_p") or 1.0)
        self.random = np.random.default_rng(params.get("seed"))

    def distribution(self, logits: Any) -> tuple[Any, Any]:
        """(tokens, probabilities) over the tokens the filters keep, most likely first."""
        import numpy as np

        logits = np.asarray(logits, dtype=np.float64)
        if 0 < self.top_k < len(logits):
            tokens = np.argpartition(-logits, self.top_k - 1)[: self.top_k]
        else:
            tokens = np.arange(len(logits))
        tokens = tokens[np.argsort(-logits[tokens], kind="stable")]
        kept = logits[tokens]
        if self.top_p < 1.0:
            raw = np.exp(kept - kept[0])
            cumulative = np.cumsum(raw / raw.sum())
            tokens = tokens[: int(np.searchsorted(cumulative, self.top_p)) + 1]
            kept = logits[tokens]
        weights = np.exp((kept - kept[0]) / self.temperature)
        return tokens, weights / weights.sum()

    def check(self, logits: Any, draft: int) -> tuple[bool, int]:
        """(whether ``draft`` is kept, the token written): kept with probability p(draft); otherwise a token
        drawn from p with ``draft`` left out."""
        tokens, p = self.distribution(logits)
        where = (tokens == draft).nonzero()[0]
        chance = float(p[where[0]]) if len(where) else 0.0
        if self.random.random() < chance:
            return True, draft
        if len(where):
            p = p.copy()
            p[where[0]] = 0.0
        return False, self._draw(tokens, p)

    def draw(self, logits: Any) -> int:
        return self._draw(*self.distribution(logits))

    def _draw(self, tokens: Any, p: Any) -> int:
        total = float(p.sum())
        if total <= 0:  # nothing left but the refused draft: cannot happen with a proper distribution
            return int(tokens[0])
        return int(self.random.choice(tokens, p=p / total))


class Decoder(Protocol):
    """What drafting needs of a runtime, for the one answer it writes: its context, and the logits of the
    batch it read last (by the token's index in that batch, -1 the last)."""

    def read(self, tokens: list[int], every: bool = False) -> None:
        """Read ``tokens`` into the context; with ``every``, the logits of each are kept, else of the last."""

    def drop(self, count: int) -> None:
        """Take the last ``count`` tokens read back out of the context."""

    def sample(self, index: int = -1) -> int:
        """The token the runtime's sampler picks from the logits at ``index``."""

    def logits(self, index: int) -> Any:
        """The logits at ``index``, as an array."""


def draft_and_check(decoder: Decoder, rule: SamplingRule | None, history: list[int], budget: int, *,
                    lookup: bool, exact: bool) -> Generator[int, None, None]:
    """The tokens decoding writes, one by one, from the logits of the prompt's last token (read already);
    with ``lookup``, a decode may check a draft of several at once (``exact``: a batch computes what single
    tokens do, see ``exact_batches``). The next token is decoded only when asked for, so a stop lands within a
    token."""
    token = decoder.sample()
    written, size, rest = 0, 2, 0  # the draft's length now; tokens to write before drafting again
    while True:
        yield token
        written += 1
        history.append(token)
        draft = find_draft(history, min(size, budget - written - 1)) if lookup and not rest else []
        rest = max(0, rest - 1)
        batch = [token, *draft]
        decoder.read(batch, every=bool(draft))
        if not draft:
            token = decoder.sample()
            continue
        kept, after = _check(decoder, rule, draft, exact)
        size, rest = _next_size(size, len(draft), len(kept))
        decoder.drop(len(draft) - len(kept))
        if after is None:  # a near tie after the last kept token: read it alone, as plain decoding does
            decoder.drop(1)
            decoder.read([batch[len(kept)]])
            after = decoder.sample()
        token = after
        for agreed in kept:
            yield agreed
            written += 1
            history.append(agreed)


def _next_size(size: int, drafted: int, kept: int) -> tuple[int, int]:
    """How long the next draft is, and how many tokens to write before it: a draft wholly kept doubles, one
    partly kept shrinks to what was kept, and a draft refused at once pauses drafting (a batch that is thrown
    away costs several tokens' time, so an answer that copies nothing must not keep paying for guesses)."""
    if kept == drafted:
        return min(MAX_DRAFT, size * 2), 0
    if kept:
        return max(2, kept), 0
    return 2, REFUSED_PAUSE


def _check(decoder: Decoder, rule: SamplingRule | None, draft: list[int],
           exact: bool) -> tuple[list[int], int | None]:
    """The run of ``draft`` the model agrees with, and the token it writes after that run; None for that token
    when greedy decoding on inexact batches meets a near tie there: only a token read alone then decides as
    plain decoding would."""
    for at, guess in enumerate(draft):
        if rule is None:
            if not exact and near_tie(decoder.logits(at)):
                return draft[:at], None
            token = decoder.sample(at)
            agreed = token == guess
        else:
            agreed, token = rule.check(decoder.logits(at), guess)
        if not agreed:
            return draft[:at], token
    last = len(draft)
    if rule is not None:
        return draft, rule.draw(decoder.logits(last))
    return draft, None if not exact and near_tie(decoder.logits(last)) else decoder.sample(last)
