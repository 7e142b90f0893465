"""Top-p sampling on a five-token distribution: which tokens stay in the nucleus, how often each is drawn."""

from collections import Counter

import torch

from llama_notes.generation import sample_top_p, top_p_nucleus

words = ["whale", "elephant", "shark", "giraffe", "ant"]
probs = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625])  # (1)!

for p in (0.5, 0.8, 0.9, 1.0):
    probs_sort, probs_idx = top_p_nucleus(probs, p)  # (2)!
    kept = [f"{words[i]} {q:.3f}" for i, q in zip(probs_idx.tolist(), probs_sort.tolist()) if q > 0]
    print(f"top_p={p}: {', '.join(kept)}")

generator = torch.Generator().manual_seed(0)  # (3)!
draws = Counter(words[int(sample_top_p(probs, 0.8, generator))] for _ in range(1000))
print("1000 draws with top_p=0.8:", dict(draws.most_common()))
