"""Why llama-2-7b in float16 ran out of memory on a 12 GB card, and what fits instead."""

import torch

from llama_notes.memory import Q4_1, Q8_0, estimate_shape, fit_table, fits

RTX_4070 = 12282 * 2**20  # (1)!

estimate = estimate_shape("llama-2-7b", torch.float16, max_seq_len=128, max_batch_size=4)  # (2)!
print(estimate.explanation)
print(f"fits in the RTX 4070's 12282 MiB: {fits(estimate, RTX_4070)}")  # (3)!
print()
print(fit_table(RTX_4070, max_seq_len=128, max_batch_size=4, dtypes=(torch.float32, torch.float16, Q8_0, Q4_1)))
