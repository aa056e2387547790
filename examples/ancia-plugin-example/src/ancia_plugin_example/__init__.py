"""Text statistics for the model: an example of an ancia-jupyter plugin.

ancia-jupyter finds ``register`` through the ``ancia_jupyter.plugins`` entry point and calls it with its
tool registry. Each tool is a plain function: the schema the model sees comes from the type hints and
the docstring, exactly as for ``@ancia.tool`` in a notebook.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

__version__ = "1.0.0"


def word_count(text: str, top: int = 5) -> dict[str, Any]:
    """Count the words of a text and list the most frequent ones.

    Args:
        text: The text to analyse.
        top: How many of the most frequent words to list.
    """
    words = re.findall(r"[\w'-]+", text.lower())
    return {"words": len(words), "distinct": len(set(words)),
            "most_common": [[w, n] for w, n in Counter(words).most_common(max(0, top))]}


def reading_time(text: str, words_per_minute: int = 230) -> str:
    """Estimate how long a text takes to read.

    Args:
        text: The text to be read.
        words_per_minute: Reading speed.
    """
    if words_per_minute <= 0:
        raise ValueError("words_per_minute must be positive")
    minutes = len(re.findall(r"[\w'-]+", text)) / words_per_minute
    return f"about {max(1, round(minutes))} minute(s)"


def register(registry: Any) -> None:
    """Called by ancia-jupyter when the plugin loads: add the tools (no network, no approval needed)."""
    registry.register(word_count, name="text.word_count")
    registry.register(reading_time, name="text.reading_time")
