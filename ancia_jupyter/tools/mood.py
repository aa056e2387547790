"""``chat.set_mood``: the assistant sets the mood its avatar shows for the chat it is in."""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ToolError
from .calling import current

MOODS = ("neutral", "happy", "thinking", "curious", "surprised", "sad", "playful", "focused")
Mood = Literal["neutral", "happy", "thinking", "curious", "surprised", "sad", "playful", "focused"]


def set_mood(mood: Mood) -> str:
    """Set the mood shown for this chat, to match the tone of the conversation.

    Args:
        mood: One of neutral, happy, thinking, curious, surprised, sad, playful, focused.
    """
    context = current()
    if context.chat_id is None:
        raise ToolError("There is no chat to set the mood of: call this tool from a chat.")
    context.store.update_chat(context.chat_id, mood=mood)
    return f"mood set to {mood}"


def register(registry: Any) -> None:
    registry.register(set_mood, name="chat.set_mood")
