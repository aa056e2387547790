"""A model that cannot call tools answers without them, and says so once per chat; the tool list tells which
tools the picked model can use, known without loading it. The tiny MLX model can call tools; the tiny GGUF
without a chat template cannot."""

from __future__ import annotations

import pytest
from tiny_gguf import build_tiny_gguf

import ancia_jupyter as ancia
from ancia_jupyter import events as ev


@pytest.fixture(scope="module")
def bare_gguf(tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("bare-gguf") / "bare.gguf", chat_template=None)


@pytest.fixture
def bare(bare_gguf) -> str:
    """A model on llama.cpp whose GGUF has no chat template, so no tool-calling format: picked."""
    ancia.models.register("bare", str(bare_gguf), title="Tiny GGUF without a template")
    ancia.models.select("bare")
    ancia.models.set_params("bare", temperature=0.0, max_tokens=4, context_window=512)
    return "bare"


def notices(answer, code: str = "tools_unavailable") -> list[str]:
    return [e.text for e in answer if isinstance(e, ev.Notice) and e.code == code]


def usable(name: str = "system.time") -> tuple[bool | None, str | None]:
    row = next(t for t in ancia.tools.list() if t["name"] == name)
    return row["usable"], row["usable_reason"]


def test_a_model_without_tool_calling_says_so_once_per_chat(bare):
    first = ancia.chat("What time is it?", stream=True)
    said = notices(first)
    assert said == ["bare cannot call tools (its chat template has no tool-calling format), so it answers without "
                    "them; `ancia.models.select('qwen2.5-0.5b-instruct')` picks the smallest model that can."]
    assert notices(ancia.chat("And now?", chat=first.chat_id, stream=True)) == []
    assert notices(ancia.chat("And now?", chat=first.chat_id, stream=True)) == []
    assert len(notices(ancia.chat("A new chat", stream=True))) == 1  # another chat is told once too


def test_no_notice_when_no_tools_would_have_been_offered(bare):
    assert notices(ancia.chat("No tools", tools=False, stream=True)) == []
    for tool in ancia.tools.list():
        ancia.tools.disable(tool["name"])
    assert notices(ancia.chat("Every tool is off", stream=True)) == []


def test_a_model_that_calls_tools_gets_no_notice(tiny):
    answer = list(ancia.chat("What time is it?", stream=True))
    assert answer[-1].status == "complete" and notices(answer) == []


def test_the_tool_list_says_what_the_picked_model_can_use_without_loading_it(bare, tiny):
    ancia.models.select("smollm2-135m-instruct")  # the catalog knows, nothing is loaded
    assert usable() == (False, "smollm2-135m-instruct cannot call tools: its chat template has no tool-calling "
                               "format")
    ancia.models.select("qwen2.5-0.5b-instruct")
    assert usable() == (True, None)
    ancia.models.select("qwen2.5-coder-1.5b-instruct")  # the code models' template is Qwen's, with tools
    assert usable() == (True, None)
    assert [ancia.models.info(m)["tools"] for m in ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct",
                                                    "bare")] == [True, False, None]
    ancia.models.select("qwen2.5-vl-3b-instruct")
    assert usable() == (False, "qwen2.5-vl-3b-instruct cannot call tools: mlx-vlm runs it without tools")
    ancia.models.select("bare")  # a model of the user's own: known once loaded
    assert usable() == (None, "whether bare can call tools is unknown until it is loaded")
    ancia.models.load("bare")
    assert usable()[0] is False
    ancia.models.select("tiny")
    assert usable()[0] is None
    ancia.models.load("tiny")
    assert usable() == (True, None)
    assert ancia.app_state()["loaded_model"] == "tiny"


def test_a_tool_that_is_off_is_not_usable_whatever_the_model(tiny):
    ancia.models.load("tiny")
    ancia.tools.disable("system.time")
    assert usable() == (False, "turned off")
    assert usable("kernel.variables") == (False, "needs the setting kernel_context")
    assert ancia.models.tool_ability() == {"id": "tiny", "usable": True, "reason": None, "advice": None}
