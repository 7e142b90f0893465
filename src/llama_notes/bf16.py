"""bfloat16 weights on the CPU, multiplied by the package's own kernel.

A batch-1 token multiplies one row of activations by every matrix, so its time is the
time to read the weights, and bfloat16 halves their bytes. But PyTorch's ``F.linear`` of
one bfloat16 row reads them well below the speed of memory (its kernels are made for
larger products), and TorchInductor's templates do not make up the difference. So on the
CPU a bfloat16 model's linear layers are :class:`BFloat16Linear`: ``bf16_mm.cpp``
(compiled on first use by :mod:`llama_notes.kernels`) streams the weights as stored,
``(out_features, in_features)``, and multiplies them with AVX512-BF16 where the processor
has it; prompts, and processors without it, go to PyTorch's own product. On a GPU the
layers stay ``nn.Linear``.
"""

from __future__ import annotations

import torch
from torch import nn

from llama_notes import kernels
from llama_notes.quant import as_rows


class BFloat16Linear(nn.Module):
    """``y = x @ W.T`` for bfloat16 ``x`` and ``W`` ``(out_features, in_features)``, on the CPU."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        if weight.dtype != torch.bfloat16 or weight.dim() != 2 or weight.device.type != "cpu":
            raise ValueError(f"BFloat16Linear takes a 2-D bfloat16 weight on the CPU, got {weight.dtype} {tuple(weight.shape)} on {weight.device}")
        kernels.load("bf16_mm")
        self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.llama_notes.bf16_mm(as_rows(x, self.in_features), self.weight)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def use_kernel(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` (bfloat16, on the CPU) by a :class:`BFloat16Linear`
    with the same weight; returns ``model``."""
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear):
            if module.bias is not None:
                raise ValueError(f"{name} has a bias; BFloat16Linear multiplies without one")
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, BFloat16Linear(module.weight.detach()))
    return model
