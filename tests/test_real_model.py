"""The embedded default model, for real, on both runtimes: fetched from PyPI, run from its GGUF by llama.cpp or
converted for MLX, loaded, and sensible."""

from __future__ import annotations

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.model_manager.catalog import DEFAULT_MODEL_ID

pytestmark = pytest.mark.real_model


@pytest.fixture(params=["llama_cpp", "mlx"], autouse=True)
def runtime(request, smollm2):
    ancia.models.set_runtime(DEFAULT_MODEL_ID, request.param)
    ancia.models.pull(DEFAULT_MODEL_ID)
    return request.param


def test_default_model_is_fetched_and_listed(runtime):
    info = ancia.models.info(DEFAULT_MODEL_ID)
    expected = {"llama_cpp": (f"{DEFAULT_MODEL_ID}.gguf", "llama_cpp"), "mlx": (DEFAULT_MODEL_ID, "mlx_lm")}
    assert info["status"] == "downloaded" and info["path"].endswith(expected[runtime][0])
    assert info["runtime"] == expected[runtime][1]
    assert info["selected"] is True and info["fits"] is True


def test_default_model_answers_paris(smollm2):
    response = ancia.chat("What is the capital of France?")
    assert response.status == "complete"
    assert "Paris" in response.text
    assert ancia.app_state()["loaded_model"] == DEFAULT_MODEL_ID


def test_two_turn_conversation_uses_the_first_turn(smollm2):
    first = ancia.chat("Hi, my name is Bob.")
    second = ancia.chat("What is my name?", chat=first.chat_id)
    assert "Bob" in second.text
    assert second.usage["cached_tokens"] > 0
    fresh = ancia.chat("What is my name?")  # without the first turn the model cannot know
    assert "Bob" not in fresh.text


def test_streamed_answer_matches_the_stored_one(smollm2):
    tokens = []
    stream = ancia.chat("Name a primary color.", stream=True, max_tokens=16)
    for event in stream:
        if event.type == "token":
            tokens.append(event.text)
    done = stream.events[-1]
    stored = ancia.chats.history(done.chat_id)[-1]
    assert stored["content"] == "".join(tokens) and stored["status"] == "complete" and tokens
