"""4-bit weights as the GGUF file stores them, multiplied without converting them.

llama.cpp's ``Q4_1`` keeps a matrix in blocks of 32 weights along a row: two float16
numbers ``d`` and ``m``, then 32 unsigned 4-bit integers ``q``, and each weight is
``w = d*q + m`` (20 bytes for 32 weights: 5 bits a weight). On the CPU the package's own
kernel multiplies by exactly these numbers (``int4_mm.cpp``, compiled on first use by
:mod:`llama_notes.kernels`): ``q`` and ``d``, ``m`` as float16, rearranged so that a
thread streams them from memory in one run. On CUDA, PyTorch's ``_weight_int4pack_mm``
takes groups ``w = scale*(q - 8) + zero``; since ``d*q + m = d*(q - 8) + (m + 8d)``, the
blocks go in with ``scale = d`` and ``zero = m + 8d``, rounded to the activations' dtype.

The token embedding is ``Q8_0``: blocks of 32 signed 8-bit ``q`` and one float16 ``d``,
``w = d*q`` (8.5 bits a weight). Looking a token up dequantizes its row. SmolLM2 ties its
output layer to the embedding; the output multiplies by the same 8-bit numbers, on the
CPU with the same kernel's 8-bit tiles. On CUDA they are split as ``q = 16*hi + lo``
(``lo`` from 0 to 15, ``hi`` from -8 to 7) into two 4-bit products: ``hi + 8`` with
``d' = 16d, m' = -128d`` and ``lo`` with ``d, m' = 0``.

A 4-bit model computes in bfloat16 (:data:`ACTIVATION_DTYPE`): where the processor has
AVX512-VNNI, the CPU kernel turns each block of 32 bfloat16 activations into 16-bit
integers and adds 32 integer products in one instruction, and PyTorch's CUDA kernel takes
bfloat16 too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType
from torch import nn

from llama_notes import kernels
from llama_notes.gguf_file import GGUFFile

GROUP = 32  # weights per block, in llama.cpp's formats and in the kernels' groups
TILE_ROWS = 4  # output rows per tile of the CPU kernel
ACTIVATION_DTYPE = torch.bfloat16
CUDA_INNER_K_TILES = 2  # the CUDA packing's tile width: in_features must be a multiple of 16 * 2


# --8<-- [start:q4_1_blocks]
def q4_1_blocks(raw: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(q, d, m)`` of a ``Q4_1`` matrix as the file stores it (a row of 20-byte blocks per
    output feature): ``q`` ``(out, in)`` from 0 to 15, ``d`` and ``m`` ``(out, in / 32)`` float16."""
    rows = raw.shape[0]
    blocks = torch.from_numpy(np.array(raw, dtype=np.uint8)).view(rows, -1, 20)
    d = blocks[..., 0:2].contiguous().view(torch.float16).squeeze(-1)
    m = blocks[..., 2:4].contiguous().view(torch.float16).squeeze(-1)
    qs = blocks[..., 4:]  # 16 bytes: weight j in the low 4 bits of byte j, weight 16 + j in the high 4
    q = torch.cat([qs & 0x0F, qs >> 4], dim=-1)
    return q.reshape(rows, -1), d, m
# --8<-- [end:q4_1_blocks]


def q8_0_blocks(raw: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, d)`` of a ``Q8_0`` matrix: ``q`` ``(out, in)`` int8, ``d`` ``(out, in / 32)`` float16."""
    rows = raw.shape[0]
    blocks = torch.from_numpy(np.array(raw, dtype=np.uint8)).view(rows, -1, 34)
    d = blocks[..., 0:2].contiguous().view(torch.float16).squeeze(-1)
    q = blocks[..., 2:].contiguous().view(torch.int8)
    return q.reshape(rows, -1), d


def cuda_int4pack(q: torch.Tensor, d: torch.Tensor, m: torch.Tensor, dtype: torch.dtype, device):
    """``(weight, scales_and_zeros)`` for ``_weight_int4pack_mm``: ``q`` two a byte, the
    even one high, in the CUDA tiles, and ``(in / 32, out, 2)`` pairs ``(d, m + 8d)``.
    The kernel takes a multiple of 16 output features: extra rows of zero weights
    (``q = 8``, ``d = m = 0``) give outputs that :class:`Int4Linear` cuts off."""
    pad = -q.shape[0] % 16
    q = torch.cat([q, torch.full((pad, q.shape[1]), 8, dtype=q.dtype)])
    d, m = (torch.cat([t.float(), t.new_zeros(pad, t.shape[1], dtype=torch.float32)]) for t in (d, m))
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
    weight = torch.ops.aten._convert_weight_to_int4pack(pairs.to(device), CUDA_INNER_K_TILES)
    scales_and_zeros = torch.stack([d.t(), (m + 8 * d).t()], dim=-1)
    return weight, scales_and_zeros.to(device=device, dtype=dtype).contiguous()


def cpu_tiles(q: torch.Tensor, d: torch.Tensor, m: torch.Tensor | None, bits: int = 4) -> torch.Tensor:
    """``q`` ``(out, in)`` and ``d``, ``m`` ``(out, in / 32)`` in the layout of ``int4_mm.cpp``:
    ``(out / 4, in / 64, 160)`` bytes for 4-bit ``q`` (0 to 15), ``(out / 4, in / 64, 272)``
    for 8-bit ones (-128 to 127, and ``m`` is None): a tile per 4 rows and 2 blocks, their
    codes (32 or 64 bytes a row) then their float16 ``(dA, dB, mA, mB)``, or ``(dA, dB)``.
    Rows and blocks of zeros (``d = m = 0``) pad the matrix to whole tiles."""
    rows, cols = q.shape
    pad_rows, pad_cols = -rows % TILE_ROWS, -cols % (2 * GROUP)
    q = F.pad(q.to(torch.int16), (0, pad_cols, 0, pad_rows))
    d, *m = (F.pad(t.to(torch.float16), (0, pad_cols // GROUP, 0, pad_rows)) for t in (d, m) if t is not None)
    n, pairs = q.shape[0], q.shape[1] // (2 * GROUP)
    halves = q.view(n, pairs, 2, 2, GROUP // 2)  # (row, pair, block A or B, first or second 16, j)
    if bits == 4:  # byte j of a block's 16: weight j in the low 4 bits, weight 16 + j in the high 4
        codes = (halves[:, :, :, 0] | halves[:, :, :, 1] << 4).to(torch.uint8).reshape(n, pairs, GROUP)
    else:  # a row's 64 bytes: the first 16 of block A, of block B, then the last 16 of each
        codes = halves.transpose(2, 3).to(torch.int8).reshape(n, pairs, 2 * GROUP).view(torch.uint8)
    scales = torch.stack([t.view(n, pairs, 2) for t in (d, *m)], dim=2).reshape(n, pairs, -1)
    per_tile = [t.view(n // TILE_ROWS, TILE_ROWS, pairs, -1).transpose(1, 2).reshape(n // TILE_ROWS, pairs, -1)
                for t in (codes, scales.view(torch.uint8))]
    return torch.cat(per_tile, dim=-1).contiguous()


def as_rows(x: torch.Tensor, in_features: int) -> torch.Tensor:
    """``x`` ``(..., in_features)`` as the rows ``(M, in_features)`` that the kernels take."""
    if x.shape[-1] != in_features:
        raise ValueError(f"x has {x.shape[-1]} features; this layer takes {in_features}")
    return x.reshape(-1, in_features)


# --8<-- [start:int4_linear]
class Int4Linear(nn.Module):
    """``y = x @ W.T`` with ``W = d*q + m`` in blocks of 32 along ``in_features``: ``Q4_1``.

    Made from ``q`` ``(out, in)`` (0 to 15) and ``d``, ``m`` ``(out, in / 32)``, which the
    CPU kernel keeps as float16 (the file's own) and the CUDA one rounds to ``dtype``, the
    dtype the input must have.
    """

    def __init__(self, q: torch.Tensor, d: torch.Tensor, m: torch.Tensor, dtype: torch.dtype, device):
        super().__init__()
        self.out_features, self.in_features = q.shape
        if self.in_features % GROUP:
            raise ValueError(f"in_features={self.in_features} is not a multiple of the group size {GROUP}")
        if q.min() < 0 or q.max() > 15:
            raise ValueError("4-bit weights must lie between 0 and 15")
        device = torch.device(device)
        if device.type == "cuda":
            weight, scales_and_zeros = cuda_int4pack(q, d, m, dtype, device)
            self.register_buffer("scales_and_zeros", scales_and_zeros)
        else:
            kernels.load("int4_mm")
            weight = cpu_tiles(q, d, m).to(device)
        self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """``x @ W.T`` in ``x``'s dtype, or in ``out_dtype`` (float32 keeps the sums' precision)."""
        rows = as_rows(x, self.in_features)
        if rows.is_cuda:
            y = torch.ops.aten._weight_int4pack_mm(rows, self.weight, GROUP, self.scales_and_zeros)[:, : self.out_features]
            y = y.to(out_dtype or y.dtype)
        else:
            y = torch.ops.llama_notes.int4_mm(rows, self.weight, self.out_features, out_dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group={GROUP}"
# --8<-- [end:int4_linear]


class Int8Output(nn.Module):
    """``y = x @ W.T`` with ``W = d*q``, ``q`` 8-bit in groups of 32: ``Q8_0``. The logits come
    out in float32: rounded to bfloat16, a logit of 20 would move by up to 0.06.

    On the CPU the package's kernel multiplies by the 8-bit numbers in one pass
    (``int8_mm``). On CUDA the layer goes through PyTorch's 4-bit kernel: each number is
    split as ``q = 16*hi + lo`` into two exact 4-bit products.
    """

    def __init__(self, q: torch.Tensor, d: torch.Tensor, dtype: torch.dtype, device):
        super().__init__()
        self.out_features, self.in_features = q.shape
        device = torch.device(device)
        if device.type == "cuda":
            q = q.to(torch.int16)
            lo, hi = q & 0x0F, q >> 4  # q = 16*hi + lo; >> rounds down, so hi is -8 to 7
            d = d.float()  # 16d and -128d are as exact as d: powers of two
            self.high = Int4Linear(hi + 8, 16 * d, -128 * d, dtype, device)  # 16d*(hi + 8) - 128d = 16d*hi
            self.low = Int4Linear(lo, d, torch.zeros_like(d), dtype, device)
        else:
            kernels.load("int4_mm")
            self.register_buffer("weight", cpu_tiles(q, d, None, bits=8).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            return self.high(x, torch.float32) + self.low(x, torch.float32)
        rows = as_rows(x, self.in_features)
        y = torch.ops.llama_notes.int8_mm(rows, self.weight, self.out_features, torch.float32)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, Q8_0"


class Int8Embedding(nn.Module):
    """Rows of a ``Q8_0`` matrix ``W = d*q``, dequantized as they are looked up."""

    def __init__(self, q: torch.Tensor, d: torch.Tensor, dtype: torch.dtype, device):
        super().__init__()
        self.register_buffer("q", q.to(device))
        self.register_buffer("d", d.to(device=device, dtype=dtype))

    def extra_repr(self) -> str:
        return f"{self.q.shape[0]}, {self.q.shape[1]}, Q8_0"

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q, d = self.q[tokens], self.d[tokens]  # (..., dim), (..., dim / 32)
        return (q.unflatten(-1, (-1, GROUP)).to(d.dtype) * d.unsqueeze(-1)).flatten(-2)


def _q4_1(file: GGUFFile, names: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The blocks of one or more ``Q4_1`` matrices stacked along their output features."""
    for name in names:
        if file.quant_type(name) != GGMLQuantizationType.Q4_1:
            raise ValueError(f"{name} is {file.quant_type(name).name} in {file.path.name}; q4 loads Q4_1 blocks")
    parts = [q4_1_blocks(file.raw(name)) for name in names]
    return tuple(torch.cat(t) for t in zip(*parts))


def quantize_from_gguf(model: nn.Module, file: GGUFFile, device: torch.device) -> None:
    """Give ``model`` (a :class:`~llama_notes.model.Transformer`, on any device) the linear
    layers and the embedding of ``file`` as the file stores them, on ``device``. Its
    norms are left for the caller: they are float in every format."""
    from llama_notes.checkpoint import LINEARS  # the fused layers and their GGUF parts

    dtype = ACTIVATION_DTYPE
    for i, layer in enumerate(model.layers):
        for name, (parts, _hf) in LINEARS.items():
            parent, attr = name.split(".")
            q, d, m = _q4_1(file, [f"blk.{i}.{p}.weight" for p in parts])
            setattr(getattr(layer, parent), attr, Int4Linear(q, d, m, dtype, device))
    if file.quant_type("token_embd.weight") != GGMLQuantizationType.Q8_0:
        raise ValueError(f"token_embd.weight is {file.quant_type('token_embd.weight').name}; q4 expects Q8_0")
    q, d = q8_0_blocks(file.raw("token_embd.weight"))
    model.tok_embeddings = Int8Embedding(q, d, dtype, device)
    if not file.tied_output():
        raise ValueError(f"{file.path.name} has its own output layer; q4 supports the tied one (SmolLM2's)")
    model.output = Int8Output(q, d, dtype, device)
