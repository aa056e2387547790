"""One llama.cpp context shared by several generations at once, each on a sequence of its own.

A context holds up to ``SEQUENCES`` sequences in one unified KV buffer, so two chats (or a chat and a
completion) can be answered in turn, token by token, without either one's cells being overwritten: the
model worker steps them alternately and each decode names its sequence. A sequence keeps the tokens of the
chat that used it last, so that chat's next turn reads only its new tokens. When cells run short, a
sequence no generation is using is saved into its chat's ``PromptCache`` (its KV cells as bytes; nothing
when the chat's file on disk holds just those cells, to be read from there again) and emptied; only when
every sequence is busy does the context grow, keeping every sequence's cells.

The context opens at the chat's window (at the load, or at the first request), not larger: memory is what
the chats in use need. Before any context is made, its KV cache is checked against the memory this machine
has free.
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import weakref
from typing import Any

from ..errors import MemoryFitError, ModelError
from .base import PromptCache, common_prefix
from .memory import MB, available_memory_mb

SEQUENCES = 4  # generations that can run at once on one model
PROMPT_SLICE = 128  # prompt tokens read per decode: the other generations step between slices
GROW_STEP = 512  # a context grows in whole steps of this many cells


class Sequence:
    """One sequence of the context: the tokens its KV cells hold, the chat they belong to, whether a
    generation is using it, and how many cells that generation may still fill."""

    def __init__(self, seq_id: int) -> None:
        self.seq_id = seq_id
        self.tokens: list[int] = []
        self.owner: weakref.ref[PromptCache] | None = None
        self.busy = False
        self.reserved = 0
        self.last_used = 0

    def owned_by(self, cache: PromptCache) -> bool:
        return self.owner is not None and self.owner() is cache


class SharedContext:
    """A llama.cpp context over a loaded model, grown on demand, with its sequences."""

    def __init__(self, model: Any, threads: int, limit: int) -> None:
        self.model = model  # llama_cpp._internals.LlamaModel
        self.threads = threads
        self.limit = limit  # the most cells a context may have: SEQUENCES times the trained length
        self.ctx: Any = None
        self.n_ctx = 0
        self.sequences = [Sequence(i) for i in range(SEQUENCES)]
        self._batch: Any = None
        self._clock = itertools.count(1)

    # -- the context itself -----------------------------------------------------------------------------

    def kv_mb(self, n_ctx: int) -> int:
        """What ``n_ctx`` cells of KV cache take (f16 keys and values in every layer), plus the buffers a
        decode needs, in MB."""
        import llama_cpp

        model = self.model.model
        layers, heads = llama_cpp.llama_model_n_layer(model), max(1, llama_cpp.llama_model_n_head(model))
        kv_width = llama_cpp.llama_model_n_embd(model) // heads * llama_cpp.llama_model_n_head_kv(model)
        return (n_ctx * layers * kv_width * 2 * 2) // MB + 32

    def ensure(self, n_ctx: int) -> None:
        """Make the context hold at least ``n_ctx`` cells, keeping what every sequence holds."""
        if self.ctx is not None and n_ctx <= self.n_ctx:
            return
        n_ctx = min(self.limit, -(-n_ctx // GROW_STEP) * GROW_STEP)
        if self.ctx is not None and n_ctx <= self.n_ctx:
            return
        needed = self.kv_mb(n_ctx) - (self.kv_mb(self.n_ctx) if self.ctx is not None else 0)
        free = available_memory_mb()
        if needed > free:
            raise MemoryFitError(
                f"A context of {n_ctx} tokens needs about {needed} MB more for its KV cache but this machine has "
                f"{free} MB free. Lower context_window with `ancia.models.set_params(context_window=...)`, or "
                "close other programs.")
        kept = [(s, self._snapshot(s)) for s in self.sequences if s.tokens] if self.ctx is not None else []
        self.close()
        self._open(n_ctx)
        for sequence, state in kept:
            if not self._load(sequence, state):
                sequence.tokens = []

    def _open(self, n_ctx: int) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext

        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, PROMPT_SLICE, PROMPT_SLICE
        params.n_seq_max, params.kv_unified = SEQUENCES, True
        params.n_threads = params.n_threads_batch = self.threads
        # Plain attention, not flash attention: its sums run in the same order for a token read alone or in
        # a batch, so prompt lookup's batches write what plain decoding writes. (Where other chats' cells lie
        # in the shared buffer still changes the rounding, as in any server with a unified KV cache.)
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        try:
            self.ctx = LlamaContext(model=self.model, params=params, verbose=False)
            self._batch = LlamaBatch(n_tokens=PROMPT_SLICE, embd=0, n_seq_max=1, verbose=False)
        except Exception as exc:
            self.close()
            raise ModelError(f"llama.cpp could not make a context of {n_ctx} tokens ({exc}): lower "
                             "context_window with `ancia.models.set_params(context_window=...)`.") from exc
        self.n_ctx = n_ctx

    def clear(self) -> None:
        """Forget every sequence and free the context: the next request opens a new one, as after a load."""
        self.close()
        for sequence in self.sequences:
            sequence.tokens, sequence.owner, sequence.busy, sequence.reserved = [], None, False, 0

    def close(self) -> None:
        """Free the context; the sequences keep their tokens (``ensure`` loads them again when it regrows)."""
        for part in (self._batch, self.ctx):
            if part is not None:
                part.close()
        self.ctx = self._batch = None
        self.n_ctx = 0

    # -- sequences --------------------------------------------------------------------------------------

    def acquire(self, cache: PromptCache, prompt: list[int], cells: int) -> tuple[Sequence, int]:
        """A sequence for a generation of ``cache``'s chat that may fill ``cells`` cells in all, holding the
        longest prefix of ``prompt`` on hand; and how many of its tokens it already holds."""
        idle = [s for s in self.sequences if not s.busy]
        if not idle:
            raise ModelError(f"llama.cpp is already running {SEQUENCES} generations: wait for one to end.")
        sequence = next((s for s in idle if s.owned_by(cache)), None)
        restore = False
        if sequence is None:
            sequence = self._hand_over(idle, cache)
            restore = cache.state is not None and common_prefix(cache.tokens, prompt) > 0
            if not restore:  # a snapshot of nothing this prompt starts with: the sequence's cells replace it
                cache.state, cache.tokens, cache.nbytes = None, [], 0
        sequence.busy, sequence.last_used = True, next(self._clock)
        try:
            if restore:
                self._restore(sequence, cache, cells)
            reused = min(common_prefix(sequence.tokens, prompt), len(prompt) - 1)  # read at least one token
            self.truncate(sequence, reused)
            reused = self._share_prefix(sequence, prompt, reused)
            sequence.reserved = cells
            self._make_room()
        except BaseException:
            self.release(sequence)
            raise
        return sequence, reused

    def warm(self, cache: PromptCache) -> None:
        """Put ``cache``'s snapshot into an idle sequence now, so the question it is for finds it there."""
        idle = [s for s in self.sequences if not s.busy]
        if cache.state is None or not cache.tokens or not idle or any(s.owned_by(cache) for s in self.sequences):
            return
        sequence = self._hand_over(idle, cache)
        sequence.busy = True
        try:
            self._restore(sequence, cache, 0)
        except ModelError:  # no room now: the snapshot stays with the cache, for the question to place
            sequence.owner = None
        finally:
            self.release(sequence)

    def _hand_over(self, idle: list[Sequence], cache: PromptCache) -> Sequence:
        """An idle sequence emptied for ``cache``'s chat: an empty one, else one whose chat is gone, else the
        least recently used (what it held saved first)."""
        sequence = min(idle, key=lambda s: (bool(s.tokens), s.owner is not None and s.owner() is not None,
                                            s.last_used))
        self.evict(sequence)
        sequence.owner = weakref.ref(cache)
        return sequence

    def _share_prefix(self, sequence: Sequence, prompt: list[int], reused: int) -> int:
        """Give ``sequence`` the longest prefix of ``prompt`` that another sequence holds, when that is longer
        than its own: a new chat starts with the system prompt (and tools) every chat begins with, already
        read. The cells are shared, not copied (one unified KV buffer), and stay with either sequence when the
        other lets them go."""
        donor, longest = None, reused
        for other in self.sequences:
            if other is not sequence and other.tokens:
                shared = min(common_prefix(other.tokens, prompt), len(prompt) - 1)
                if shared > longest:
                    donor, longest = other, shared
        if donor is None or self.ctx is None:
            return reused
        self.truncate(sequence, 0)
        self.ctx.kv_cache_seq_cp(donor.seq_id, sequence.seq_id, 0, longest)
        sequence.tokens = list(donor.tokens[:longest])
        return longest

    def holder(self, cache: PromptCache) -> Sequence | None:
        """The idle sequence whose cells hold ``cache``'s chat, if one does."""
        return next((s for s in self.sequences if s.owned_by(cache) and not s.busy and s.tokens), None)

    def export(self, cache: PromptCache) -> tuple[list[int], StateBuffer] | None:
        """The tokens and KV bytes of ``cache``'s chat: from the idle sequence that holds them, else from its
        snapshot; None when there is neither."""
        sequence = self.holder(cache)
        if sequence is not None and self.ctx is not None:
            return list(sequence.tokens), self._snapshot(sequence)
        if cache.state is not None and cache.tokens:
            return list(cache.tokens), cache.state
        return None

    def release(self, sequence: Sequence) -> None:
        sequence.busy, sequence.reserved, sequence.last_used = False, 0, next(self._clock)

    def evict(self, sequence: Sequence) -> None:
        """Save what ``sequence`` holds into its chat's cache (unless that chat is gone, or the chat's file on
        disk holds just these tokens: it is read again from there), then empty it."""
        owner = sequence.owner() if sequence.owner is not None else None
        if owner is not None and sequence.tokens and _on_disk(owner, sequence.tokens):
            owner.state, owner.tokens, owner.nbytes, owner.disk_read = None, [], 0, False
        elif owner is not None and sequence.tokens and not (owner.state is not None
                                                              and owner.tokens == sequence.tokens):
            state = self._snapshot(sequence)
            owner.state, owner.tokens, owner.nbytes = state, list(sequence.tokens), len(state)
        self.truncate(sequence, 0)
        sequence.owner = None

    def truncate(self, sequence: Sequence, keep: int) -> None:
        if self.ctx is not None and len(sequence.tokens) > keep:
            self.ctx.kv_cache_seq_rm(sequence.seq_id, keep, -1)
        del sequence.tokens[keep:]

    def _make_room(self) -> None:
        """Cells for every busy sequence's reservation: idle sequences are saved and emptied first (least
        recently used first), and the context grows only when that is not enough."""
        def needed() -> int:
            return sum(max(s.reserved, len(s.tokens)) if s.busy else len(s.tokens) for s in self.sequences)

        for other in sorted((s for s in self.sequences if not s.busy and s.tokens), key=lambda s: s.last_used):
            if self.ctx is not None and needed() <= self.n_ctx:
                break
            self.evict(other)
        self.ensure(needed())
        if needed() > self.n_ctx:
            raise ModelError(f"The generations in progress need {needed()} tokens of context but at most "
                             f"{self.n_ctx} fit: wait for one to end, or lower context_window.")

    # -- reading tokens ---------------------------------------------------------------------------------

    def decode(self, sequence: Sequence, tokens: list[int], every: bool = False) -> None:
        """Append ``tokens`` (at most ``PROMPT_SLICE``) to ``sequence``; the logits of the last (of ``every``
        one, by its index in ``tokens``) are ready for sampling until the next decode."""
        import llama_cpp

        batch = self._batch.batch
        start = len(sequence.tokens)
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + i, 1
            batch.seq_id[i][0] = sequence.seq_id
            batch.logits[i] = every or i == len(tokens) - 1
        code = llama_cpp.llama_decode(self.ctx.ctx, batch)
        if code != 0:
            raise ModelError(f"llama.cpp could not read the prompt (llama_decode returned {code}): the context "
                             f"of {self.n_ctx} tokens may be full; lower max_tokens or context_window.")
        sequence.tokens.extend(tokens)

    # -- KV state as bytes ------------------------------------------------------------------------------

    # A long chat's state is tens of MB: it is copied once, from the cells into a buffer and back, never
    # through intermediate bytes objects.

    def _snapshot(self, sequence: Sequence) -> StateBuffer:
        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(self.ctx.ctx, sequence.seq_id)
        state = _state_buffer(size)
        written = llama_cpp.llama_state_seq_get_data(self.ctx.ctx, _pointer(state), size, sequence.seq_id)
        return state if written == size else bytes(memoryview(state)[:written])

    def _load(self, sequence: Sequence, state: StateBuffer) -> bool:
        """Put ``state`` into ``sequence``'s cells; on failure llama.cpp leaves the sequence empty."""
        import llama_cpp

        size = len(state)
        return bool(llama_cpp.llama_state_seq_set_data(self.ctx.ctx, _pointer(state), size, sequence.seq_id) == size)

    def _restore(self, sequence: Sequence, cache: PromptCache, cells: int) -> None:
        """Load ``cache``'s snapshot into the empty ``sequence`` (room made for ``cells`` cells, or for the
        snapshot); the cache gives it up (the context holds it now, and it is saved again when the sequence is
        emptied)."""
        sequence.reserved = max(cells, len(cache.tokens))
        self._make_room()
        loaded = self._load(sequence, cache.state)
        sequence.tokens = list(cache.tokens) if loaded else []
        cache.state, cache.tokens, cache.nbytes = None, [], 0

def _on_disk(cache: PromptCache, tokens: list[int]) -> bool:
    """Whether the file last saved for ``cache``'s chat is still there and holds exactly ``tokens``."""
    return cache.on_disk is not None and cache.on_disk[1] == tokens and cache.on_disk[0].is_file()


StateBuffer = bytes | bytearray | mmap.mmap | memoryview


def _state_buffer(size: int) -> StateBuffer:
    """A writable buffer of ``size`` bytes for KV state, made without touching its memory: anonymous pages,
    zeroed by the OS as llama.cpp first writes them (without holding the GIL)."""
    return mmap.mmap(-1, size) if size > 0 else bytearray()


def _pointer(state: StateBuffer) -> Any:
    """A pointer to ``state``'s bytes for llama.cpp, without copying them."""
    if isinstance(state, bytes):
        return ctypes.cast(ctypes.c_char_p(state), ctypes.POINTER(ctypes.c_uint8))
    return (ctypes.c_uint8 * len(state)).from_buffer(state) if len(state) else (ctypes.c_uint8 * 1)()
