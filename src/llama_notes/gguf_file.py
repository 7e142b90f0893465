"""A llama.cpp GGUF file, parsed once: the model's shape, and its weights as stored or dequantized.

A GGUF file holds a model's settings (``llama.block_count``, ``llama.rope.freq_base``...)
and its tensors under llama.cpp's names (``blk.0.attn_q.weight``), each as the file
stores it: ``F32``, or blocks of 32 weights sharing scales (``Q4_1``, ``Q8_0``).
llama.cpp's converter wrote the query and key rows of each head in Meta's order, the
order our :class:`~llama_notes.model.Transformer` uses; Hugging Face's order differs
(see :func:`~llama_notes.checkpoint.unpermute`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from llama_notes.model import ModelArgs


class GGUFFile:
    """The settings and tensors of a Llama GGUF file (``general.architecture`` ``llama``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.path}")
        self.reader = GGUFReader(self.path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        architecture = self.field("general.architecture")
        if architecture != "llama":
            raise ValueError(f"{self.path.name} holds a {architecture!r} model; only 'llama' is supported")

    def field(self, key: str, default=None):
        """The value of a setting (``llama.block_count``...), or ``default`` if the file has none."""
        field = self.reader.get_field(key)
        return default if field is None else field.contents()

    def model_args(self, max_seq_len: int = 2048, max_batch_size: int = 32) -> ModelArgs:
        """The :class:`ModelArgs` of the file's model, with a KV cache of the given size."""
        dim = self.field("llama.embedding_length")
        n_heads = self.field("llama.attention.head_count")
        return ModelArgs(
            dim=dim,
            n_layers=self.field("llama.block_count"),
            n_heads=n_heads,
            n_kv_heads=self.field("llama.attention.head_count_kv", n_heads),
            vocab_size=self.tensors["token_embd.weight"].shape[-1].item(),
            hidden_dim=self.field("llama.feed_forward_length"),
            norm_eps=self.field("llama.attention.layer_norm_rms_epsilon"),
            rope_theta=self.field("llama.rope.freq_base", 10000.0),
            max_batch_size=max_batch_size,
            max_seq_len=max_seq_len,
        )

    def quant_type(self, name: str) -> GGMLQuantizationType:
        return self.tensors[name].tensor_type

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as the file stores them: a row of blocks per output feature."""
        return self.tensors[name].data

    def dequantized(self, name: str) -> torch.Tensor:
        """The tensor in float32, ``(out_features, in_features)`` for a matrix, as llama.cpp computes it."""
        tensor = self.tensors[name]
        w = dequantize(tensor.data, tensor.tensor_type)  # F32 tensors come back as read-only views of the file
        return torch.from_numpy(np.array(w, dtype=np.float32, copy=not w.flags.writeable))

    def tied_output(self) -> bool:
        """Whether the output layer is the token embedding (the file then has no ``output.weight``)."""
        return "output.weight" not in self.tensors

    def hf_config(self):
        """The Hugging Face ``LlamaConfig`` of the model."""
        from transformers import LlamaConfig

        from llama_notes.checkpoint import HF_CONFIG_NAMES

        args = self.model_args()
        eos = self.field("tokenizer.ggml.eos_token_id")
        return LlamaConfig(
            **{hf: getattr(args, ours) for ours, hf in HF_CONFIG_NAMES.items()},
            head_dim=args.dim // args.n_heads,
            max_position_embeddings=self.field("llama.context_length", 2048),
            rope_parameters={"rope_type": "default", "rope_theta": args.rope_theta},
            tie_word_embeddings=self.tied_output(),
            bos_token_id=self.field("tokenizer.ggml.bos_token_id"),
            eos_token_id=eos,
            pad_token_id=self.field("tokenizer.ggml.padding_token_id", eos),
            unk_token_id=self.field("tokenizer.ggml.unknown_token_id"),
            architectures=["LlamaForCausalLM"],
        )

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """The dequantized weights under Hugging Face's names, query and key rows in its order."""
        from llama_notes.checkpoint import HF_LAYER_NAMES, rope_heads

        args = self.model_args()
        heads = rope_heads(args)
        sd = {
            "model.embed_tokens.weight": self.dequantized("token_embd.weight"),
            "model.norm.weight": self.dequantized("output_norm.weight"),
        }
        if not self.tied_output():
            sd["lm_head.weight"] = self.dequantized("output.weight")
        for i in range(args.n_layers):
            for ours, hf in HF_LAYER_NAMES.items():
                w = self.dequantized(f"blk.{i}.{ours}.weight")
                if ours in heads:
                    w = permute(w, heads[ours])
                sd[f"model.layers.{i}.{hf}.weight"] = w
        return sd


def permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Put the rows of each head of ``q_proj``/``k_proj`` in Hugging Face's order: the inverse
    of :func:`~llama_notes.checkpoint.unpermute`, as Hugging Face's conversion script does it."""
    out_features, in_features = w.shape
    head_dim = out_features // n_heads
    return w.view(n_heads, head_dim // 2, 2, in_features).transpose(1, 2).reshape(out_features, in_features)
