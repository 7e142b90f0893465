"""bfloat16 weights on the CPU: the package's kernel (``bf16_mm.cpp``) against exact sums,
and the loader's bfloat16 models built on it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llama_notes import bf16, kernels
from llama_notes.checkpoint import load
from llama_notes.tiny import tiny_hf_model


@pytest.fixture(autouse=True, scope="module")
def kernel():
    kernels.load("bf16_mm")


def exact_bound(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x @ w.T`` in float64, and how far a bfloat16 result may lie from it: the products of
    two bfloat16 numbers are exact in float32, K float32 additions err by at most
    K * 2^-24 * sum |x w|, and the result is rounded once to bfloat16 (2^-8)."""
    exact = x.double() @ w.double().t()
    magnitude = x.double().abs() @ w.double().abs().t()
    return exact, 2.0**-8 * exact.abs() + (1 + 2.0**-8) * x.shape[-1] * 2.0**-24 * magnitude


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shape", [(13, 100), (960, 576)])
def test_bf16_mm_is_the_product_rounded_once(rows, shape):
    """1 to 4 rows take the kernel (in_features=100 ends in a part-filled step of 32,
    out_features=13 in a part-filled group of 4 rows); 7 rows, a prompt's, take ATen's
    product."""
    torch.manual_seed(rows)
    w = torch.randn(shape).bfloat16()
    x = torch.randn(rows, shape[1]).bfloat16()
    y = torch.ops.llama_notes.bf16_mm(x, w)
    exact, bound = exact_bound(x, w)
    assert y.dtype == torch.bfloat16 and y.shape == (rows, shape[0])
    assert ((y.double() - exact).abs() <= bound).all()
    if rows > 4:
        assert torch.equal(y, F.linear(x, w))


def test_the_layer_takes_any_leading_shape_and_says_what_is_wrong():
    w = torch.randn(8, 64).bfloat16()
    layer = bf16.BFloat16Linear(w)
    x = torch.randn(2, 1, 64).bfloat16()
    assert torch.equal(layer(x), torch.ops.llama_notes.bf16_mm(x.reshape(2, 64), w).reshape(2, 1, 8))
    with pytest.raises(ValueError, match="x has 32 features; this layer takes 64"):
        layer(torch.ones(1, 32, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="x must be bfloat16, got Float"):
        torch.ops.llama_notes.bf16_mm(torch.ones(1, 64), w)
    with pytest.raises(ValueError, match="weight must be a contiguous bfloat16 matrix"):
        torch.ops.llama_notes.bf16_mm(torch.ones(1, 8, dtype=torch.bfloat16), w.t())
    with pytest.raises(ValueError, match="BFloat16Linear takes a 2-D bfloat16 weight on the CPU, got torch.float32"):
        bf16.BFloat16Linear(torch.ones(8, 64))


def test_a_bfloat16_model_on_the_cpu_multiplies_with_the_kernel():
    """Every linear layer of a bfloat16 model is the kernel's, with the same weights; the
    logits stay within bfloat16's rounding of the float32 model's."""
    hf = tiny_hf_model()
    model, reference = load(hf, "bf16"), load(hf, "fp32")
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert torch.equal(model.layers[0].feed_forward.w2.weight, reference.layers[0].feed_forward.w2.weight.bfloat16())
    tokens = torch.tensor([[1, 5, 9, 2, 7]])
    logits, expected = model(tokens, 0), reference(tokens, 0)
    assert logits.dtype == torch.float32
    assert (logits - expected).abs().max() < 0.05 * expected.abs().max()
