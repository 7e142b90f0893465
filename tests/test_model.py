"""llama_notes.model against Hugging Face's LlamaForCausalLM on the same weights.

In float64 the two implementations agree to 1e-10: every difference in structure
(RoPE layout, GQA, the KV cache, masks, norms, tied embeddings, the rope base)
would show up far above that.
"""

import pytest
import torch

from llama_notes.checkpoint import args_from_hf_config, load, unpermute
from llama_notes.model import ModelArgs, Transformer, precompute_rope
from llama_notes.tiny import tiny_config, tiny_hf_model

TOL = 1e-10


@pytest.fixture(scope="module")
def hf():
    return tiny_hf_model(torch.float64)


@pytest.fixture(scope="module")
def model(hf):
    return load(hf, max_seq_len=64, max_batch_size=4)


@pytest.fixture(scope="module")
def tokens(hf):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, hf.config.vocab_size, (3, 17), generator=g)


def hf_logits(hf, tokens):
    with torch.no_grad():
        return hf(tokens).logits


def test_full_sequence_logits_match_hf(hf, model, tokens):
    ours = model(tokens, 0)
    assert ours.dtype == torch.float64
    assert ours.shape == (3, 17, hf.config.vocab_size)
    assert (ours - hf_logits(hf, tokens)).abs().max() < TOL


def test_last_only_gives_the_last_positions_logits(hf, model, tokens):
    """last_only applies the output layer to the last position alone: the same logits."""
    last = model(tokens[:, :9], 0, last_only=True)
    assert last.shape == (3, 1, hf.config.vocab_size)
    assert (last - hf_logits(hf, tokens[:, :9])[:, -1:]).abs().max() < TOL


@pytest.mark.parametrize("chunks", [[7] + [1] * 10, [5, 4, 1, 7], [1] * 17])
def test_prefill_then_steps_through_the_cache_match_hf(hf, model, tokens, chunks):
    """Prefill, then shorter calls at start_pos > 0: the cache, and the mask for a chunk
    after cached positions, give the logits of one full forward pass."""
    outs, start_pos = [], 0
    for n in chunks:
        outs.append(model(tokens[:, start_pos : start_pos + n], start_pos))
        start_pos += n
    assert (torch.cat(outs, dim=1) - hf_logits(hf, tokens)).abs().max() < TOL


def test_a_smaller_batch_reuses_the_cache_rows(hf, model, tokens):
    model(tokens, 0)  # fill all three rows
    one = model(tokens[1:2, :9], 0)
    assert (one - hf_logits(hf, tokens[1:2, :9])).abs().max() < TOL


def test_rope_base_comes_from_rope_parameters(hf, model, tokens):
    assert model.params.rope_theta == hf.config.rope_parameters["rope_theta"] == 500000.0
    wrong = load(hf, max_seq_len=64, max_batch_size=4)
    wrong.rope = precompute_rope(16, 64, theta=10000.0)
    assert (wrong(tokens, 0) - hf_logits(hf, tokens)).abs().max() > 1e-3  # the test above would notice


def test_float32_model_returns_float32_logits(hf, tokens):
    model32 = load(tiny_hf_model(torch.float32), max_seq_len=32, max_batch_size=4)
    logits = model32(tokens, 0)
    assert logits.dtype == torch.float32
    assert (logits.double() - hf_logits(hf, tokens)).abs().max() < 1e-4


def test_weights_are_stored_like_nn_linear(model, hf):
    """Shaped (out_features, in_features), laid out (in_features, out_features), copies of
    the source's; q, k, v stacked in wqkv, gate and up in w13."""
    attention, mlp = model.layers[0].attention, hf.model.layers[0].self_attn
    assert attention.wqkv.weight.shape == ((4 + 2 * 2) * 16, 64)
    assert attention.wqkv.weight.t().is_contiguous()
    assert torch.equal(attention.wqkv.weight[96:], mlp.v_proj.weight)
    assert attention.wo.weight.data_ptr() != mlp.o_proj.weight.data_ptr()
    assert torch.equal(attention.wo.weight, mlp.o_proj.weight)
    w13 = model.layers[0].feed_forward.w13.weight
    assert torch.equal(w13[96:], hf.model.layers[0].mlp.up_proj.weight)
    assert torch.equal(model.output.weight, hf.lm_head.weight)
    assert model.tok_embeddings.weight.is_contiguous()


def test_unpermute_inverts_hf_conversion_permutation():
    # the permutation of transformers' convert_llama_weights_to_hf.py, Meta layout -> HF layout
    def permute(w, n_heads, dim1, dim2):
        return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)

    w = torch.randn(3 * 8, 10, dtype=torch.float64)
    assert torch.equal(unpermute(permute(w, 3, 24, 10), 3), w)
    assert not torch.equal(permute(w, 3, 24, 10), w)


def test_args_from_hf_config():
    args = args_from_hf_config(tiny_config(), max_seq_len=32, max_batch_size=2)
    assert (args.dim, args.n_layers, args.n_heads, args.n_kv_heads) == (64, 3, 4, 2)
    assert (args.vocab_size, args.hidden_dim, args.norm_eps) == (99, 96, 1e-5)
    assert (args.max_seq_len, args.max_batch_size) == (32, 2)


def test_scaled_rope_is_rejected():
    config = tiny_config()
    config.rope_parameters = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}
    with pytest.raises(ValueError, match="rope_type 'linear'"):
        args_from_hf_config(config, 32, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=64, n_heads=5), "not a multiple of n_heads"),
        (dict(dim=64, n_heads=4, n_kv_heads=3), "not a multiple of n_kv_heads"),
        (dict(dim=12, n_heads=4), "must be even"),
        (dict(max_seq_len=0), "max_seq_len=0"),
        (dict(max_batch_size=0), "max_batch_size=0"),
    ],
)
def test_bad_model_args(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelArgs(**kwargs)


def test_no_gqa_when_n_kv_heads_is_none():
    assert ModelArgs(dim=64, n_heads=4).n_kv_heads == 4


@pytest.mark.cuda
def test_runs_on_cuda_like_on_cpu(model, tokens):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = model(tokens, 0)
    gpu = load(tiny_hf_model(torch.float64).cuda(), max_seq_len=64, max_batch_size=4)
    assert (gpu(tokens.cuda(), 0).cpu() - cpu).abs().max() < 1e-8
