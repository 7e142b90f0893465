"""The rules for ``generate``'s options and the weight formats, in one place and without torch.

:meth:`llama_notes.generation.Llama.generate` checks them before any work, and
``llama-notes generate`` checks the same rules before it loads the model, so a bad
option is an error in well under a second.
"""

from __future__ import annotations

import math
import numbers


def check_sampling(max_gen_len, temperature, top_p) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first option ``generate`` cannot use."""
    if isinstance(max_gen_len, bool) or not isinstance(max_gen_len, numbers.Integral):
        raise TypeError(f"max_gen_len must be an integer, got {max_gen_len!r}")
    if max_gen_len < 1:
        raise ValueError(f"max_gen_len={max_gen_len} must be at least 1")
    if not 0 <= temperature < math.inf:  # also rejects NaN
        raise ValueError(f"temperature={temperature} must be a finite number >= 0 (0 is greedy)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")


# How a model holds its weights (llama_notes.checkpoint): float formats, and the 4-bit
# blocks of a GGUF file. Here, without torch, so the command line checks them before loading.
WEIGHT_FORMATS = ("fp32", "bf16", "fp16", "fp64", "q4")


def check_weights(weights: str) -> str:
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights={weights!r} is not a weight format: choose one of {', '.join(WEIGHT_FORMATS)}")
    return weights
