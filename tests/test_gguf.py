"""GGUF -> MLX conversion: tiny synthetic llamas for the mechanics, the real SmolLM2 for the answer."""

from __future__ import annotations

import json
import pathlib
import struct
import subprocess
import sys

import pytest

from ancia_jupyter.errors import ModelError
from ancia_jupyter.model_manager.gguf import convert_gguf, read_gguf_metadata

REPO = pathlib.Path(__file__).resolve().parents[1]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2


def _tokens() -> list[str]:
    from tokenizers import pre_tokenizers

    return SPECIALS + sorted(pre_tokenizers.ByteLevel.alphabet()) + ["Ġt", "he", "Ġthe"]


def _metadata(arch: str = "llama", tokenizer_model: str = "gpt2") -> dict:
    """Plain-python GGUF metadata of a tiny llama with a byte-level BPE vocab and a chat template."""
    tokens = _tokens()
    return {
        "general.architecture": arch,
        "llama.block_count": LAYERS,
        "llama.context_length": 256,
        "llama.embedding_length": HIDDEN,
        "llama.feed_forward_length": FFN,
        "llama.attention.head_count": HEADS,
        "llama.attention.head_count_kv": KV_HEADS,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.rope.freq_base": 10000.0,
        "tokenizer.ggml.model": tokenizer_model,
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3 if t in SPECIALS else 1 for t in tokens],
        "tokenizer.ggml.merges": MERGES,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": CHAT_TEMPLATE,
    }


def _float_tensors(seed: int = 0) -> dict:
    """GGUF tensor name -> float32 numpy array (MLX shape order) for the tiny llama, no lm head (tied)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    head_dim, vocab = HIDDEN // HEADS, len(_tokens())
    shapes = {"token_embd.weight": (vocab, HIDDEN), "output_norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        shapes |= {
            f"blk.{i}.attn_q.weight": (HIDDEN, HIDDEN),
            f"blk.{i}.attn_k.weight": (KV_HEADS * head_dim, HIDDEN),
            f"blk.{i}.attn_v.weight": (KV_HEADS * head_dim, HIDDEN),
            f"blk.{i}.attn_output.weight": (HIDDEN, HIDDEN),
            f"blk.{i}.ffn_gate.weight": (FFN, HIDDEN),
            f"blk.{i}.ffn_up.weight": (FFN, HIDDEN),
            f"blk.{i}.ffn_down.weight": (HIDDEN, FFN),
            f"blk.{i}.attn_norm.weight": (HIDDEN,),
            f"blk.{i}.ffn_norm.weight": (HIDDEN,),
        }
    return {n: (np.ones(s) if len(s) == 1 else rng.normal(0, 0.5, s)).astype(np.float32)
            for n, s in shapes.items()}


def _save_with_mlx(path: pathlib.Path, metadata: dict, tensors: dict) -> pathlib.Path:
    """Write a GGUF with mx.save_gguf (F32/F16 tensors only)."""
    import mlx.core as mx

    def meta(v):
        if isinstance(v, bool):
            return mx.array(v)
        if isinstance(v, int):
            return mx.array(v, dtype=mx.uint32)
        if isinstance(v, float):
            return mx.array(v, dtype=mx.float32)
        if isinstance(v, list) and v and isinstance(v[0], int):
            return mx.array(v, dtype=mx.int32)
        return v

    mx.save_gguf(str(path), {k: mx.array(v) for k, v in tensors.items()},
                 {k: meta(v) for k, v in metadata.items()})
    return path


# ---- a minimal GGUF writer, for quantized tensors and tensor types mx.save_gguf cannot write ----

def _q8_0(x):
    """Q8_0 blocks (f16 scale + 32 int8) and the float32 values they decode to."""
    import numpy as np

    b = x.reshape(-1, 32)
    d = (np.abs(b).max(axis=1, keepdims=True) / 127).astype(np.float16)
    q = np.clip(np.round(b / d.astype(np.float32)), -127, 127).astype(np.int8)
    raw = np.concatenate([d.view(np.uint8), q.view(np.uint8)], axis=1).tobytes()
    return raw, (q * d.astype(np.float32)).reshape(x.shape)


def _q4_0(x):
    """Q4_0 blocks (f16 scale + 16 bytes of nibbles, low nibbles first) and their float32 values."""
    import numpy as np

    b = x.reshape(-1, 32)
    extreme = np.take_along_axis(b, np.abs(b).argmax(axis=1)[:, None], axis=1)
    d = (extreme / -8).astype(np.float16)
    q = np.clip(np.round(b / d.astype(np.float32) + 8), 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    raw = np.concatenate([d.view(np.uint8), packed], axis=1).tobytes()
    return raw, ((q.astype(np.float32) - 8) * d.astype(np.float32)).reshape(x.shape)


def _write_gguf(path: pathlib.Path, metadata: dict, tensors: list[tuple[str, int, tuple, bytes]]):
    """GGUF v3: tensors are (name, ggml type id, MLX-order shape, raw bytes); data aligned to 32."""
    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    def value(v) -> bytes:
        if isinstance(v, bool):
            return struct.pack("<I?", 7, v)
        if isinstance(v, int):
            return struct.pack("<II", 4, v)
        if isinstance(v, float):
            return struct.pack("<If", 6, v)
        if isinstance(v, str):
            return struct.pack("<I", 8) + s(v)
        if isinstance(v[0], str):
            return struct.pack("<IIQ", 9, 8, len(v)) + b"".join(s(x) for x in v)
        return struct.pack("<IIQ", 9, 5, len(v)) + struct.pack(f"<{len(v)}i", *v)

    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    head += b"".join(s(k) + value(v) for k, v in metadata.items())
    data = b""
    for name, ttype, shape, raw in tensors:
        head += s(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *reversed(shape), ttype, len(data))
        data += raw + b"\0" * (-len(raw) % 32)
    path.write_bytes(head + b"\0" * (-len(head) % 32) + data)
    return path


@pytest.fixture
def tiny_gguf(tmp_path) -> pathlib.Path:
    import numpy as np

    tensors = _float_tensors()
    tensors["blk.1.ffn_down.weight"] = tensors["blk.1.ffn_down.weight"].astype(np.float16)  # mixed F16
    return _save_with_mlx(tmp_path / "tiny.gguf", _metadata(), tensors)


def _leftovers(parent: pathlib.Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith(".partial")]


def test_tiny_llama_converts_loads_and_generates(tiny_gguf, tmp_path):
    import mlx.core as mx
    import mlx_lm

    out = convert_gguf(tiny_gguf, tmp_path / "models" / "tiny")
    assert out == tmp_path / "models" / "tiny"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in out.iterdir()}
    assert _leftovers(out.parent) == []
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["rope_traditional"] is True
    assert config["num_hidden_layers"] == LAYERS and config["num_key_value_heads"] == KV_HEADS
    assert config["tie_word_embeddings"] is True and config["vocab_size"] == len(_tokens())
    assert config["rms_norm_eps"] == 1e-5 and config["max_position_embeddings"] == 256
    assert "quantization" not in config  # all tensors are F32/F16

    model, tokenizer = mlx_lm.load(str(out))
    vocab = _tokens()
    assert tokenizer.encode(" the", add_special_tokens=False) == [vocab.index("Ġthe")]
    assert tokenizer.encode("<|im_end|>", add_special_tokens=False) == [2]
    assert tokenizer.eos_token_ids == {2}
    assert tokenizer.decode(tokenizer.encode("hé 12 the", add_special_tokens=False)) == "hé 12 the"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert prompt[0] == 1 and tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
    assert model(mx.array([prompt])).shape == (1, len(prompt), len(vocab))
    assert isinstance(mlx_lm.generate(model, tokenizer, prompt, max_tokens=4), str)


def test_read_gguf_metadata_gives_plain_python(tiny_gguf):
    meta = read_gguf_metadata(tiny_gguf)
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == LAYERS and type(meta["llama.block_count"]) is int
    assert meta["tokenizer.ggml.tokens"] == _tokens() and meta["tokenizer.ggml.merges"] == MERGES
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert meta["llama.rope.freq_base"] == 10000.0


def test_quantized_tensors_stay_quantized_with_their_own_bits(tmp_path):
    """Q8_0 embedding + Q4_0 linears + one F32 linear: per-module config, same logits as dequantized."""
    import mlx.core as mx
    import mlx_lm
    import numpy as np
    from mlx import nn

    floats, quant, plain = _float_tensors(seed=1), [], []
    for name, x in floats.items():
        if name == "token_embd.weight":
            (raw, deq), ttype = _q8_0(x), 8
        elif x.ndim == 2 and name != "blk.0.ffn_up.weight":
            (raw, deq), ttype = _q4_0(x), 2
        else:
            (raw, deq), ttype = (x.tobytes(), x), 0
        quant.append((name, ttype, x.shape, raw))
        plain.append((name, 0, x.shape, deq.astype(np.float32).tobytes()))
    q_dir = convert_gguf(_write_gguf(tmp_path / "q.gguf", _metadata(), quant), tmp_path / "q")
    f_dir = convert_gguf(_write_gguf(tmp_path / "f.gguf", _metadata(), plain), tmp_path / "f")

    q = json.loads((q_dir / "config.json").read_text())["quantization"]
    assert q["group_size"] == 32 and q["bits"] == 4
    assert q["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    assert q["model.layers.1.self_attn.q_proj"] == {"group_size": 32, "bits": 4}
    assert q["model.layers.0.mlp.up_proj"] is False

    q_model, tokenizer = mlx_lm.load(str(q_dir))
    f_model, _ = mlx_lm.load(str(f_dir))
    embed = q_model.model.embed_tokens
    assert isinstance(embed, nn.QuantizedEmbedding) and embed.bits == 8
    assert isinstance(q_model.model.layers[1].self_attn.q_proj, nn.QuantizedLinear)
    assert type(q_model.model.layers[0].mlp.up_proj) is nn.Linear
    ids = mx.array([tokenizer.encode("the theme", add_special_tokens=False)])
    got, want = np.array(q_model(ids).astype(mx.float32)), np.array(f_model(ids).astype(mx.float32))
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max()


def _bad_inputs(tmp_path: pathlib.Path, tiny: pathlib.Path) -> dict[str, tuple[pathlib.Path, str]]:
    import numpy as np

    data = tiny.read_bytes()
    rand = tmp_path / "random.gguf"
    rand.write_bytes(np.random.default_rng(0).bytes(4096))
    header_cut, data_cut = tmp_path / "header_cut.gguf", tmp_path / "data_cut.gguf"
    header_cut.write_bytes(data[:600])
    data_cut.write_bytes(data[: len(data) - 5000])
    q6k = [(n, 14 if n == "blk.0.attn_q.weight" else 0, x.shape,
            bytes(x.size // 256 * 210) if n == "blk.0.attn_q.weight" else x.tobytes())
           for n, x in _float_tensors().items()]
    return {
        "missing": (tmp_path / "nope.gguf", "not found"),
        "random bytes": (rand, "not a GGUF file"),
        "truncated header": (header_cut, "truncated"),
        "truncated data": (data_cut, "corrupt or truncated"),
        "mamba": (_save_with_mlx(tmp_path / "mamba.gguf", _metadata(arch="mamba"), _float_tensors()),
                  "architecture 'mamba' is not supported"),
        "sentencepiece": (_write_gguf(tmp_path / "spm.gguf", _metadata(tokenizer_model="llama"), []),
                          "tokenizer type 'llama' is not supported"),
        "Q6_K": (_write_gguf(tmp_path / "q6k.gguf", _metadata(), q6k), "unsupported quantization type Q6_K"),
    }


@pytest.mark.parametrize("case", ["missing", "random bytes", "truncated header", "truncated data", "mamba",
                                  "sentencepiece", "Q6_K"])
def test_bad_input_raises_model_error_and_leaves_nothing(case, tiny_gguf, tmp_path):
    path, message = _bad_inputs(tmp_path, tiny_gguf)[case]
    out = tmp_path / "out" / "model"
    with pytest.raises(ModelError, match=message):
        convert_gguf(path, out)
    assert not out.exists()
    assert not out.parent.exists() or _leftovers(out.parent) == []


def test_existing_out_dir_is_not_overwritten(tiny_gguf, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="already exists"):
        convert_gguf(tiny_gguf, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_importing_the_module_does_not_import_mlx():
    code = ("import sys, ancia_jupyter; before = set(sys.modules); import ancia_jupyter.model_manager.gguf; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('mlx', 'numpy')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ---- the real embedded model ----

@pytest.mark.real_model
def test_smollm2_knows_the_capital_of_france(smollm2_gguf, tmp_path):
    import mlx_lm

    out = convert_gguf(smollm2_gguf, tmp_path / "smollm2")
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 30 and config["tie_word_embeddings"] is True
    assert config["quantization"]["bits"] == 4 and config["quantization"]["model.embed_tokens"]["bits"] == 8

    model, tokenizer = mlx_lm.load(str(out))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True)
    steps = list(mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=64))  # greedy by default
    answer = "".join(s.text for s in steps)
    assert "Paris" in answer
    assert steps[-1].finish_reason == "stop"  # <|im_end|> ended it, not the token limit
