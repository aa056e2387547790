"""Images in chats on the real mlx-vlm runtime, with a tiny random Qwen2.5-VL built on the spot (no downloads)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted import endless, scripted
from tiny_vlm import build_tiny_vlm

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.errors import InvalidValueError, ModelError
from ancia_jupyter.runtimes import PromptCache
from ancia_jupyter.runtimes.mlx_vision import INSTALL_HINT, MAX_IMAGE_PIXELS, MLXVisionRuntime, read_image

# 112x112 pixels = 8x8 patches of 14 pixels, merged 2x2: 16 image tokens, between vision start and end.
IMAGE_TOKENS = 16 + 2
PROMPT = "What is in this picture?"


def png(size: tuple[int, int] = (112, 112), colour: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size, (255, 255, 255))
    image.paste(colour, (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    started = time.perf_counter()
    path = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "tiny-qwen2.5-vl")
    seconds = time.perf_counter() - started
    assert seconds < 10, f"building the tiny vision model took {seconds:.1f}s"
    return path


@pytest.fixture
def vlm(tiny_vlm_dir) -> str:
    """The tiny vision model, registered as ``tiny-vlm``, selected, greedy, short answers."""
    ancia.models.register("tiny-vlm", str(tiny_vlm_dir), title="Tiny random Qwen2.5-VL", vision=True)
    ancia.models.select("tiny-vlm")
    ancia.models.set_params("tiny-vlm", temperature=0.0, max_tokens=8, context_window=2048)
    return "tiny-vlm"


@pytest.fixture(scope="module")
def runtime(tiny_vlm_dir) -> MLXVisionRuntime:
    """The runtime on its own, for what the engine does not expose (stop, length, sampling)."""
    runtime = MLXVisionRuntime()
    runtime.load(tiny_vlm_dir)
    yield runtime
    runtime.unload()


def user(content: str, *images: object) -> list[dict]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content,
                                                         **({"images": list(images)} if images else {})}]


def test_a_vision_model_answers_about_an_image(vlm):
    image = png()
    events = list(ancia.chat(PROMPT, images=[image], stream=True))
    done = events[-1]
    assert isinstance(done, ev.Done) and done.status == "complete", events
    tokens = [e for e in events if isinstance(e, ev.Token)]
    assert tokens and "".join(t.text for t in tokens)
    assert 0 < done.usage["completion_tokens"] <= 8
    history = ancia.chats.history(done.chat_id)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == PROMPT
    assert history[0]["attachments"] == [{"mime": "image/png", "path": None, "data": image}]
    assert history[1]["status"] == "complete" and history[1]["content"] == "".join(t.text for t in tokens)
    assert history[1]["prompt_tokens"] == done.usage["prompt_tokens"]

    text_only = ancia.chat(PROMPT)
    assert text_only.status == "complete"
    assert done.usage["prompt_tokens"] == text_only.usage["prompt_tokens"] + IMAGE_TOKENS


def test_an_image_file_path_is_read_and_a_text_follow_up_reuses_the_cache(vlm, tmp_path):
    path = tmp_path / "square.png"
    path.write_bytes(png((224, 112)))
    first = ancia.chat(PROMPT, images=[path])
    assert first.status == "complete", first.error
    assert ancia.chats.history(first.chat_id)[0]["attachments"][0]["path"] == str(path)
    follow_up = ancia.chat("And which colour is it?", chat=first.chat_id)
    assert follow_up.status == "complete", follow_up.error
    assert follow_up.usage["cached_tokens"] > 0


def test_a_text_model_refuses_images_and_stores_nothing(tiny):
    with pytest.raises(InvalidValueError, match="vision"):
        ancia.chat("x", images=[png()])
    chats = ancia.chats.list()
    assert all(ancia.chats.history(c["id"]) == [] for c in chats)


def test_a_corrupt_image_is_a_clear_error_and_the_chat_goes_on(vlm):
    events = list(ancia.chat(PROMPT, images=[b"\x89PNG\r\n\x1a\n not really a png"], stream=True))
    errors = [e for e in events if isinstance(e, ev.Error)]
    assert events[-1].status == "error"
    assert len(errors) == 1 and errors[0].code == "ModelError"
    assert "Could not read the image" in errors[0].message and "PNG" in errors[0].message
    chat_id = events[-1].chat_id
    history = ancia.chats.history(chat_id)
    assert [(m["role"], m["status"]) for m in history] == [("user", "complete"), ("assistant", "error")]
    assert len(history[0]["attachments"]) == 1 and "Could not read the image" in history[1]["error"]

    again = ancia.chat("Never mind: say hello.", chat=chat_id)
    assert again.status == "complete", again.error
    assert [m["status"] for m in ancia.chats.history(chat_id)][-1] == "complete"


def test_a_missing_image_file_names_the_file(vlm, tmp_path):
    missing = tmp_path / "gone.png"
    response = ancia.chat(PROMPT, images=[missing])
    assert response.status == "error" and str(missing) in response.error


def test_images_that_overflow_the_context_window_are_refused(vlm):
    long_prompt = " ".join([PROMPT] * 30)  # the smallest context window allowed is 256 tokens
    text_only = ancia.chat(long_prompt).usage["prompt_tokens"]
    ancia.models.set_params("tiny-vlm", context_window=text_only + 10)
    assert ancia.chat(long_prompt).status == "complete"
    response = ancia.chat(long_prompt, images=[png()])
    assert response.status == "error"
    assert f"needs {text_only + IMAGE_TOKENS} tokens" in response.error and "context window" in response.error


def test_prompt_tokens_count_the_images_the_messages_carry(runtime):
    text = runtime.prompt_tokens(user(PROMPT))
    with_image = runtime.prompt_tokens(user(PROMPT, {"data": png(), "mime": "image/png"}))
    assert len(with_image) == len(text) + IMAGE_TOKENS
    image_token = runtime.model.config.image_token_id
    assert with_image.count(image_token) == 16 and image_token not in text

    # the images are in the prompt already: the stream reads the same tokens, and the latest user
    # message's images, which the engine passes as well, are not added a second time
    for images in (None, [{"data": png()}]):
        final = list(runtime.stream(with_image, {"max_tokens": 3}, images=images))[-1]
        assert final.prompt_tokens == len(with_image) and final.finish_reason in ("stop", "length")


def test_the_pixels_reach_the_model(runtime):
    prompt = runtime.prompt_tokens(user(PROMPT))

    def answer(image: bytes) -> str:
        return "".join(c.text for c in runtime.stream(prompt, {"max_tokens": 8}, images=[{"data": image}]))

    red, blue = answer(png(colour=(220, 30, 30))), answer(png(colour=(30, 30, 220)))
    assert red == answer(png(colour=(220, 30, 30)))
    assert red != blue and red != "".join(c.text for c in runtime.stream(prompt, {"max_tokens": 8}))


def test_large_images_are_scaled_down_to_about_a_megapixel():
    image = read_image({"data": png((4000, 1000)), "mime": "image/png"})
    assert image.mode == "RGB" and image.width * image.height <= MAX_IMAGE_PIXELS
    assert abs(image.width / image.height - 4) < 0.01 and image.width * image.height > 0.95 * MAX_IMAGE_PIXELS
    assert read_image(png((300, 200))).size == (300, 200)


def test_an_unreadable_image_is_an_error_only_in_the_latest_message(runtime):
    broken = {"data": b"broken", "mime": "image/png"}
    with pytest.raises(ModelError, match="Could not read the image"):
        runtime.prompt_tokens(user(PROMPT, broken))
    older = user("First question", broken) + [{"role": "assistant", "content": "An answer."},
                                              {"role": "user", "content": PROMPT}]
    assert runtime.prompt_tokens(older) == runtime.prompt_tokens([{**m, "images": []} for m in older])
    prompt = runtime.prompt_tokens(user(PROMPT))
    with pytest.raises(ModelError, match="Could not read the image"):
        list(runtime.stream(prompt, {"max_tokens": 3}, images=[broken]))


def test_stop_and_length_end_the_stream_and_a_stopped_cache_is_not_reused(runtime):
    with scripted(endless()):
        prompt = runtime.prompt_tokens(user(PROMPT))
        cache = PromptCache()
        chunks = list(runtime.stream(prompt, {"max_tokens": 5}, cache=cache, images=[{"data": png()}]))
        assert chunks[-1].finish_reason == "length" and chunks[-1].generation_tokens == 5
        assert len(cache.tokens) == chunks[-1].prompt_tokens + 5 and cache.nbytes > 0

        chunks = list(runtime.stream(prompt, {"max_tokens": 50}, cache=cache, images=[{"data": png()}],
                                     should_stop=lambda: True))
        assert chunks[-1].finish_reason == "stopped" and chunks[-1].generation_tokens == 1
        assert cache.tokens == [] and cache.nbytes == 0

        list(runtime.stream(prompt, {"max_tokens": 5}, cache=cache))
        assert cache.tokens and cache.nbytes > 0
        chunks = runtime.stream(prompt, {"max_tokens": 50}, cache=cache)
        next(chunks)
        chunks.close()  # the consumer went away (an error in the engine): the half-used cache is dropped
        assert cache.tokens == [] and cache.nbytes == 0 and cache.state.cache is None


def test_sampling_params_reach_the_sampler(runtime):
    prompt = runtime.prompt_tokens(user(PROMPT, {"data": png()}))

    def answer(params: dict) -> str:
        return "".join(c.text for c in runtime.stream(prompt, {"max_tokens": 8, **params}))

    greedy = answer({"temperature": 0.0})
    assert answer({"temperature": 5.0, "top_k": 1}) == greedy  # top_k=1 is greedy at any temperature
    sampled = {answer({"temperature": 5.0, "top_k": 0, "top_p": 1.0}) for _ in range(3)}
    assert sampled != {greedy}


def test_without_mlx_vlm_loading_says_how_to_install_it(tiny_vlm_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx_vlm", None)
    with pytest.raises(ModelError, match=r"pip install 'ancia-jupyter\[vision\]'"):
        MLXVisionRuntime().load(tiny_vlm_dir)
    assert "[vision]" in INSTALL_HINT


def test_importing_the_runtime_does_not_import_mlx_vlm():
    code = ("import sys, ancia_jupyter.runtimes.mlx_vision as m; "
            "assert m.MLXVisionRuntime.vision and 'mlx_vlm' not in sys.modules and 'PIL' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_follow_up_still_shows_the_earlier_image_and_pil_images_are_accepted(vlm):
    from PIL import Image

    from ancia_jupyter.app import get_app

    first = ancia.chat(PROMPT, images=[Image.new("RGB", (112, 112), (10, 200, 10))])
    assert first.status == "complete", first.error
    stored = ancia.chats.history(first.chat_id)[0]["attachments"][0]
    assert stored["mime"] == "image/png" and stored["data"].startswith(b"\x89PNG")
    store = get_app().store  # the same first turn, without its image
    twin = store.create_chat("twin")
    store.add_message(twin["id"], "user", PROMPT)
    store.add_message(twin["id"], "assistant", first.text)
    follow_up = ancia.chat("And which colour is it?", chat=first.chat_id)
    twin_follow_up = ancia.chat("And which colour is it?", chat=twin["id"])
    assert follow_up.status == twin_follow_up.status == "complete", follow_up.error
    assert follow_up.usage["prompt_tokens"] == twin_follow_up.usage["prompt_tokens"] + IMAGE_TOKENS
