"""A tiny random Llama and a character-level tokenizer, built in milliseconds, no download.

The same architecture as SmolLM2 (grouped-query attention, tied embeddings, a
non-default RoPE base) at a size where float64 runs fast, so tests can compare
our code with Hugging Face's to 1e-10. Its weights are random (fixed seed): it
writes gibberish, deterministically.
"""

from __future__ import annotations

from pathlib import Path

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


def write_tiny_gguf(path: str | Path, seed: int = 0) -> Path:
    """The tiny model of ``seed`` as a GGUF file laid out like SmolLM2's: ``Q4_1`` matrices,
    a ``Q8_0`` embedding tied to the output, ``F32`` norms. Written by the ``gguf`` package's
    own writer and quantizers, as llama.cpp's converter does; returns ``path``."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    from llama_notes.checkpoint import HF_LAYER_NAMES, args_from_hf_config, rope_heads, unpermute

    config = tiny_config()
    sd = {k: v.float().numpy() for k, v in tiny_hf_model(torch.float32, seed).state_dict().items()}
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)

    def add(name, array, qtype):
        data = quantize(array, qtype)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)

    add("token_embd.weight", sd["model.embed_tokens.weight"], GGMLQuantizationType.Q8_0)
    add("output_norm.weight", sd["model.norm.weight"], GGMLQuantizationType.F32)
    heads = rope_heads(args_from_hf_config(config, max_seq_len=1, max_batch_size=1))
    for i in range(config.num_hidden_layers):
        hf = f"model.layers.{i}."
        for name, hf_name in HF_LAYER_NAMES.items():
            w = sd[hf + hf_name + ".weight"]
            if name in heads:  # llama.cpp stores query and key rows in Meta's order
                w = unpermute(torch.from_numpy(w), heads[name]).numpy()
            qtype = GGMLQuantizationType.F32 if name.endswith("_norm") else GGMLQuantizationType.Q4_1
            add(f"blk.{i}.{name}.weight", w, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)
