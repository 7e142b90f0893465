"""A tiny random Llama and a character-level tokenizer, built in milliseconds, no download.

The same architecture as SmolLM2 (grouped-query attention, tied embeddings, a
non-default RoPE base) at a size where float64 runs fast, so tests can compare
our code with Hugging Face's to 1e-10. Its weights are random (fixed seed): it
writes gibberish, deterministically.
"""

from __future__ import annotations

import torch

CHARS = [chr(c) for c in range(32, 127)] + ["\n"]  # printable ASCII and newline
SPECIAL = ["<unk>", "<s>", "</s>"]


def tiny_config():
    """A 3-layer ``LlamaConfig``: 4 query heads sharing 2 key/value heads, vocabulary of 99."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(SPECIAL) + len(CHARS),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        initializer_range=0.5,  # large random weights: peaked, varied next-token distributions
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )


def tiny_hf_model(dtype: torch.dtype = torch.float64, seed: int = 0):
    """The tiny ``LlamaForCausalLM`` with weights drawn from ``seed``, in eval mode."""
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng():  # leave the caller's random state alone
        torch.manual_seed(seed)
        model = LlamaForCausalLM(tiny_config())
        with torch.no_grad():  # random norm gains too, so a wrong norm weight cannot go unnoticed
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.uniform_(0.5, 1.5)
    return model.to(dtype).eval()


def tiny_hf_tokenizer(eos_token: str = "</s>"):
    """A Hugging Face fast tokenizer with one token per character of :data:`CHARS`.

    ``eos_token`` may name one of the characters instead of ``</s>``: the random model
    hardly ever writes ``</s>``, so tests that need an early end of sequence pick a
    character it does write.
    """
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as RawTokenizer
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL + CHARS)}
    raw = RawTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    raw.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token=eos_token)
