"""llama_notes.memory: the estimate behind the 12 GB out-of-memory error.

Every figure is checked against a hand computation written out here, and the
parameter counts also against two real implementations built on the ``meta``
device (no memory used): Hugging Face's ``LlamaForCausalLM`` and our ``Transformer``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from llama_notes.memory import (
    GiB,
    Q4_1,
    Q8_0,
    PRESETS,
    LlamaShape,
    device_memory,
    estimate_memory,
    estimate_shape,
    fit_table,
    fits,
)
from llama_notes.model import ModelArgs, Transformer

RTX_4070 = 12282 * 2**20  # nvidia-smi in seed 004: "666MiB / 12282MiB"

# llama-2-7b by hand: dim 4096, 32 layers, 32 heads of 128, SwiGLU width 11008, vocabulary 32000
LLAMA_2_7B_LAYER = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096  # = 202_383_360
LLAMA_2_7B = 32 * LLAMA_2_7B_LAYER + 2 * 32000 * 4096 + 4096  # = 6_738_415_616
# open_llama_3b: dim 3200, 26 layers, 32 heads of 100, width 8640, vocabulary 32000
OPEN_LLAMA_3B = 26 * (4 * 3200 * 3200 + 3 * 3200 * 8640 + 2 * 3200) + 2 * 32000 * 3200 + 3200  # = 3_426_473_600
# SmolLM2-135M: dim 576, 30 layers, 9 query heads and 3 key/value heads of 64, width 1536,
# vocabulary 49152, the output layer tied to the embedding (counted once)
SMOLLM2_LAYER = 576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536 + 2 * 576  # wq wo, wk wv, w1 w2 w3, norms
SMOLLM2 = 30 * SMOLLM2_LAYER + 49152 * 576 + 576  # = 134_515_008


def test_hand_computations_are_the_published_sizes():
    assert LLAMA_2_7B == 6_738_415_616  # "6.74B"
    assert OPEN_LLAMA_3B == 3_426_473_600  # "3.43B"
    assert SMOLLM2 == 134_515_008  # "135M"


@pytest.mark.parametrize(
    "name, expected", [("llama-2-7b", LLAMA_2_7B), ("open_llama_3b", OPEN_LLAMA_3B), ("SmolLM2-135M", SMOLLM2)]
)
def test_preset_parameter_counts(name, expected):
    assert PRESETS[name].n_params == expected


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_count_equals_hugging_face_model(name):
    from transformers import LlamaConfig, LlamaForCausalLM

    s = PRESETS[name]
    config = LlamaConfig(
        hidden_size=s.dim, num_hidden_layers=s.n_layers, num_attention_heads=s.n_heads,
        num_key_value_heads=s.n_kv_heads, vocab_size=s.vocab_size, intermediate_size=s.hidden_dim,
        tie_word_embeddings=s.tie_embeddings,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert s.n_params == sum(p.numel() for p in model.parameters())


def _meta_transformer(s: LlamaShape, max_seq_len: int, max_batch_size: int) -> Transformer:
    args = ModelArgs(dim=s.dim, n_layers=s.n_layers, n_heads=s.n_heads, n_kv_heads=s.n_kv_heads,
                     vocab_size=s.vocab_size, hidden_dim=s.hidden_dim,
                     max_seq_len=max_seq_len, max_batch_size=max_batch_size)
    with torch.device("meta"):
        return Transformer(args)


@pytest.mark.parametrize("name", list(PRESETS))
def test_estimate_equals_what_our_transformer_allocates(name):
    s = PRESETS[name]
    model = _meta_transformer(s, max_seq_len=128, max_batch_size=4).to(torch.float16).setup_caches()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    cache = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if "cache" in n)
    untied = dataclasses.replace(s, tie_embeddings=False)  # our Transformer never ties the output
    estimate = estimate_shape(untied, torch.float16, max_seq_len=128, max_batch_size=4)
    assert (estimate.weights, estimate.kv_cache) == (weights, cache)


def test_smollm2_preset_matches_its_gguf_file(smollm2_gguf):
    reader = smollm2_gguf.reader
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("llama.")}
    s = PRESETS["SmolLM2-135M"]
    assert (s.dim, s.n_layers, s.n_heads, s.n_kv_heads, s.hidden_dim, s.vocab_size) == (
        meta["llama.embedding_length"], meta["llama.block_count"], meta["llama.attention.head_count"],
        meta["llama.attention.head_count_kv"], meta["llama.feed_forward_length"], meta["llama.vocab_size"],
    )
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied: no separate output layer
    assert s.n_params == sum(int(t.n_elements) for t in reader.tensors)


def test_llama_2_7b_float16_does_not_fit_a_12_gb_card():
    e = estimate_shape("llama-2-7b", torch.float16, max_seq_len=128, max_batch_size=4)  # the seed's command
    assert e.weights == LLAMA_2_7B * 2 == 13_476_831_232  # 13.48 GB, 12.55 GiB
    assert e.kv_cache == 2 * 32 * 4 * 128 * 32 * 128 * 2 == 268_435_456  # exactly 256 MiB
    assert e.total == 13_745_266_688
    assert e.weights > RTX_4070  # the weights alone are too big, whatever the cache
    assert not fits(e, RTX_4070)


def test_open_llama_3b_float16_and_smollm2_fit():
    e = estimate_shape("open_llama_3b", torch.float16, max_seq_len=128, max_batch_size=4)
    assert (e.weights, e.kv_cache) == (OPEN_LLAMA_3B * 2, 2 * 26 * 4 * 128 * 32 * 100 * 2)
    assert fits(e, RTX_4070)
    s = estimate_shape("SmolLM2-135M", torch.float32, max_seq_len=128, max_batch_size=4)
    assert (s.weights, s.kv_cache) == (SMOLLM2 * 4, 2 * 30 * 4 * 128 * 3 * 64 * 4)
    assert fits(s, RTX_4070)


def test_fits_is_inclusive():
    e = estimate_memory(10, torch.float32, n_layers=1, n_kv_heads=1, head_dim=1, max_seq_len=1, max_batch_size=1)
    assert e.total == 10 * 4 + 2 * 4
    assert fits(e, 48) and not fits(e, 47)


def test_explanation_shows_the_computation():
    e = estimate_shape("llama-2-7b", torch.float16, max_seq_len=128, max_batch_size=4)
    assert e.explanation.splitlines() == [
        "weights:  6,738,415,616 params x 2 bytes (torch.float16) = 12.55 GiB (13.48 GB)",
        "KV cache: 2 x 32 layers x 4 batch x 128 positions x 32 kv heads x 128 head_dim x 2 bytes = 0.25 GiB (0.27 GB)",
        "total:    12.80 GiB (13.75 GB), before activations and the CUDA context",
    ]


def test_fit_table_has_one_verdict_per_preset_and_dtype():
    lines = fit_table(RTX_4070, max_seq_len=128, max_batch_size=4).splitlines()
    assert [line.split()[:2] + [line.endswith("does not fit")] for line in lines] == [
        ["llama-2-7b", "float32", True], ["llama-2-7b", "float16", True],
        ["open_llama_3b", "float32", True], ["open_llama_3b", "float16", False],
        ["SmolLM2-135M", "float32", False], ["SmolLM2-135M", "float16", False],
    ]
    assert lines[1].split()[2] == f"{13_745_266_688 / GiB:.2f}"


SIZES = dict(n_layers=32, n_kv_heads=32, head_dim=128, max_seq_len=128, max_batch_size=4)


@pytest.mark.parametrize("name", ["n_params", *SIZES])
def test_negative_sizes_are_rejected(name):
    args = {"n_params": 1000, **SIZES, name: -1}
    with pytest.raises(ValueError, match=f"{name}=-1 is negative"):
        estimate_memory(args.pop("n_params"), torch.float16, **args)


@pytest.mark.parametrize("bad", [1.5, "128", True, None])
def test_non_integer_sizes_are_rejected(bad):
    with pytest.raises(TypeError, match="max_seq_len must be an int"):
        estimate_memory(1000, torch.float16, **{**SIZES, "max_seq_len": bad})


def test_other_bad_input():
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        estimate_memory(1000, "float16", **SIZES)
    with pytest.raises(ValueError, match="unknown model 'llama-3-8b'"):
        estimate_shape("llama-3-8b", torch.float16, 128, 4)
    e = estimate_shape("SmolLM2-135M", torch.float16, 128, 4)
    with pytest.raises(ValueError, match="capacity=-1 is negative"):
        fits(e, -1)
    with pytest.raises(TypeError, match="capacity must be an int"):
        fits(e, 12.0)
    with pytest.raises(ValueError, match="no memory size for device type 'meta'"):
        device_memory(torch.device("meta"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_cpu_memory_is_physical_ram():
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert device_memory(torch.device("cpu")) == int(meminfo["MemTotal"].split()[0]) * 1024


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_memory_is_the_cards_total():
    free, total = torch.cuda.mem_get_info(0)
    assert device_memory(torch.device("cuda", 0)) == total


def test_block_formats_take_the_bytes_of_the_real_file(smollm2_gguf):
    """Q4_1 and Q8_0 as memory.py counts them (5 and 8.5 bits a weight) are the bytes
    SmolLM2's GGUF file stores for its tensors of each format."""
    from gguf import GGMLQuantizationType

    assert (Q4_1.bits, Q8_0.bits) == (5, 8.5)
    for fmt, qtype in ((Q4_1, GGMLQuantizationType.Q4_1), (Q8_0, GGMLQuantizationType.Q8_0)):
        tensors = [t for t in smollm2_gguf.reader.tensors if t.tensor_type == qtype]
        assert tensors
        n_params = sum(int(t.n_elements) for t in tensors)
        estimate = estimate_memory(n_params, fmt, **SIZES)
        assert estimate.weights == sum(int(t.n_bytes) for t in tensors)


def test_llama_2_7b_in_4_bits_fits_the_12_gb_card():
    e = estimate_shape("llama-2-7b", Q4_1, max_seq_len=128, max_batch_size=4)
    assert e.weights == LLAMA_2_7B * 20 // 32 == 4_211_509_760  # 4.21 GB, 3.92 GiB
    assert e.kv_cache == 268_435_456  # float16, as for float16 weights
    assert fits(e, RTX_4070)
    assert e.explanation.splitlines()[0] == (
        "weights:  6,738,415,616 params x 5 bits (Q4_1: 32 weights in 20 bytes) = 3.92 GiB (4.21 GB)"
    )
