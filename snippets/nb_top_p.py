"""Notebook: which tokens SmolLM2's top-p nucleus keeps for the next word, for several p."""

# --8<-- [start:distribution]
import matplotlib.pyplot as plt
import torch

from llama_notes.generation import Llama, top_p_nucleus

generator = Llama.build(max_seq_len=64, max_batch_size=1)
tokenizer = generator.tokenizer
prompt = "Q: What is the largest animal?\nA: The largest animal is the"
tokens = torch.tensor([tokenizer.encode(prompt, bos=True, eos=False)])
logits = generator.model.forward(tokens, 0)[0, -1]  # the next token's logits
probs = torch.softmax(logits / 0.6, dim=-1)  # Meta's default temperature
top = torch.topk(probs, 15)
words = [repr(tokenizer.decode([i])) for i in top.indices.tolist()]
for word, q in zip(words, top.values.tolist()):
    print(f"{q:6.3f}  {word}")
# --8<-- [end:distribution]

# --8<-- [start:nucleus]
P_VALUES = (0.5, 0.75, 0.9, 0.95)
kept = {}
for p in P_VALUES:
    probs_sort, probs_idx = top_p_nucleus(probs, p)
    kept[p] = probs_sort[: len(words)]  # sorted like the top 15, 0 outside the nucleus
    n = int((probs_sort > 0).sum())
    print(f"top_p={p}: {n} token(s) kept, holding {float(probs[probs_idx[:n]].sum()):.3f} of the mass")
# --8<-- [end:nucleus]

# --8<-- [start:plot]
fig, axes = plt.subplots(1, len(P_VALUES), figsize=(14, 4), sharey=True)
for ax, p in zip(axes, P_VALUES):
    inside = kept[p] > 0
    ax.barh(words, top.values, color=["tab:blue" if k else "lightgray" for k in inside])
    ax.barh(words, kept[p], fill=False, edgecolor="tab:orange", linestyle="--")
    ax.set(title=f"top_p = {p}", xlabel="probability")
axes[0].invert_yaxis()  # most probable on top
fig.suptitle("Blue: in the nucleus (dashed: renormalised); grey: never sampled")
fig.tight_layout()
plt.show()
# --8<-- [end:plot]

# --8<-- [start:temperature]
ps = torch.linspace(0.05, 1.0, 96)
fig, ax = plt.subplots(figsize=(7, 3.5))
for temperature in (0.3, 0.6, 1.0):
    t_probs = torch.softmax(logits / temperature, dim=-1)
    sizes = [int((top_p_nucleus(t_probs, float(p))[0] > 0).sum()) for p in ps]
    ax.plot(ps, sizes, label=f"temperature {temperature}")
ax.set(xlabel="top_p", ylabel="tokens in the nucleus", yscale="log", title="Nucleus size after this prompt")
ax.legend()
plt.show()
# --8<-- [end:temperature]
