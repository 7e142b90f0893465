"""The Llama transformer, with the structure and names of Meta's ``llama/model.py``.

RMSNorm, rotary position embeddings (RoPE), grouped-query attention with a KV
cache, and a SwiGLU feed-forward network. What differs from Meta's file:

- no model parallelism (plain layers instead of ``ColumnParallelLinear`` & co.),
  and no ``.cuda()``: the model runs wherever its weights are;
- the weight matrices are stored ``(in_features, out_features)`` and applied as
  ``x @ weight`` (see :class:`Linear`); ``wq``, ``wk``, ``wv`` are one matrix
  ``wqkv``, ``w1`` and ``w3`` one matrix ``w13``, and attention is PyTorch's fused
  ``scaled_dot_product_attention``: generating one token at a time, every
  operation costs a fixed overhead, and these cut a third of them (measured in
  ``benchmarks/bench_generate.py``: about 2 ms of 31 per token on a 2-core CPU);
- the hidden size of the feed-forward network is given (``hidden_dim``), as in a
  Hugging Face config, rather than derived from ``multiple_of``;
- :meth:`Transformer.from_hf` loads the weights of a Hugging Face ``LlamaForCausalLM``;
- the rotary embedding is written in real numbers and turns queries and keys in one
  call (see :func:`apply_rotary_emb`);
- :meth:`Transformer.compile_decoding` compiles the one-token step with ``torch.compile``,
  as PyTorch's gpt-fast does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    """The shape of the model, and of the KV cache it allocates."""

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


class Linear(nn.Module):
    """``y = x @ weight``, with ``weight`` stored ``(in_features, out_features)``.

    ``nn.Linear`` stores ``(out_features, in_features)`` and computes ``x @ weight.T``.
    Generating a token multiplies one row per sequence by each matrix, a product limited
    by how fast the matrix streams from memory. On the 2-core CPU this was measured on,
    this layout streams it a little faster: about 3% less time per token.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


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
        self.wqkv = Linear(args.dim, (args.n_heads + 2 * self.n_kv_heads) * self.head_dim)
        self.wo = Linear(args.n_heads * self.head_dim, args.dim)
        cache_shape = (args.max_batch_size, args.max_seq_len, self.n_kv_heads, self.head_dim)
        self.register_buffer("cache_k", torch.zeros(cache_shape), persistent=False)
        self.register_buffer("cache_v", torch.zeros(cache_shape), persistent=False)

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
        # n_heads // n_kv_heads query heads, in one fused kernel
        output = F.scaled_dot_product_attention(
            xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), attn_mask=mask, enable_gqa=True
        )  # (bsz, n_heads, seqlen, head_dim)
        return self.wo(output.transpose(1, 2).reshape(bsz, seqlen, -1))


# --8<-- [end:attention]


# --8<-- [start:feed_forward]
class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1(x)) * w3(x))``, with ``w1`` and ``w3`` side by side in ``w13``."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.w13 = Linear(dim, 2 * hidden_dim)
        self.w2 = Linear(hidden_dim, dim)

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
        self.output = Linear(params.dim, params.vocab_size)
        # a plain attribute, not a buffer: Module.to(float16) would round the angles' cos and sin
        self.rope = precompute_rope(params.dim // params.n_heads, params.max_seq_len, params.rope_theta)
        self.decode_step = None  # set by compile_decoding

    # --8<-- [start:forward]
    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
        """Logits ``(bsz, seqlen, vocab_size)`` for ``tokens`` ``(bsz, seqlen)`` at positions
        ``start_pos : start_pos + seqlen``; the cache holds the keys and values before them.

        The logits are float32, or float64 for a float64 model.
        """
        if tokens.shape[1] == 1 and self.decode_step is not None:
            return self.decode_step(tokens, start_pos)
        return self._forward(tokens, start_pos)

    def _forward(self, tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        if self.rope.device != h.device:  # once, at the first call after the model moved
            self.rope = self.rope.to(h.device)
        rope = self.rope[start_pos : start_pos + seqlen]

        mask = None
        if seqlen > 1:  # one new token may attend to everything before it: no mask needed
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            # the new tokens attend to all start_pos cached positions, and causally to each other
            mask = torch.hstack([torch.zeros((seqlen, start_pos), device=tokens.device), mask]).type_as(h)

        for layer in self.layers:
            h = layer(h, start_pos, rope, mask)
        h = self.norm(h)
        output = self.output(h)
        return output.to(torch.promote_types(output.dtype, torch.float32))
    # --8<-- [end:forward]

    # --8<-- [start:compile_decoding]
    def compile_decoding(self) -> "Transformer":
        """Run every one-token step (``seqlen == 1``) through ``torch.compile``; returns ``self``.

        Generating a token for one prompt reads every weight once, so its time should be
        the time to stream the weights from memory. Run op by op, some fifty small
        operations per layer each pay a call from Python, and on a CPU they run slower
        still after each matrix product has pushed their code and data out of the
        caches. Compiled, the small operations become a few fused kernels called from
        C++. Prompts (``seqlen > 1``) still run op by op: they are processed once.

        The first step of batch 1, and the first of a larger batch, each compile (one
        to two minutes on a 2-core CPU, seconds once TorchInductor's on-disk cache has
        it) and need a C++ compiler on the CPU, Triton on a GPU. On the CPU the step of a batch of prompts
        has the weights frozen into it and repacked for oneDNN, whose kernels multiply
        several rows at close to the speed of one: change the weights, and compile
        again. The logits differ from the op-by-op ones by rounding only (about 1e-5 in
        float32), because the fused kernels add in another order.
        """
        # dynamic: one compiled step serves every start_pos, another every batch size above 1.
        # The guards on the modules stay (skipping them would save 0.5 ms per step): every
        # Transformer shares the code of _forward, and only they tell one model from another.
        compiled = torch.compile(self._forward, dynamic=True, fullgraph=True)

        def decode_step(tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
            # On the CPU, one row streams the weights fastest through MKL's matrix-vector
            # product, several rows through oneDNN's kernels on frozen, repacked weights.
            # Set around each call, not as torch.compile(options=...): the tracer reads
            # `freezing` itself, outside those options, whenever a new shape compiles.
            options = {"cpp_wrapper": True, "freezing": tokens.shape[0] > 1} if tokens.device.type == "cpu" else {}
            with torch._inductor.config.patch(options):
                return compiled(tokens, start_pos)

        self.decode_step = decode_step
        return self
    # --8<-- [end:compile_decoding]

    @classmethod
    def from_hf(cls, hf_model, max_seq_len: int = 2048, max_batch_size: int = 32) -> "Transformer":
        """A ``Transformer`` with the weights, dtype and device of a Hugging Face ``LlamaForCausalLM``.

        ``max_seq_len`` and ``max_batch_size`` size the KV cache.
        """
        params = args_from_hf_config(hf_model.config, max_seq_len, max_batch_size)
        sd = hf_model.state_dict()
        weight = sd["model.embed_tokens.weight"]
        model = cls(params).to(device=weight.device, dtype=weight.dtype)
        model.load_state_dict(state_dict_from_hf(sd, params, hf_model.lm_head.weight))
        return model.eval()


def args_from_hf_config(config, max_seq_len: int, max_batch_size: int) -> ModelArgs:
    """The :class:`ModelArgs` of a Hugging Face ``LlamaConfig``."""
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"rope_type {rope['rope_type']!r} is not supported, only plain RoPE")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim * config.num_attention_heads != config.hidden_size:
        raise ValueError("head_dim * num_attention_heads must equal hidden_size")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ValueError("Llama has no biases in attention or MLP; this config has some")
    return ModelArgs(
        dim=config.hidden_size,
        n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        n_kv_heads=config.num_key_value_heads,
        vocab_size=config.vocab_size,
        hidden_dim=config.intermediate_size,
        norm_eps=config.rms_norm_eps,
        rope_theta=rope.get("rope_theta", 10000.0),
        max_batch_size=max_batch_size,
        max_seq_len=max_seq_len,
    )


# --8<-- [start:unpermute]
def unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo the row order Hugging Face gives ``q_proj`` and ``k_proj``.

    Meta's RoPE rotates adjacent pairs ``(x[2k], x[2k+1])`` of each head; Hugging Face's
    ``rotate_half`` rotates ``(x[k], x[k + head_dim/2])``, and its conversion script
    reorders the rows of each head to match. This puts them back.
    """
    out_features, in_features = w.shape
    head_dim = out_features // n_heads
    return w.view(n_heads, 2, head_dim // 2, in_features).transpose(1, 2).reshape(out_features, in_features)
# --8<-- [end:unpermute]


def state_dict_from_hf(sd: dict, params: ModelArgs, lm_head: torch.Tensor) -> dict:
    """Hugging Face ``LlamaForCausalLM`` weights renamed, unpermuted and laid out ``(in, out)``.

    ``lm_head`` is passed apart because a model with tied embeddings keeps it out of
    its state dict; it is then the embedding matrix itself.
    """
    out = {
        "tok_embeddings.weight": sd["model.embed_tokens.weight"],
        "norm.weight": sd["model.norm.weight"],
        "output.weight": lm_head.t(),
    }
    for i in range(params.n_layers):
        hf, ours = f"model.layers.{i}.", f"layers.{i}."
        wq = unpermute(sd[hf + "self_attn.q_proj.weight"], params.n_heads)
        wk = unpermute(sd[hf + "self_attn.k_proj.weight"], params.n_kv_heads)
        wv = sd[hf + "self_attn.v_proj.weight"]
        out[ours + "attention.wqkv.weight"] = torch.cat([wq, wk, wv]).t()
        out[ours + "attention.wo.weight"] = sd[hf + "self_attn.o_proj.weight"].t()
        w1, w3 = sd[hf + "mlp.gate_proj.weight"], sd[hf + "mlp.up_proj.weight"]
        out[ours + "feed_forward.w13.weight"] = torch.cat([w1, w3]).t()
        out[ours + "feed_forward.w2.weight"] = sd[hf + "mlp.down_proj.weight"].t()
        out[ours + "attention_norm.weight"] = sd[hf + "input_layernorm.weight"]
        out[ours + "ffn_norm.weight"] = sd[hf + "post_attention_layernorm.weight"]
    return out
