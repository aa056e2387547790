"""Build a tiny random-weight Qwen2.5-VL model directory that ``mlx_vlm.load`` accepts, in about a second.

Qwen2.5-VL is the family the catalog ships for vision, so the tests run the same model class, image
processor and chat template (image placeholders included) as the real 3B/7B models, just with a few
thousand random weights and a small BPE vocabulary trained on the spot.
"""

from __future__ import annotations

import json
from pathlib import Path

# The Qwen2.5-VL chat template: list contents with image parts become the vision placeholders.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "What is in this picture? A red square on a white background. The cat sits on the mat.",
    "You are a helpful assistant. Describe the image: colours, shapes, text and objects.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?()[]{}<>\"'_-+*/=#@",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

# Small images keep the vision tower cheap: 14-pixel patches merged 2x2, so a 112x112 image is 16 tokens.
PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "min_pixels": 28 * 28, "max_pixels": 224 * 224,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_convert_rgb": True,
}


def build_tokenizer(path: Path) -> dict[str, int]:
    """Train a byte-level BPE with Qwen's special tokens; returns the ids of the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE,
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "model_max_length": 4096,
    }))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIALS}
    ids["vocab_size"] = tokenizer.get_vocab_size()
    return ids


def build_tiny_vlm(path: Path, seed: int = 0) -> Path:
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_vlm.models.qwen2_5_vl import qwen2_5_vl
    from mlx_vlm.models.qwen2_5_vl.config import ModelConfig, TextConfig, VisionConfig

    path.mkdir(parents=True, exist_ok=True)
    ids = build_tokenizer(path)
    hidden = 64
    config = {
        "model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "hidden_size": hidden, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "vocab_size": ids["vocab_size"],
        "max_position_embeddings": 4096, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2
        "eos_token_id": ids["<|im_end|>"], "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"], "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"], "vision_token_id": ids["<|vision_pad|>"],
        "vision_config": {
            "model_type": "qwen2_5_vl", "depth": 2, "hidden_size": 32, "intermediate_size": 64,
            "out_hidden_size": hidden, "num_heads": 2, "patch_size": 14, "spatial_patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56, "in_channels": 3,
            "fullatt_block_indexes": [1], "tokens_per_second": 2,
        },
    }
    model_config = ModelConfig.from_dict(json.loads(json.dumps(config)))
    model_config.text_config = TextConfig.from_dict(model_config.text_config)
    model_config.vision_config = VisionConfig.from_dict(config["vision_config"])
    mx.random.seed(seed)
    model = qwen2_5_vl.Model(model_config)
    scaled = [(k, mx.random.normal(v.shape) * (1.0 if "embed_tokens" in k else 0.3))
              for k, v in tree_flatten(model.parameters()) if "norm" not in k]
    model.update(tree_unflatten(scaled))
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (path / "config.json").write_text(json.dumps(config))
    # Every file the processor looks for is written here, so nothing is ever fetched from a hub.
    (path / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    (path / "video_preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    (path / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    (path / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    return path
