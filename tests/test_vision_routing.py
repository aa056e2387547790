"""A chat on a text model still takes an image: the question goes to the vision model, and the next text-only
question goes back to the text model. One rule decides (``Conversations.model_for``); each message records
the model that answered it. With the tiny random Qwen2.5-VL built on the spot, no downloads."""

from __future__ import annotations

import pytest
from test_vision import png, tiny_vlm_dir  # noqa: F401  (a fixture)

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.errors import InvalidValueError
from ancia_jupyter.paths import models_dir

PULL = "`ancia.models.pull('qwen2.5-vl-3b-instruct')`"


@pytest.fixture
def vlm(tiny, tiny_vlm_dir):  # noqa: F811
    """``tiny`` (text, picked) and ``tiny-vlm`` (vision, registered, not picked)."""
    ancia.models.register("tiny-vlm", str(tiny_vlm_dir), title="Tiny random Qwen2.5-VL", vision=True)
    ancia.models.set_params("tiny-vlm", temperature=0.0, max_tokens=6, context_window=2048)
    return "tiny-vlm"


def answered_by(chat_id: int) -> list[str]:
    return [m["model_id"] for m in ancia.chats.history(chat_id) if m["role"] == "assistant"]


def test_an_image_goes_to_the_vision_model_and_text_comes_back_to_the_text_model(vlm):
    first = ancia.chat("Hello", tools=False)
    assert first.status == "complete", first.error
    events = list(ancia.chat("What is in this picture?", chat=first.chat_id, images=[png()], stream=True))
    started = [e for e in events if isinstance(e, ev.MessageStarted)]
    assert [e.model for e in started] == ["tiny-vlm"] and events[-1].status == "complete", events
    after = ancia.chat("Thanks", chat=first.chat_id, tools=False)
    assert after.status == "complete", after.error
    assert answered_by(first.chat_id) == ["tiny", "tiny-vlm", "tiny"]
    assert ancia.models.selected() == "tiny"


def test_answering_an_image_question_again_goes_to_the_vision_model_again(vlm):
    first = ancia.chat("What colour is this?", images=[png()])
    assert first.status == "complete", first.error
    again = ancia.chats.get(first.chat_id).regenerate()
    assert again.status == "complete", again.error
    assert answered_by(first.chat_id) == ["tiny-vlm"]


def test_continuing_an_answer_about_an_image_is_asked_of_the_vision_model(vlm):
    ancia.models.set_params("tiny-vlm", max_tokens=2)
    first = ancia.chat("Describe this picture at length.", images=[png()])
    assert first.status == "complete", first.error
    more = ancia.chats.get(first.chat_id).continue_()  # not of the text model, which cannot read the image
    assert more.status == "error" and more.error.startswith("Answers on the mlx_vlm runtime cannot be continued")
    assert answered_by(first.chat_id) == ["tiny-vlm"]


def test_a_model_asked_for_that_cannot_see_is_refused_and_nothing_is_stored(vlm):
    with pytest.raises(InvalidValueError, match="tiny cannot see images: name a vision model"):
        ancia.chat("Look", model="tiny", images=[png()])
    assert ancia.chats.list() == []
    assert ancia.chat("Look", model="tiny-vlm", images=[png()]).status == "complete"


def test_without_a_vision_model_one_line_says_what_to_pull(tiny):
    assert ancia.models.vision_model() == {"id": None, "hint": (
        f"No vision model is downloaded to read images: {PULL} fetches the smallest (3090 MB), or name one "
        "with `ancia.settings.update(vision_model=...)`.")}
    with pytest.raises(InvalidValueError) as refused:
        ancia.chat("Look", images=[png()])
    assert PULL in str(refused.value) and "\n" not in str(refused.value)
    assert ancia.chats.list() == []


def test_the_smallest_downloaded_catalog_vision_model_is_the_default(tiny):
    for model in ("qwen2.5-vl-7b-instruct", "qwen2.5-vl-3b-instruct"):
        (models_dir() / model).mkdir(parents=True)
        (models_dir() / model / "config.json").write_text("{}")
    assert ancia.models.vision_model()["id"] == "qwen2.5-vl-3b-instruct"


def test_the_setting_vision_model_chooses_and_a_wrong_one_is_said(vlm, tiny_vlm_dir):  # noqa: F811
    ancia.models.register("other-vlm", str(tiny_vlm_dir), vision=True)
    ancia.settings.update(vision_model="other-vlm")
    assert ancia.models.vision_model() == {
        "id": "other-vlm", "hint": "Questions with images go to other-vlm; the others stay with tiny."}
    ancia.settings.update(vision_model="tiny")
    choice = ancia.models.vision_model()
    assert choice["id"] is None and "The setting vision_model names 'tiny', which cannot see images" in choice["hint"]
    with pytest.raises(InvalidValueError, match="names 'tiny', which cannot see images"):
        ancia.chat("Look", images=[png()])
    with pytest.raises(InvalidValueError, match="Setting 'vision_model' must be a model id, or None"):
        ancia.settings.update(vision_model=3)
    ancia.settings.update(vision_model=None)
    assert ancia.models.vision_model()["id"] == "other-vlm"  # the smaller of the two tiny ones by name


def test_a_picked_vision_model_reads_images_itself(vlm):
    ancia.models.select("tiny-vlm")
    assert ancia.models.vision_model() == {"id": "tiny-vlm", "hint": None}
    response = ancia.chat("What is in this picture?", images=[png()])
    assert response.status == "complete" and answered_by(response.chat_id) == ["tiny-vlm"]
