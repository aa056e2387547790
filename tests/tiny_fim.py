"""The tiny random GGUF of tiny_gguf.py with Qwen2.5-Coder's fill-in-the-middle control tokens added to its
vocabulary (``<|fim_prefix|>``, ``<|fim_suffix|>``, ``<|fim_middle|>``): a model inline completion writes a
fill-in-the-middle prompt for. What it says is scripted (tests/scripted.py)."""

from __future__ import annotations

from pathlib import Path

import tiny_gguf

FIM = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]


def build_tiny_fim_gguf(path: Path) -> Path:
    vocab, specials = tiny_gguf._vocab, tiny_gguf.SPECIALS
    tiny_gguf._vocab = lambda: (vocab()[0] + FIM, vocab()[1])  # the new tokens come last: the old ids stay
    tiny_gguf.SPECIALS = [*specials, *FIM]
    try:
        return tiny_gguf.build_tiny_gguf(path)
    finally:
        tiny_gguf._vocab, tiny_gguf.SPECIALS = vocab, specials
