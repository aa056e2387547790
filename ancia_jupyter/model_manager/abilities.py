"""What a model can do, known without loading it: which model reads images, and whether a model calls tools.

A view draws its attach button and its tool list before any model is loaded, so these answers come from the
catalog (and a loaded runtime when there is one), never from loading a model to find out. The rule that
uses them, which model answers a question, is the conversation service's (``Conversations.model_for``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..runtimes import Runtime
from .catalog import CATALOG, CATALOG_BY_ID, ModelSpec


@dataclass(frozen=True)
class ToolAbility:
    """Whether ``model_id`` can call tools: ``usable`` is None when that is not known until it is loaded."""

    model_id: str
    usable: bool | None
    reason: str | None  # why not, or why it is not known

    @property
    def advice(self) -> str | None:
        """One line for a user whose model cannot call tools (None when it can)."""
        if self.usable:
            return None
        if self.usable is None:
            return f"Whether {self.model_id} can call tools is {self.reason}: `ancia.models.load()` tells."
        return (f"{self.model_id} cannot call tools ({self.reason}), so it answers without them; "
                f"`ancia.models.select({smallest_tool_model()!r})` picks the smallest model that can.")


def smallest_tool_model() -> str:
    return min((spec for spec in CATALOG_BY_ID.values() if spec.tools), key=lambda s: s.disk_mb).id


def tool_ability(spec: ModelSpec, loaded: Runtime | None) -> ToolAbility:
    """From the loaded runtime when ``spec`` is loaded (``loaded``), else from what the catalog knows."""
    why_not = "mlx-vlm runs it without tools" if spec.vision else "its chat template has no tool-calling format"
    if loaded is not None:
        return ToolAbility(spec.id, loaded.supports_tools, None if loaded.supports_tools else why_not)
    if spec.remote:
        return ToolAbility(spec.id, True, None)  # the server gets them through the API's ``tools``
    if spec.vision or spec.id in CATALOG_BY_ID:
        usable = spec.tools  # the catalog says (SmolLM2, Llama 3.x and Gemma 3 answer without tools)
        return ToolAbility(spec.id, usable, None if usable else why_not)
    return ToolAbility(spec.id, None, "unknown until it is loaded")


@dataclass(frozen=True)
class VisionChoice:
    """The model a question with images goes to when no model is named, or None with the line that says
    what to do; ``hint`` also tells a view where images go when that is not the model picked."""

    model: str | None
    hint: str | None


def pull_hint() -> str:
    smallest = min((s for s in CATALOG if s.vision), key=lambda s: s.disk_mb)
    return (f"No vision model is downloaded to read images: `ancia.models.pull({smallest.id!r})` fetches the "
            f"smallest ({smallest.disk_mb} MB), or name one with `ancia.settings.update(vision_model=...)`.")


def vision_choice(specs: Sequence[ModelSpec], picked: ModelSpec, setting: str | None,
                  downloaded: Callable[[ModelSpec], bool]) -> VisionChoice:
    """The picked model when it sees images; else the setting ``vision_model``; else the smallest vision model
    whose files are here (the catalog's or one of the user's)."""
    if picked.vision:
        return VisionChoice(picked.id, None)
    if setting:
        spec = next((s for s in specs if s.id == setting), None)
        if spec is None or not spec.vision:
            what = "is not a known model" if spec is None else "cannot see images"
            return VisionChoice(None, f"The setting vision_model names {setting!r}, which {what}: "
                                      "`ancia.settings.update(vision_model=None)` uses the smallest downloaded "
                                      "vision model instead.")
    else:
        here = [s for s in specs if s.vision and downloaded(s)]
        if not here:
            return VisionChoice(None, pull_hint())
        spec = min(here, key=lambda s: (s.disk_mb or s.memory_mb, s.id))
    return VisionChoice(spec.id, f"Questions with images go to {spec.id}; the others stay with {picked.id}.")
