"""4-bit weights straight from the GGUF file: the file's own numbers, in the package's CPU kernel.

The packed layers are read back through their own kernel (multiplying the identity
matrix gives the matrix) and compared with ``gguf.quants.dequantize`` of the same
tensor: exactly in float32, within one rounding in bfloat16.
"""

import pytest
import torch
from gguf.quants import dequantize

from llama_notes import quant
from llama_notes.checkpoint import load
from llama_notes.gguf_file import GGUFFile
from llama_notes.tiny import tiny_hf_model, write_tiny_gguf

# Unit roundoff (half an ulp, relative: 2^-p for p significand bits) of the activation dtypes
UNIT = {torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return GGUFFile(write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf"))


def read_back(layer, in_features: int, dtype: torch.dtype) -> torch.Tensor:
    """The matrix ``(out, in)`` a layer multiplies by, as its kernel computes it: ``layer(I).T``."""
    return layer(torch.eye(in_features, dtype=dtype)).t().float()


def per_weight(t: torch.Tensor) -> torch.Tensor:
    return t.float().repeat_interleave(quant.GROUP, dim=1)  # one value per block -> one per weight


def test_q4_1_blocks_are_the_files_numbers(smollm2_gguf):
    name = "blk.7.ffn_down.weight"
    q, d, m = quant.q4_1_blocks(smollm2_gguf.raw(name))
    assert q.shape == (576, 1536) and q.min() == 0 and q.max() == 15
    assert torch.equal(per_weight(d) * q.float() + per_weight(m), smollm2_gguf.dequantized(name))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_packed_weights_are_the_files_numbers(smollm2_gguf, dtype):
    """The CPU kernel multiplies by d*q + m with the file's own float16 d and m. Read back in
    float32 (the portable loop) that is gguf's dequantized weight exactly: both round d*q + m
    once. In bfloat16 the one-hot input becomes 32767 times a scale of 1/32767 (a few 2^-24 of
    relative error), and the result is rounded to bfloat16 (u = 2^-8): |W' - W| <= u*|W| +
    2^-21 * (|d*q| + |m|), weight by weight."""
    name = "blk.7.attn_output.weight"
    q, d, m = quant.q4_1_blocks(smollm2_gguf.raw(name))
    layer = quant.Int4Linear(q, d, m, dtype, "cpu")
    packed = read_back(layer, 576, dtype)
    exact = torch.from_numpy(dequantize(smollm2_gguf.raw(name), smollm2_gguf.quant_type(name)))
    if dtype == torch.float32:
        assert torch.equal(packed, exact)
    else:
        terms = (per_weight(d) * q.float()).abs() + per_weight(m).abs()
        assert ((packed - exact).abs() <= UNIT[dtype] * exact.abs() + 2.0**-21 * terms).all()
        assert not torch.equal(packed, exact)  # bfloat16 does round: the bound is not idle


def test_the_8_bit_output_layer_is_the_files_q8_0_numbers(tiny):
    """The tied output layer multiplies by Q8_0's d*q in one pass of 8-bit tiles; the tiny
    vocabulary (99) is not a multiple of 4 either, so the kernel's padding is exercised. Read
    back in float32 that is the file's d*q exactly (19 significant bits); in bfloat16 the
    one-hot input becomes 32767 times a scale of 1/32767, and the float32 logits are within
    a few 2^-24 of it, relative."""
    q, d = quant.q8_0_blocks(tiny.raw("token_embd.weight"))
    exact = tiny.dequantized("token_embd.weight")
    assert torch.equal(per_weight(d) * q.float(), exact)
    for dtype in (torch.bfloat16, torch.float32):
        output = quant.Int8Output(q, d, dtype, "cpu")
        packed = read_back(output, 64, dtype)
        assert packed.shape == exact.shape == (99, 64) and packed.dtype == torch.float32
        if dtype == torch.float32:
            assert torch.equal(packed, exact)
        else:
            assert ((packed - exact).abs() <= 2.0**-21 * exact.abs()).all()


def test_the_8_bit_embedding_looks_up_the_files_rows(tiny):
    q, d = quant.q8_0_blocks(tiny.raw("token_embd.weight"))
    embedding = quant.Int8Embedding(q, d, torch.float32, "cpu")
    tokens = torch.tensor([[3, 98, 0], [41, 41, 7]])
    assert torch.equal(embedding(tokens), tiny.dequantized("token_embd.weight")[tokens])


def test_a_q4_model_is_the_float_model_of_the_same_file(tiny):
    """Loaded as q4 or as float32, the tiny file gives one model: the same layers, and the
    same greedy next tokens where float32 is not torn between two (margin > 0.5)."""
    q4 = load(tiny, "q4", max_seq_len=32, max_batch_size=2)
    fp32 = load(tiny, "fp32", max_seq_len=32, max_batch_size=2)
    assert isinstance(q4.layers[0].attention.wqkv, quant.Int4Linear)
    assert q4.norm.weight.dtype == quant.ACTIVATION_DTYPE
    assert q4.layers[0].attention.cache_k.dtype == torch.float32  # attention in float32 on the CPU
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [40, 41, 42, 43, 44, 45, 46, 47]])
    a, b = q4(tokens, 0), fp32(tokens, 0)
    assert a.dtype == torch.float32
    top2 = b.topk(2, dim=-1).values
    clear = top2[..., 0] - top2[..., 1] > 0.5
    assert clear.sum() > 8
    assert torch.equal(a.argmax(-1)[clear], b.argmax(-1)[clear])


def test_q4_needs_the_files_blocks():
    with pytest.raises(ValueError, match="q4 weights are the 4-bit blocks of a GGUF file"):
        load(tiny_hf_model(torch.float32), "q4")
    with pytest.raises(ValueError, match="weights='int3' is not a weight format"):
        load(tiny_hf_model(torch.float32), "int3")


def test_a_layer_refuses_what_the_kernels_cannot_take():
    q = torch.full((16, 48), 3)
    with pytest.raises(ValueError, match="not a multiple of the group size 32"):
        quant.Int4Linear(q, torch.ones(16, 1), torch.zeros(16, 1), torch.bfloat16, "cpu")
    with pytest.raises(ValueError, match="between 0 and 15"):
        quant.Int4Linear(torch.full((16, 32), 16), torch.ones(16, 1), torch.zeros(16, 1), torch.bfloat16, "cpu")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_cpu_kernel_multiplies_by_the_blocks_in_any_shape(dtype):
    """13 output rows (not whole tiles of 4), 96 inputs (one block past whole pairs), a batch of
    prompts (2, 3, 96): against the product in float64. A float32 input is multiplied in float32
    (error within the sums' rounding, 96 * 2^-24 of sum |w*x|); a bfloat16 one as 16-bit
    integers per block (within amax / 65534 per activation, summed over |w|), and the result is
    then rounded once to the output dtype."""
    torch.manual_seed(0)
    q = torch.randint(0, 16, (13, 96))
    d, m = (torch.rand(13, 3) * 0.02).half(), (torch.randn(13, 3) * 0.05).half()
    W = per_weight(d).double() * q.double() + per_weight(m).double()
    layer = quant.Int4Linear(q, d, m, dtype, "cpu")
    x = (torch.randn(2, 3, 96) * torch.logspace(-2, 1, 96)).to(dtype)  # blocks of very different sizes
    exact = x.double() @ W.t()
    magnitude = x.double().abs() @ W.abs().t()
    if dtype == torch.float32:
        within = 96 * 2.0**-24 * magnitude
    else:
        amax = x.double().abs().unflatten(-1, (3, 32)).amax(-1)  # (2, 3, blocks)
        within = (amax / 65534) @ W.abs().unflatten(-1, (3, 32)).sum(-1).t() + 96 * 2.0**-24 * magnitude
    for out_dtype in (None, torch.float32):
        y = layer(x, out_dtype)
        assert y.shape == (2, 3, 13) and y.dtype == (out_dtype or dtype)
        u = UNIT[y.dtype]
        assert ((y.double() - exact).abs() <= within * (1 + u) + u * exact.abs()).all()


def test_the_cpu_kernel_names_what_does_not_fit():
    layer = quant.Int4Linear(torch.full((8, 64), 3), torch.ones(8, 2), torch.zeros(8, 2), torch.bfloat16, "cpu")
    with pytest.raises(ValueError, match="x has 32 features; this layer takes 64"):
        layer(torch.ones(1, 32, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="x has 16 features, the tiles hold 64"):
        torch.ops.llama_notes.int4_mm(torch.ones(1, 16, dtype=torch.bfloat16), layer.weight, 8)
    with pytest.raises(ValueError, match="out_features=9 does not match 2 tiles of 4 rows"):
        torch.ops.llama_notes.int4_mm(torch.ones(1, 64, dtype=torch.bfloat16), layer.weight, 9)
    with pytest.raises(ValueError, match="x and y must be bfloat16 or float32, got Half"):
        layer(torch.ones(1, 64, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"int8_mm: tiles must be a contiguous uint8 tensor \(rows / 4, in / 64, 272\)"):
        torch.ops.llama_notes.int8_mm(torch.ones(1, 64, dtype=torch.bfloat16), layer.weight, 8)  # 4-bit tiles
