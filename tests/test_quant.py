"""4-bit weights straight from the GGUF file: the file's own numbers, in PyTorch's kernels.

The packed layers are read back through their own kernel (multiplying the identity
matrix gives the matrix) and compared with ``gguf.quants.dequantize`` of the same
tensor, within the rounding the format allows and no more.
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
def test_packed_weights_are_the_files_within_the_rounding_of_the_scales(smollm2_gguf, dtype):
    """The kernel computes W' = scale*(q - 8) + zero with scale = d and zero = m + 8d rounded
    to the activation dtype (unit roundoff u), then the product is rounded to it once more.
    So |W' - W| <= u * (8|d| + |m + 8d|) + u * |W'|, weight by weight, and nothing looser."""
    name = "blk.7.attn_output.weight"
    q, d, m = quant.q4_1_blocks(smollm2_gguf.raw(name))
    layer = quant.Int4Linear.from_q4_1(q, d, m, dtype, "cpu")
    packed = read_back(layer, 576, dtype)
    exact = torch.from_numpy(dequantize(smollm2_gguf.raw(name), smollm2_gguf.quant_type(name)))
    u = UNIT[dtype]
    bound = u * (8 * per_weight(d).abs() + (per_weight(m) + 8 * per_weight(d)).abs() + packed.abs())
    assert ((packed - exact).abs() <= bound).all()


def test_the_8_bit_output_layer_is_the_files_q8_0_numbers(tiny):
    """The tied output layer multiplies by Q8_0's d*q as two 4-bit products (hi + 8, lo); the tiny
    vocabulary (99) is not a multiple of 16 either, so the kernels' padding is exercised."""
    q, d = quant.q8_0_blocks(tiny.raw("token_embd.weight"))
    exact = tiny.dequantized("token_embd.weight")
    assert torch.equal(per_weight(d) * q.float(), exact)
    for dtype in (torch.bfloat16, torch.float32):
        output = quant.Int8Output(q, d, dtype, "cpu")
        packed = read_back(output, 64, dtype)
        assert packed.shape == exact.shape == (99, 64)
        u = UNIT[dtype]  # scales 16d and d, zero 8d, two rounded products and their rounded sum
        bound = u * (16 * 8 * per_weight(d).abs() + 8 * per_weight(d).abs() + 2 * packed.abs() + 8 * per_weight(d).abs())
        assert ((packed - exact).abs() <= bound).all()


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
    assert q4.layers[0].attention.cache_k.dtype == quant.ACTIVATION_DTYPE
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
