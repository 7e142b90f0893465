"""How much memory a Llama needs: why llama-2-7b in float16 cannot run on a 12 GB card, and in 4 bits can.

Inference holds two things on the device for its whole life: the weights (one number per
parameter) and the KV cache Meta's ``model.py`` allocates up front, a key and a value
tensor of shape ``(max_batch_size, max_seq_len, n_kv_heads, head_dim)`` in every layer.
Activations and the CUDA context come on top, so the estimate is a lower bound: a model
whose estimate does not fit certainly does not run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

GiB = 2**30


# --8<-- [start:shape]
@dataclass(frozen=True)
class LlamaShape:
    """The numbers of a published Llama config that decide its size (Meta's ``ModelArgs`` names)."""

    dim: int  # hidden_size
    n_layers: int  # num_hidden_layers
    n_heads: int  # num_attention_heads
    n_kv_heads: int  # num_key_value_heads: fewer than n_heads with grouped-query attention
    vocab_size: int
    hidden_dim: int  # intermediate_size of the SwiGLU feed-forward
    tie_embeddings: bool  # the output layer reuses the token embedding

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def n_params(self) -> int:
        """Parameters of the model: the same count as ``sum(p.numel() for p in model.parameters())``."""
        attention = self.dim * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)  # wq, wo + wk, wv
        feed_forward = 3 * self.dim * self.hidden_dim  # w1, w2, w3
        norms = 2 * self.dim  # attention_norm, ffn_norm
        embeddings = self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)  # tok_embeddings, output
        return self.n_layers * (attention + feed_forward + norms) + embeddings + self.dim  # + final norm


# From each model's published config.json (SmolLM2's also from its GGUF metadata).
PRESETS: dict[str, LlamaShape] = {
    "llama-2-7b": LlamaShape(4096, 32, 32, 32, 32000, 11008, tie_embeddings=False),
    "open_llama_3b": LlamaShape(3200, 26, 32, 32, 32000, 8640, tie_embeddings=False),
    "SmolLM2-135M": LlamaShape(576, 30, 9, 3, 49152, 1536, tie_embeddings=True),
}
# --8<-- [end:shape]


# --8<-- [start:block_formats]
@dataclass(frozen=True)
class BlockFormat:
    """A llama.cpp format that stores weights in blocks: ``block_size`` weights and their
    scales in ``block_bytes`` bytes. The activations and the KV cache stay float16."""

    name: str
    block_size: int
    block_bytes: int

    @property
    def bits(self) -> float:
        """Bits a weight takes, its share of the block's scales included."""
        return 8 * self.block_bytes / self.block_size


Q8_0 = BlockFormat("Q8_0", 32, 34)  # a float16 scale d, 32 int8 q: w = d*q
Q4_1 = BlockFormat("Q4_1", 32, 20)  # float16 d and m, 32 4-bit q: w = d*q + m
# --8<-- [end:block_formats]


# --8<-- [start:estimate_memory]
def _size(n_bytes: int) -> str:
    # GiB is what PyTorch's and nvidia-smi's messages count in; GB is what model cards say
    return f"{n_bytes / GiB:.2f} GiB ({n_bytes / 1e9:.2f} GB)"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes the weights and the KV cache take, and how they were computed."""

    weights: int
    kv_cache: int
    explanation: str

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache


def estimate_memory(
    n_params: int,
    dtype: torch.dtype | BlockFormat,
    *,
    n_layers: int,
    n_kv_heads: int,
    head_dim: int,
    max_seq_len: int,
    max_batch_size: int,
) -> MemoryEstimate:
    """Memory for ``n_params`` weights in ``dtype`` plus a KV cache in the same dtype, or in
    float16 for weights in a :class:`BlockFormat`.

    The cache is what ``Llama.build(max_seq_len=..., max_batch_size=...)`` reserves:
    a key and a value for every layer, batch row, position, KV head and head dimension.
    """
    if not isinstance(dtype, (torch.dtype, BlockFormat)):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float16, or Q8_0 or Q4_1, not {dtype!r}")
    sizes = dict(n_params=n_params, n_layers=n_layers, n_kv_heads=n_kv_heads, head_dim=head_dim,
                 max_seq_len=max_seq_len, max_batch_size=max_batch_size)
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {value!r}")
        if value < 0:
            raise ValueError(f"{name}={value} is negative")
    if isinstance(dtype, BlockFormat):
        weights = -(-n_params * dtype.block_bytes // dtype.block_size)  # whole bytes, rounded up
        b = torch.float16.itemsize
        per_weight = f"{dtype.bits:g} bits ({dtype.name}: {dtype.block_size} weights in {dtype.block_bytes} bytes)"
    else:
        b = dtype.itemsize
        weights = n_params * b
        per_weight = f"{b} bytes ({dtype})"
    kv_cache = 2 * n_layers * max_batch_size * max_seq_len * n_kv_heads * head_dim * b  # 2: keys and values
    explanation = (
        f"weights:  {n_params:,} params x {per_weight} = {_size(weights)}\n"
        f"KV cache: 2 x {n_layers} layers x {max_batch_size} batch x {max_seq_len} positions"
        f" x {n_kv_heads} kv heads x {head_dim} head_dim x {b} bytes = {_size(kv_cache)}\n"
        f"total:    {_size(weights + kv_cache)}, before activations and the CUDA context"
    )
    return MemoryEstimate(weights, kv_cache, explanation)


def estimate_shape(shape: LlamaShape | str, dtype: torch.dtype | BlockFormat, max_seq_len: int, max_batch_size: int) -> MemoryEstimate:
    """:func:`estimate_memory` for a :class:`LlamaShape` or the name of one in :data:`PRESETS`."""
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise ValueError(f"unknown model {shape!r}: expected one of {sorted(PRESETS)}")
        shape = PRESETS[shape]
    return estimate_memory(
        shape.n_params, dtype, n_layers=shape.n_layers, n_kv_heads=shape.n_kv_heads,
        head_dim=shape.head_dim, max_seq_len=max_seq_len, max_batch_size=max_batch_size,
    )


def fits(estimate: MemoryEstimate, capacity: int) -> bool:
    """Whether ``estimate`` fits in ``capacity`` bytes. A ``False`` is certain; a ``True`` is
    necessary but not sufficient, since activations need room too."""
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise TypeError(f"capacity must be an int number of bytes, not {capacity!r}")
    if capacity < 0:
        raise ValueError(f"capacity={capacity} is negative")
    return estimate.total <= capacity
# --8<-- [end:estimate_memory]


# --8<-- [start:fit_table]
def fit_table(capacity: int, max_seq_len: int, max_batch_size: int,
              dtypes: tuple[torch.dtype | BlockFormat, ...] = (torch.float32, torch.float16)) -> str:
    """One line per preset and dtype: the estimate and whether it fits in ``capacity`` bytes."""
    lines = []
    for name in PRESETS:
        for dtype in dtypes:
            estimate = estimate_shape(name, dtype, max_seq_len, max_batch_size)
            verdict = "fits" if fits(estimate, capacity) else "does not fit"
            label = dtype.name if isinstance(dtype, BlockFormat) else str(dtype).removeprefix("torch.")
            lines.append(f"{name:<14} {label:<9} {estimate.total / GiB:6.2f} GiB  {verdict}")
    return "\n".join(lines)
# --8<-- [end:fit_table]


def device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes: the GPU's memory, or physical RAM for the CPU.

    ``None`` where the platform does not say (the CPU on Windows).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "mps":
        return torch.mps.recommended_max_memory()  # what Metal lets one process use
    if device.type == "cpu":
        if not hasattr(os, "sysconf"):
            return None
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    raise ValueError(f"no memory size for device type {device.type!r}")
