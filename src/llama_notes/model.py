"""The Llama transformer, with the structure and names of Meta's ``llama/model.py``.

RMSNorm, rotary position embeddings (RoPE), grouped-query attention with a KV
cache, and a SwiGLU feed-forward network. This module is the model alone: where
the weights come from (:mod:`llama_notes.checkpoint`), how they are stored
(:mod:`llama_notes.quant` swaps the linear layers for 4-bit ones) and how the
one-token step is compiled (:mod:`llama_notes.compiling`) live in their own
modules. What differs from Meta's file:

- no model parallelism (``nn.Linear`` instead of ``ColumnParallelLinear`` & co.),
  and no ``.cuda()``: the model runs wherever its weights are;
- ``wq``, ``wk``, ``wv`` are one matrix ``wqkv``, ``w1`` and ``w3`` one matrix
  ``w13``, and attention is PyTorch's fused ``scaled_dot_product_attention``:
  generating one token at a time, every operation costs a fixed overhead, and
  these cut a third of them (about 2 ms of 31 per token on a 2-core CPU);
- the hidden size of the feed-forward network is given (``hidden_dim``), as in a
  Hugging Face config, rather than derived from ``multiple_of``;
- the KV cache is allocated by :meth:`Transformer.setup_caches`, once the weights
  are on their device: a model can be built on the ``meta`` device (no memory) and
  its weights loaded in place;
- the rotary embedding is written in real numbers and turns queries and keys in one
  call (see :func:`apply_rotary_emb`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    """The shape of the model, and of the KV cache :meth:`Transformer.setup_caches` allocates."""

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None  # None: as many key/value heads as query heads (no GQA)
    vocab_size: int = 32000
    hidden_dim: int = 11008  # width of the SwiGLU feed-forward network
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_batch_size: int = 32
    max_seq_len: int = 2048

    def __post_init__(self):
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} is not a multiple of n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"the head size {self.dim // self.n_heads} must be even for RoPE")
        for name in ("max_batch_size", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")


# --8<-- [start:rmsnorm]
class RMSNorm(nn.Module):
    """Scale each vector to unit root mean square, then by a learned gain per feature."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)  # the statistics in float32, even for float16 weights
        return output * self.weight
# --8<-- [end:rmsnorm]


# --8<-- [start:rope]
def precompute_rope(dim: int, end: int, theta: float = 10000.0) -> torch.Tensor:
    """``(cos(t·θ_k), sin(t·θ_k))`` for every position ``t < end`` and frequency
    ``θ_k = theta^(-2k/dim)``: a tensor ``(end, dim / 2, 2)``.

    Meta's ``precompute_freqs_cis`` returns the same numbers as complex ``e^(i·t·θ_k)``;
    these are its real and imaginary parts, which ``torch.compile`` can fuse (it has no
    code generation for complex numbers).
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    # cos and sin computed like Hugging Face's rotary embedding, so both agree to the last bit
    return torch.stack([freqs.cos(), freqs.sin()], dim=-1)


def apply_rotary_emb(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of features ``(x[2k], x[2k+1])`` of every head by the angle ``t·θ_k``.

    ``x`` is ``(bsz, seqlen, heads, head_dim)`` and ``rope`` the rows of
    :func:`precompute_rope` for its positions. Meta's code reads a pair as the complex
    number ``x[2k] + i·x[2k+1]``, multiplies it by ``e^(i·t·θ_k)``, and rotates the
    queries and the keys in two calls. This writes out the same product in real
    numbers, ``(x[2k]·cos − x[2k+1]·sin, x[2k]·sin + x[2k+1]·cos)``, which
    ``torch.compile`` fuses into one kernel, and is given the query and key heads
    together: half the calls when run op by op. Computed in at least float32, and in
    float64 for a float64 model.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    cos, sin = rope[:, None, :, :].to(dtype).unbind(-1)  # (seqlen, 1, head_dim / 2): the same for every head
    x0, x1 = x.to(dtype).unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(3).type_as(x)
# --8<-- [end:rope]


# --8<-- [start:attention]
class Attention(nn.Module):
    """Grouped-query attention with a KV cache.

    The keys and values of every position seen so far stay in ``cache_k`` and
    ``cache_v``; a call with ``seqlen`` new tokens at ``start_pos`` writes theirs at
    ``start_pos : start_pos + seqlen`` and attends over ``0 : start_pos + seqlen``.
    """

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.n_kv_heads
        self.head_dim = args.dim // args.n_heads
        # wq, wk and wv side by side: one matrix-vector product instead of three
        self.wqkv = nn.Linear(args.dim, (args.n_heads + 2 * self.n_kv_heads) * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.register_buffer("cache_k", None, persistent=False)  # allocated by setup_cache
        self.register_buffer("cache_v", None, persistent=False)

    def setup_cache(self, max_batch_size: int, max_seq_len: int, dtype: torch.dtype, device: torch.device):
        cache_shape = (max_batch_size, max_seq_len, self.n_kv_heads, self.head_dim)
        self.register_buffer("cache_k", torch.zeros(cache_shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("cache_v", torch.zeros(cache_shape, dtype=dtype, device=device), persistent=False)

    def forward(self, x, start_pos: int, rope, mask):
        bsz, seqlen, _ = x.shape
        xqkv = self.wqkv(x).view(bsz, seqlen, self.n_heads + 2 * self.n_kv_heads, self.head_dim)
        xqk, xv = xqkv.split([self.n_heads + self.n_kv_heads, self.n_kv_heads], dim=2)
        xq, xk = apply_rotary_emb(xqk, rope).split([self.n_heads, self.n_kv_heads], dim=2)

        self.cache_k[:bsz, start_pos : start_pos + seqlen] = xk
        self.cache_v[:bsz, start_pos : start_pos + seqlen] = xv
        keys = self.cache_k[:bsz, : start_pos + seqlen]  # (bsz, cache_len + seqlen, n_kv_heads, head_dim)
        values = self.cache_v[:bsz, : start_pos + seqlen]

        # softmax(xq @ keys^T / sqrt(head_dim) + mask) @ values, every key/value head serving
        # n_heads // n_kv_heads query heads, in one fused kernel, in the cache's dtype
        output = F.scaled_dot_product_attention(
            xq.transpose(1, 2).to(keys.dtype), keys.transpose(1, 2), values.transpose(1, 2), attn_mask=mask, enable_gqa=True
        )  # (bsz, n_heads, seqlen, head_dim)
        return self.wo(output.transpose(1, 2).reshape(bsz, seqlen, -1).type_as(x))


# --8<-- [end:attention]


# --8<-- [start:feed_forward]
class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1(x)) * w3(x))``, with ``w1`` and ``w3`` side by side in ``w13``."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x):
        x1, x3 = self.w13(x).chunk(2, dim=-1)  # w1(x), w3(x)
        return self.w2(F.silu(x1) * x3)
# --8<-- [end:feed_forward]


# --8<-- [start:block]
class TransformerBlock(nn.Module):
    """Pre-norm residual block: attention, then the feed-forward network."""

    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, args.hidden_dim)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos: int, rope, mask):
        h = x + self.attention(self.attention_norm(x), start_pos, rope, mask)
        out = h + self.feed_forward(self.ffn_norm(h))
        return out
# --8<-- [end:block]


class Transformer(nn.Module):
    """Token ids in, next-token logits out, with a KV cache across calls."""

    def __init__(self, params: ModelArgs):
        super().__init__()
        self.params = params
        self.vocab_size = params.vocab_size
        self.n_layers = params.n_layers
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, params) for i in range(params.n_layers))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.rope = None  # set by setup_caches, with the KV cache
        self.decode_step = None  # set by llama_notes.compiling.compile_decoding
        self.prefill_step = None  # the same, for prompts whose last logits alone are wanted

    def setup_caches(
        self, max_batch_size: int | None = None, max_seq_len: int | None = None, cache_dtype: torch.dtype | None = None
    ) -> "Transformer":
        """Allocate the KV cache for ``max_batch_size`` sequences of ``max_seq_len`` positions
        (by default the sizes in :attr:`params`), on the device of the activations and in
        ``cache_dtype`` (by default theirs too); returns ``self``. Attention runs in the
        cache's dtype.

        Called once the weights are in place: a model built on the ``meta`` device gets its
        cache where its weights went. Calling it again gives a new, empty cache.
        """
        self.params = replace(
            self.params,
            max_batch_size=max_batch_size or self.params.max_batch_size,
            max_seq_len=max_seq_len or self.params.max_seq_len,
        )
        norm = self.norm.weight  # float in every weight format: the dtype of the activations
        for layer in self.layers:
            layer.attention.setup_cache(self.params.max_batch_size, self.params.max_seq_len, cache_dtype or norm.dtype, norm.device)
        # a plain attribute, not a buffer: Module.to(float16) would round the angles' cos and sin
        self.rope = precompute_rope(self.params.dim // self.params.n_heads, self.params.max_seq_len, self.params.rope_theta)
        return self

    # --8<-- [start:forward]
    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, start_pos: int, last_only: bool = False) -> torch.Tensor:
        """Logits ``(bsz, seqlen, vocab_size)`` for ``tokens`` ``(bsz, seqlen)`` at positions
        ``start_pos : start_pos + seqlen``; the cache holds the keys and values before them.
        With ``last_only``, the logits of the last position alone, ``(bsz, 1, vocab_size)``:
        the output layer, the largest matrix of a small model, multiplies one row per
        sequence instead of ``seqlen``.

        The logits are float32, or float64 for a float64 model.
        """
        if tokens.shape[1] == 1 and self.decode_step is not None:
            return self.decode_step(tokens, start_pos)
        if last_only and self.prefill_step is not None:
            return self.prefill_step(tokens, start_pos)
        return self._forward(tokens, start_pos, last_only)

    def _forward(self, tokens: torch.Tensor, start_pos: int, last_only: bool = False) -> torch.Tensor:
        _bsz, seqlen = tokens.shape
        if self.rope is None:
            raise ValueError("no KV cache: call setup_caches() once the weights are loaded")
        h = self.tok_embeddings(tokens)
        if self.rope.device != h.device:  # once, at the first call after the model moved
            self.rope = self.rope.to(h.device)
        rope = self.rope[start_pos : start_pos + seqlen]

        mask = None
        if seqlen > 1:  # one new token may attend to everything before it: no mask needed
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            # the new tokens attend to all start_pos cached positions, and causally to each other
            mask = torch.hstack([torch.zeros((seqlen, start_pos), device=tokens.device), mask])
            mask = mask.to(self.layers[0].attention.cache_k.dtype)  # attention's dtype

        for layer in self.layers:
            h = layer(h, start_pos, rope, mask)
        if last_only:
            h = h[:, -1:]
        h = self.norm(h)
        output = self.output(h)
        return output.to(torch.promote_types(output.dtype, torch.float32))
    # --8<-- [end:forward]
