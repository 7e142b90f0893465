"""4-bit weights as the GGUF file stores them, multiplied by PyTorch's own 4-bit kernels.

llama.cpp's ``Q4_1`` keeps a matrix in blocks of 32 weights along a row: two float16
numbers ``d`` and ``m``, then 32 unsigned 4-bit integers ``q``, and each weight is
``w = d*q + m`` (20 bytes for 32 weights: 5 bits a weight). PyTorch's int4 kernels
(``_weight_int4pack_mm_for_cpu``, ``_weight_int4pack_mm`` on CUDA) take the same kind
of groups: ``q`` from 0 to 15, and a scale and a zero point per group of 32 in
``w = scale*(q - 8) + zero``. Since ``d*q + m = d*(q - 8) + (m + 8d)``, the blocks go in
unchanged with ``scale = d`` and ``zero = m + 8d``: the model multiplies by the file's
own 4-bit numbers, and only ``d`` and ``m + 8d`` are rounded, to the activations' dtype.

The token embedding is ``Q8_0``: blocks of 32 signed 8-bit ``q`` and one float16 ``d``,
``w = d*q`` (8.5 bits a weight). Looking a token up dequantizes its row. SmolLM2 ties its
output layer to the embedding; the output multiplies by the same 8-bit numbers, split
as ``q = 16*hi + lo`` (``lo`` from 0 to 15, ``hi`` from -8 to 7) into two 4-bit
products: ``hi + 8`` with ``scale = 16d, zero = 0`` and ``lo`` with ``scale = d,
zero = 8d``.

PyTorch's 4-bit CPU kernel has its fast path for bfloat16 activations only (with
float32 ones it is an order of magnitude slower), so a 4-bit model computes in
bfloat16 (:data:`ACTIVATION_DTYPE`).
"""

from __future__ import annotations

import numpy as np
import torch
from gguf import GGMLQuantizationType
from torch import nn

from llama_notes.gguf_file import GGUFFile

GROUP = 32  # weights per block, in llama.cpp's formats and in the kernels' groups
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


def pack_int4(q: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``q`` ``(out, in)``, values 0 to 15, in the packed layout of the device's int4 kernel."""
    if device.type == "cuda":
        pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)  # two weights a byte, the even one high
        return torch.ops.aten._convert_weight_to_int4pack(pairs.to(device), CUDA_INNER_K_TILES)
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1).to(device)


# --8<-- [start:int4_linear]
class Int4Linear(nn.Module):
    """``y = x @ W.T`` with ``W = scale*(q - 8) + zero`` in groups of 32 along ``in_features``.

    Made from ``q`` ``(out, in)`` (0 to 15) and ``scale``, ``zero`` ``(out, in / 32)``;
    the float arguments are rounded to ``dtype``, the dtype the input must have.
    """

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, dtype: torch.dtype, device):
        super().__init__()
        self.out_features, self.in_features = q.shape
        if self.in_features % GROUP:
            raise ValueError(f"in_features={self.in_features} is not a multiple of the group size {GROUP}")
        if q.min() < 0 or q.max() > 15:
            raise ValueError("4-bit weights must lie between 0 and 15")
        # The kernels take a multiple of 16 output features: extra rows of zero weights
        # (q = 8, zero = 0) give outputs that forward cuts off.
        pad = -self.out_features % 16
        q = torch.cat([q, torch.full((pad, self.in_features), 8, dtype=q.dtype)])
        scale, zero = (torch.cat([t.float(), t.new_zeros(pad, t.shape[1], dtype=torch.float32)]) for t in (scale, zero))
        device = torch.device(device)
        self.register_buffer("weight", pack_int4(q, device))
        # (in / 32, out, 2): the kernels' layout of the groups' (scale, zero) pairs
        scales_and_zeros = torch.stack([scale.float().t(), zero.float().t()], dim=-1)
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(device=device, dtype=dtype).contiguous())

    @classmethod
    def from_q4_1(cls, q: torch.Tensor, d: torch.Tensor, m: torch.Tensor, dtype: torch.dtype, device) -> "Int4Linear":
        """The ``Q4_1`` blocks ``(q, d, m)`` as they are: ``d*q + m = d*(q - 8) + (m + 8d)``."""
        return cls(q, d, m.float() + 8 * d.float(), dtype, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.is_cuda:
            y = torch.ops.aten._weight_int4pack_mm(rows, self.weight, GROUP, self.scales_and_zeros)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.weight, GROUP, self.scales_and_zeros)
        if y.shape[-1] != self.out_features:
            y = y[:, : self.out_features]
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group={GROUP}"
# --8<-- [end:int4_linear]


class Int8Output(nn.Module):
    """``y = x @ W.T`` with ``W = d*q``, ``q`` 8-bit in groups of 32: the ``Q8_0`` numbers as
    two 4-bit products, ``q = 16*hi + lo``."""

    def __init__(self, q: torch.Tensor, d: torch.Tensor, dtype: torch.dtype, device):
        super().__init__()
        q = q.to(torch.int16)
        lo, hi = q & 0x0F, q >> 4  # q = 16*hi + lo; >> rounds down, so hi is -8 to 7
        d = d.float()
        self.high = Int4Linear(hi + 8, 16 * d, torch.zeros_like(d), dtype, device)
        self.low = Int4Linear(lo, d, 8 * d, dtype, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.high(x) + self.low(x)

    def extra_repr(self) -> str:
        return f"in_features={self.low.in_features}, out_features={self.low.out_features}, Q8_0 as two 4-bit halves"


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
            setattr(getattr(layer, parent), attr, Int4Linear.from_q4_1(q, d, m, dtype, device))
    if file.quant_type("token_embd.weight") != GGMLQuantizationType.Q8_0:
        raise ValueError(f"token_embd.weight is {file.quant_type('token_embd.weight').name}; q4 expects Q8_0")
    q, d = q8_0_blocks(file.raw("token_embd.weight"))
    model.tok_embeddings = Int8Embedding(q, d, dtype, device)
    if not file.tied_output():
        raise ValueError(f"{file.path.name} has its own output layer; q4 supports the tied one (SmolLM2's)")
    model.output = Int8Output(q, d, dtype, device)
