"""compile_decoding on the tiny float32 model.

The compiled one-token step is the same code path for any Llama; the tiny model
compiles in seconds where SmolLM2 takes minutes, so the equivalence is tested here
(one prompt, whose step AOTInductor compiles ahead of time, and a batch, whose step
Dynamo compiles with frozen weights).
test_smollm2.py keeps one compiled check on the real model, through the CLI.
"""

import pytest
import torch
from torch._dynamo.utils import counters

from llama_notes.generation import Llama
from llama_notes.checkpoint import load
from llama_notes.compiling import compile_decoding
from llama_notes.tiny import tiny_hf_model, tiny_hf_tokenizer
from llama_notes.tokenizer import Tokenizer
from hf_reference import hf_greedy

PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [20] * 9]


@pytest.fixture(scope="module")
def hf():
    return tiny_hf_model(torch.float32)


def _llama(hf, compile: bool) -> Llama:
    model = load(hf, max_seq_len=48, max_batch_size=4)
    return Llama(compile_decoding(model) if compile else model, Tokenizer(tiny_hf_tokenizer()))


@pytest.fixture(scope="module")
def compiled(hf):
    torch._dynamo.reset()
    counters.clear()
    return _llama(hf, compile=True)


def test_compiled_steps_match_op_by_op(hf, compiled):
    """Same tolerance as prefill against steps on SmolLM2: fused kernels only add in another order."""
    eager = _llama(hf, compile=False)
    tokens = torch.tensor([PROMPTS[0] + [30, 31, 32, 33, 34]])
    steps = {}
    for name, llama in (("eager", eager), ("compiled", compiled)):
        llama.model(tokens[:, :4], 0)
        steps[name] = torch.cat([llama.model(tokens[:, i : i + 1], i) for i in range(4, tokens.shape[1])], dim=1)
    # Seven steps at seven positions went through one step compiled ahead of time (the
    # position is an input), and none through Dynamo.
    assert compiled.model.decode_step.one_row.compiles == 1
    assert counters["stats"]["unique_graphs"] == 0
    assert eager.model.decode_step is None
    assert (steps["compiled"] - steps["eager"]).abs().max() < 1e-4


def test_compiled_greedy_equals_hf_generate(hf, compiled):
    """One prompt, then a batch of prompts of different lengths: the two compiled steps."""
    expected = [hf_greedy(hf, prompt, 12, compiled.tokenizer.eos_id) for prompt in PROMPTS]
    assert compiled.generate(PROMPTS[:1], max_gen_len=12, temperature=0)[0] == expected[:1]
    graphs = counters["stats"]["unique_graphs"]
    assert compiled.generate(PROMPTS, max_gen_len=12, temperature=0)[0] == expected
    assert counters["stats"]["unique_graphs"] == graphs + 1  # the batch step compiled apart, by Dynamo


def test_new_caches_bind_the_compiled_step_again(hf, compiled):
    """setup_caches() gives the model new KV-cache tensors: the one-row step, which writes the
    model's own cache in place, takes them, loading the package it compiled before."""
    expected = hf_greedy(hf, PROMPTS[2], 12, compiled.tokenizer.eos_id)
    step = compiled.model.decode_step.one_row
    before, package = step.compiles, step.path
    written = package.stat().st_ino  # a compile renames a new package into place
    compiled.model.setup_caches()
    assert compiled.generate(PROMPTS[2:], max_gen_len=12, temperature=0)[0] == [expected]
    assert step.compiles == before + 1
    assert step.path == package and package.stat().st_ino == written  # not compiled anew


def test_a_model_of_the_same_shape_finds_the_step_without_exporting(hf, compiled, monkeypatch):
    """A second model loads the package the first compiled, found through what the export
    depends on; exporting the step again (5-6 s for SmolLM2) is needed for neither."""
    step = compiled.model.decode_step.one_row
    expected = compiled.generate(PROMPTS[:1], max_gen_len=12, temperature=0)[0]
    export, exports = torch.export.export, []
    monkeypatch.setattr(torch.export, "export", lambda *args, **kwargs: exports.append(args) or export(*args, **kwargs))
    again = _llama(hf, compile=True)
    assert again.generate(PROMPTS[:1], max_gen_len=12, temperature=0)[0] == expected
    assert again.model.decode_step.one_row.path == step.path
    assert exports == []


def test_the_step_binds_again_only_when_one_of_its_tensors_changes(compiled):
    """A change to a dict that holds the step's tensors makes the step look at them again; it
    binds again only if one of them is no longer the tensor it was given."""
    step, attention = compiled.model.decode_step.one_row, compiled.model.layers[0].attention
    compiled.generate(PROMPTS[:1], max_gen_len=3, temperature=0)
    before = step.compiles
    attention.register_buffer("unused", torch.zeros(1), persistent=False)  # same dict, same tensors
    compiled.generate(PROMPTS[:1], max_gen_len=3, temperature=0)
    assert step.compiles == before
    del attention._buffers["unused"]
    attention.wo.weight = torch.nn.Parameter(attention.wo.weight.detach().clone())  # same numbers, another tensor
    compiled.generate(PROMPTS[:1], max_gen_len=3, temperature=0)
    assert step.compiles == before + 1


@pytest.mark.parametrize("weights", ["q4", "bf16"])
def test_a_4_bit_or_bfloat16_model_compiles_too(tmp_path, weights):
    """compile=True composes with q4 and bf16: the step of the tiny GGUF model (and in 4 bits
    its prompt), their matrix products the package's kernels, compile once each and write
    the op-by-op model's greedy tokens, for prompts of three lengths."""
    from llama_notes.tiny import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    eager = Llama(load(path, weights, max_seq_len=48, max_batch_size=1), Tokenizer(tiny_hf_tokenizer()))
    compiled = Llama(compile_decoding(load(path, weights, max_seq_len=48, max_batch_size=1)), eager.tokenizer)
    torch._dynamo.reset()
    counters.clear()
    for prompt in PROMPTS:  # three lengths: one compiled prompt serves them all
        expected = eager.generate([prompt], max_gen_len=12, temperature=0)[0]
        assert compiled.generate([prompt], max_gen_len=12, temperature=0)[0] == expected
    assert compiled.model.decode_step.one_row.compiles == 1
    if weights == "q4":  # the prompt of a 4-bit model is compiled too
        assert compiled.model.prefill_step.one_row.compiles == 1
    else:
        assert compiled.model.prefill_step is None
    assert counters["stats"]["unique_graphs"] == 0  # ahead of time, not through Dynamo


def test_attention_as_sums_is_scaled_dot_product_attention():
    """The compiled step's attention, written out, gives PyTorch's fused attention: one query
    row (the step) and a masked prompt, each key/value head serving 3 query heads."""
    from llama_notes.aot_step import attention_as_sums

    gen = torch.Generator().manual_seed(0)
    key, value = torch.randn(2, 2, 7, 8, generator=gen), torch.randn(2, 2, 7, 8, generator=gen)
    for seqlen in (1, 4):
        query = torch.randn(2, 6, seqlen, 8, generator=gen)
        mask = torch.randn(seqlen, 7, generator=gen) if seqlen > 1 else None
        expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, enable_gqa=True)
        torch.testing.assert_close(attention_as_sums(query, key, value, mask, enable_gqa=True), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="is_causal"):
        attention_as_sums(query, key, value, is_causal=True)
    with pytest.raises(ValueError, match="enable_gqa"):
        attention_as_sums(query, key, value)
    with pytest.raises(TypeError, match="torch.bool"):
        attention_as_sums(query, key, value, torch.ones(4, 7, dtype=torch.bool))
