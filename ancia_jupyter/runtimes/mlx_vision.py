"""Vision-language models on MLX through mlx-vlm: images in, text out.

The engine asks for a prompt's tokens while it fits the history into the context window, then streams
with the images of the latest user message. Image tokens cannot be counted without the pixels, so
``prompt_tokens`` renders the chat template with an image placeholder for every image the messages carry
(``message["images"]``: attachment dicts) and decodes those images to return the exact tokens the model
will read. Messages without images give the text tokens. The inputs behind each prompt are remembered, so
``stream`` either reuses them or puts the latest user message's images in place and prepares the real
inputs (pixels, expanded image tokens) with the model's own processor.

Prompt caches are reused across turns through mlx-vlm's ``PromptCacheState``: a follow-up whose new part
is text only continues from the stored KV state (image features included); a turn that adds images
prefills afresh, because mlx-vlm cannot append image features to a cache.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime
from .mlx_text import _merge_system

INSTALL_HINT = "pip install 'ancia-jupyter[vision]'"
# Qwen2.5-VL spends a token on every 28x28 pixels: a 12-megapixel photo would need 15,000 tokens, far past
# the default context window. About a megapixel (its documented max_pixels of 1280 * 28 * 28) keeps text
# in screenshots readable for some 1,300 tokens, so larger images are scaled down to it.
MAX_IMAGE_PIXELS = 1280 * 28 * 28
REMEMBERED_PROMPTS = 16  # the engine renders a candidate per step of its search for what fits the window


def read_image(attachment: Any) -> Any:
    """An attachment (``{"path"}`` or ``{"data"}``, a path, bytes or a PIL image) as an RGB PIL image."""
    from PIL import Image, ImageOps

    if isinstance(attachment, Image.Image):
        attachment = {"image": attachment}
    elif isinstance(attachment, (str, Path)):
        attachment = {"path": str(attachment)}
    elif isinstance(attachment, (bytes, bytearray)):
        attachment = {"data": bytes(attachment)}
    data, path = attachment.get("data"), attachment.get("path")
    where = f"the file {path}" if data is None else f"the attached {attachment.get('mime') or 'image'} data"
    try:
        if attachment.get("image") is not None:
            image = attachment["image"]
        elif data is not None:
            image = Image.open(io.BytesIO(data))
        elif path:
            image = Image.open(Path(path).expanduser())
        else:
            raise ValueError("the attachment has neither a path nor data")
        image.load()
        image = ImageOps.exif_transpose(image).convert("RGB")
    except Exception as exc:
        raise ModelError(f"Could not read the image in {where}: {exc}. "
                         "Attach a PNG, JPEG, GIF, WebP or BMP image.") from exc
    if image.width * image.height > MAX_IMAGE_PIXELS:
        scale = (MAX_IMAGE_PIXELS / (image.width * image.height)) ** 0.5
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))),
                             Image.Resampling.BICUBIC)
    return image


def _as_parts(message: dict) -> dict:
    """A message whose content lists its image parts before its text, the shape mlx-vlm formats."""
    count = message.get("images", 0)
    out = {k: v for k, v in message.items() if k != "images"}
    if count:
        out["content"] = [{"type": "image"}] * count + [{"type": "text", "text": message.get("content") or ""}]
    return out


class MLXVisionRuntime(Runtime):
    name = "mlx_vlm"
    vision = True

    def __init__(self) -> None:
        self.model: Any = None
        self.processor: Any = None
        # prompt tokens -> (messages with image counts, prepared inputs); images only when the messages had some
        self._prepared: OrderedDict[tuple[int, ...], tuple[list[dict], dict[str, Any]]] = OrderedDict()

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def load(self, path: Path) -> None:
        try:
            from mlx_vlm import load
        except ImportError as exc:
            raise ModelError(f"Vision models need mlx-vlm, which is not installed ({exc}). "
                             f"Install it with: {INSTALL_HINT}") from exc
        try:
            self.model, self.processor = load(str(path))
        except Exception as exc:
            raise ModelError(f"Could not load the MLX vision model in {path}: {exc}") from exc
        self._prepared.clear()

    def unload(self) -> None:
        self.model = self.processor = None
        self._prepared.clear()
        import gc

        import mlx.core as mx

        gc.collect()
        mx.clear_cache()

    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        shaped, pictures = self._collect(messages)
        inputs = self._prepare(self._render(shaped), pictures)
        key = tuple(inputs["input_ids"])
        self._prepared[key] = (shaped, inputs)
        self._prepared.move_to_end(key)
        while len(self._prepared) > REMEMBERED_PROMPTS:
            self._prepared.popitem(last=False)
        return list(key)

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        import mlx.core as mx
        from mlx_vlm.generate import PromptCacheState, stream_generate

        inputs = self._inputs_for(prompt, images or [])
        input_ids = inputs.pop("input_ids")
        window = int(params.get("context_window") or 0)
        max_tokens = int(params.get("max_tokens", 256))
        if window:  # the engine counted text tokens only when the images came with the stream
            if len(input_ids) >= window:
                raise ModelError(f"The prompt with its images needs {len(input_ids)} tokens but the context window "
                                 f"is {window}. Attach fewer or smaller images, or raise context_window with "
                                 "`ancia.models.set_params(context_window=...)`.")
            max_tokens = max(1, min(max_tokens, window - len(input_ids)))
        cache = cache if cache is not None else PromptCache()
        if not isinstance(cache.state, PromptCacheState):
            cache.state, cache.tokens = PromptCacheState(), []
        temperature = float(params.get("temperature", 0.0))
        responses = stream_generate(
            self.model, self.processor, "", input_ids=mx.array([input_ids]), **inputs,
            max_tokens=max_tokens, temperature=temperature,
            top_p=float(params.get("top_p", 1.0)) if temperature else 1.0,
            top_k=int(params.get("top_k", 0)) if temperature else 0,
            prompt_cache_state=cache.state,
        )
        last = None
        finish = None
        completed = False  # mlx-vlm stores the tokens of the KV state only once its stream has run out
        try:
            for response in responses:
                last = response
                if response.text:
                    yield Chunk(text=response.text)
                if response.finish_reason is None and should_stop():
                    finish = "stopped"
                    break
            else:
                completed = True
        finally:
            responses.close()
            if not completed:  # cut short: the KV state ran past the stored tokens, so it must not be reused
                cache.state, cache.tokens, cache.nbytes = PromptCacheState(), [], 0
        cache.tokens = list(cache.state.token_ids or [])
        cache.nbytes = sum(getattr(c, "nbytes", 0) for c in cache.state.cache or [])
        mx.clear_cache()
        yield Chunk(
            finish_reason=finish or (last.finish_reason if last else "stop"),
            prompt_tokens=last.prompt_tokens if last else len(input_ids),
            cached_tokens=last.cached_tokens if last else 0, generation_tokens=last.generation_tokens if last else 0,
            prompt_tps=last.prompt_tps if last else 0.0, generation_tps=last.generation_tps if last else 0.0,
        )

    # -- inputs -------------------------------------------------------------------------------------

    def _collect(self, messages: list[dict]) -> tuple[list[dict], list[Any]]:
        """The messages with an image count per user message, and their decoded images in prompt order.

        The latest user message's images must be readable; an older one that no longer is (a moved file)
        is left out rather than making the whole chat unanswerable."""
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        shaped, pictures = [], []
        for i, m in enumerate(messages):
            readable = []
            for image in (m.get("images") or ()) if m.get("role") == "user" else ():
                try:
                    readable.append(read_image(image))
                except ModelError:
                    if i == last_user:
                        raise
            shaped.append({**{k: v for k, v in m.items() if k not in ("images", "attachments")},
                           "images": len(readable)})
            pictures += readable
        return shaped, pictures

    def _render(self, shaped: list[dict]) -> str:
        """The chat template's text, with the model's image placeholder for each image of a user message."""
        from mlx_vlm.prompt_utils import apply_chat_template

        try:  # text: a list comes back only with return_messages=True
            return cast(str, apply_chat_template(self.processor, self.model.config, [_as_parts(m) for m in shaped],
                                                 num_images=0))
        except Exception as exc:
            if "system" not in str(exc).lower():
                raise ModelError(f"The model's chat template failed: {exc}") from exc
            merged = _merge_system(shaped)
            return cast(str, apply_chat_template(self.processor, self.model.config, [_as_parts(m) for m in merged],
                                                 num_images=0))

    def _prepare(self, text: str, pictures: list[Any]) -> dict[str, Any]:
        """The model's inputs: token ids (image tokens expanded), and the pixels and grids of the images."""
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        try:
            inputs = dict(prepare_inputs(
                self.processor, images=pictures or None, prompts=text,
                image_token_index=getattr(self.model.config, "image_token_index", None),
                add_special_tokens=should_add_special_tokens(self.model.config.model_type, self.processor),
            ))
        except Exception as exc:
            raise ModelError(f"The model's processor could not prepare the prompt and its {len(pictures)} "
                             f"image(s): {exc}") from exc
        inputs["input_ids"] = [int(t) for t in inputs["input_ids"].reshape(-1).tolist()]
        inputs["mask"] = inputs.pop("attention_mask", None)
        return inputs

    def _inputs_for(self, prompt: list[int], images: list[Any]) -> dict[str, Any]:
        """The inputs of a prompt from ``prompt_tokens``; ``images`` (the latest user message's) go on its
        latest user message unless the messages carried their images already."""
        shaped, inputs = self._prepared.get(tuple(prompt), (None, None))
        if inputs is not None and (inputs.get("pixel_values") is not None or not images):
            return dict(inputs)
        if not images:
            return {"input_ids": list(prompt)}
        if shaped is None:
            raise ModelError("Images can only be sent with a prompt made by this runtime's prompt_tokens.")
        last_user = max((i for i, m in enumerate(shaped) if m.get("role") == "user"), default=-1)
        if last_user < 0:
            raise ModelError("Images need a user message to go with.")
        pictures = [read_image(image) for image in images]
        shaped = [{**m, "images": len(pictures)} if i == last_user else m for i, m in enumerate(shaped)]
        return self._prepare(self._render(shaped), pictures)
