"""Hugging Face as the reference the generate tests compare against."""

from __future__ import annotations

import torch


def hf_greedy(hf, prompt, max_new_tokens, eos_id):
    """HF's greedy continuation of ``prompt``, cut before the first EOS like ours."""
    out = hf.generate(
        torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        top_k=0,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )[0, len(prompt) :].tolist()
    return out[: out.index(eos_id)] if eos_id in out else out
