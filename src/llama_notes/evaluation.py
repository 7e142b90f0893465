"""How good a model's next-token predictions are on a text: perplexity, and agreement between two models.

Both read the text teacher-forced: at each position the model sees the true tokens
before it, as in training, in windows of at most ``max_seq_len`` tokens (each window
starts afresh with an empty KV cache). :func:`logits_of` runs a model over the text
once; the measures take its result, so a model compared several ways runs once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llama_notes.model import Transformer


def _windows(tokens: list[int], size: int):
    if len(tokens) < 2:
        raise ValueError(f"a text of {len(tokens)} tokens has nothing to predict: give at least 2")
    for start in range(0, len(tokens) - 1, size):
        window = tokens[start : start + size + 1]  # one more: the target of the window's last position
        if len(window) > 1:
            yield torch.tensor([window])


@torch.inference_mode()
def logits_of(model: Transformer, tokens: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(logits, targets)`` of each window: the float32 logits at every position, and the next tokens."""
    size = model.params.max_seq_len
    device = model.norm.weight.device
    out = []
    for window in _windows(tokens, size):
        window = window.to(device)
        out.append((model(window[:, :-1], 0)[0].float(), window[0, 1:]))
    return out


def perplexity(windows: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """``exp`` of the mean negative log-likelihood of every target of :func:`logits_of`'s windows."""
    nll, count = 0.0, 0
    for logits, targets in windows:
        nll += F.cross_entropy(logits, targets, reduction="sum").item()
        count += targets.numel()
    return math.exp(nll / count)


def argmax_agreement(windows, reference) -> float:
    """The share of positions where the most likely next token of ``windows`` is that of
    ``reference`` (both from :func:`logits_of` on the same tokens)."""
    same, count = 0, 0
    for (a, _), (b, _) in zip(windows, reference, strict=True):
        same += (a.argmax(-1) == b.argmax(-1)).sum().item()
        count += a.shape[0]
    return same / count
