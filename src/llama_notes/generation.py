"""Meta's ``Llama`` class: build a model, then generate text with it.

``generate`` is the method the source posts explain, with the same variables and the
same steps: a right-padded token buffer, a loop from the shortest prompt's end,
prompt positions teacher-forced, EOS tracked per row, the output cut at
``max_gen_len`` and before the first EOS. What differs from the code in the source posts:

- nothing says ``"cuda"``: the token buffer goes to the model's device;
- the ``assert`` statements are ``ValueError``/``TypeError`` raised before any work;
- the log-probabilities are computed after the new token is written, so a generated
  token gets its own log-probability (the source post's code computed them before, when the target
  was still padding, which gives 0; Meta's later code fixed it the same way);
- EOS is looked for only in the generated part, so a prompt may contain EOS (a chat
  template does);
- NaN logits raise an error instead of producing arbitrary tokens; the loop reads the
  device once per token, for the NaN check and the end of sequence together;
- top-p breaks ties between equal probabilities by token id (a stable sort);
- an optional ``on_token`` callback sees every position as soon as it is filled,
  which is how the ``llama-notes generate`` command streams.
"""

from __future__ import annotations

import logging
import numbers
import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from llama_notes import smollm2
from llama_notes.checkpoint import load
from llama_notes.compiling import compile_decoding
from llama_notes.device import init_distributed, model_device, pick_device
from llama_notes.model import Transformer
from llama_notes.options import check_sampling, check_weights
from llama_notes.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class Llama:
    """A :class:`~llama_notes.model.Transformer` and a tokenizer, with Meta's generation API."""

    # --8<-- [start:build]
    @staticmethod
    def build(
        max_seq_len: int = 512,
        max_batch_size: int = 4,
        device: str | torch.device | None = None,
        weights: str = "fp32",
        seed: int = 1,
        compile: bool = False,
    ) -> "Llama":
        """SmolLM2-135M-Instruct, ready to generate, the way Meta's ``Llama.build`` loads LLaMA.

        ``max_seq_len`` and ``max_batch_size`` size the KV cache; ``device=None`` picks
        CUDA, then MPS, then the CPU. ``weights`` is ``"fp32"`` (the GGUF file's weights
        dequantized), ``"bf16"`` or ``"q4"`` (the file's 4-bit blocks as they are; see
        :mod:`llama_notes.checkpoint`). Under ``torchrun`` each process joins the process
        group on a backend this machine has (gloo where there is no NCCL, which is the
        fix for "Distributed package doesn't have NCCL built in"). The first call
        converts the GGUF weights into a cache, later calls load in seconds.
        ``compile=True`` compiles the one-token step
        (:func:`~llama_notes.compiling.compile_decoding`): faster once compiled.
        """
        check_weights(weights)  # before anything starts: a typo costs no wait
        dist = init_distributed()
        device = pick_device(device)

        # seed must be the same in all processes
        torch.manual_seed(seed)

        if dist.local_rank > 0:  # only the first process on each machine prints
            sys.stdout = open(os.devnull, "w")

        start_time = time.time()
        # the 4-bit blocks are in the GGUF file only; the float formats load faster from the cache
        source = smollm2.gguf_path() if weights == "q4" else smollm2.ensure_converted()
        model = load(source, weights, max_seq_len=max_seq_len, max_batch_size=max_batch_size, device=device)
        if compile:
            compile_decoding(model)
        # A log record, not a print: the command line shows it, a notebook or a script does not.
        log.info(f"Loaded in {time.time() - start_time:.2f} seconds")
        return Llama(model, Tokenizer(smollm2.load_tokenizer()))
    # --8<-- [end:build]

    def __init__(self, model: Transformer, tokenizer: Tokenizer):
        if 0 <= tokenizer.pad_id < model.params.vocab_size:
            raise ValueError(
                f"pad_id={tokenizer.pad_id} is a real token id; generate tells prompt from padding by it"
            )
        self.model = model
        self.tokenizer = tokenizer

    # --8<-- [start:generate_signature]
    @torch.inference_mode()
    def generate(
        self,
        prompt_tokens: list[list[int]],
        max_gen_len: int,
        temperature: float = 0.6,
        top_p: float = 0.9,
        logprobs: bool = False,
        echo: bool = False,
        on_token: Callable[[int, torch.Tensor], None] | None = None,
    ) -> tuple[list[list[int]], list[list[float]] | None]:
        """Continue each prompt of ``prompt_tokens`` by up to ``max_gen_len`` tokens.

        ``temperature=0`` is greedy decoding; otherwise the next token is sampled from the
        softmax of ``logits / temperature``, restricted to the top-``top_p`` nucleus
        (:func:`sample_top_p`). Each output stops before the first end-of-sequence token.
        With ``echo`` the outputs start with their prompts; with ``logprobs`` the second
        result holds the log-probability of each output token given the tokens before it
        (0 for a sequence's first token). ``on_token(cur_pos, next_token)``, if given, is
        called each time position ``cur_pos`` is filled in every row, with that
        position's token of each row.

        Returns ``(out_tokens, out_logprobs)``; ``out_logprobs`` is ``None`` unless ``logprobs``.
        """
        self._check(prompt_tokens, max_gen_len, temperature, top_p)
        params = self.model.params
        bsz = len(prompt_tokens)
    # --8<-- [end:generate_signature]

        # --8<-- [start:generate_lengths]
        min_prompt_len = min(len(t) for t in prompt_tokens)
        max_prompt_len = max(len(t) for t in prompt_tokens)
        total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)
        # --8<-- [end:generate_lengths]

        # --8<-- [start:generate_buffer]
        pad_id = self.tokenizer.pad_id
        device = model_device(self.model)
        tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long, device=device)
        for k, t in enumerate(prompt_tokens):
            tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long, device=device)
        if logprobs:
            token_logprobs = torch.zeros_like(tokens, dtype=torch.float)
        # --8<-- [end:generate_buffer]

        # --8<-- [start:generate_state]
        prev_pos = 0
        eos_reached = torch.tensor([False] * bsz, device=device)
        input_text_mask = tokens != pad_id
        # --8<-- [end:generate_state]
        # --8<-- [start:generate_forward]
        for cur_pos in range(min_prompt_len, total_len):
            logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos, last_only=not logprobs)
            # a NaN anywhere makes the sum NaN: one pass over the vocabulary, read with the
            # end-of-sequence flags below
            nan_logits = logits[:, -1].sum(-1).isnan().any()
            # --8<-- [end:generate_forward]
            # --8<-- [start:generate_sample]
            if temperature > 0:
                probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
                next_token = sample_top_p(probs, top_p)
            else:
                next_token = torch.argmax(logits[:, -1], dim=-1)
            # --8<-- [end:generate_sample]

            # --8<-- [start:generate_replace]
            next_token = next_token.reshape(-1)
            # only replace token if prompt has already been generated
            next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
            tokens[:, cur_pos] = next_token
            # --8<-- [end:generate_replace]
            # --8<-- [start:generate_logprobs]
            if logprobs:
                token_logprobs[:, prev_pos + 1 : cur_pos + 1] = -F.cross_entropy(
                    input=logits.transpose(1, 2),
                    target=tokens[:, prev_pos + 1 : cur_pos + 1],
                    reduction="none",
                    ignore_index=pad_id,
                )
            # --8<-- [end:generate_logprobs]
            # --8<-- [start:generate_eos]
            eos_reached |= (~input_text_mask[:, cur_pos]) & (next_token == self.tokenizer.eos_id)
            # Python reads a GPU tensor only after waiting for the GPU: one read per token, for both.
            nan, done = torch.stack([nan_logits, eos_reached.all()]).tolist()
            if nan:
                raise ValueError(f"the model returned NaN logits at position {cur_pos}")
            if on_token is not None:
                on_token(cur_pos, next_token)
            prev_pos = cur_pos
            if done:
                break
            # --8<-- [end:generate_eos]

        # --8<-- [start:generate_output]
        if logprobs:
            token_logprobs = token_logprobs.tolist()
        out_tokens, out_logprobs = [], []
        for i, toks in enumerate(tokens.tolist()):
            # cut to max gen len
            start = 0 if echo else len(prompt_tokens[i])
            toks = toks[start : len(prompt_tokens[i]) + max_gen_len]
            probs = None
            if logprobs:
                probs = token_logprobs[i][start : len(prompt_tokens[i]) + max_gen_len]
            # cut to eos tok if any, looking only past the prompt
            generated_from = len(prompt_tokens[i]) - start
            if self.tokenizer.eos_id in toks[generated_from:]:
                eos_idx = toks.index(self.tokenizer.eos_id, generated_from)
                toks = toks[:eos_idx]
                probs = probs[:eos_idx] if logprobs else None
            out_tokens.append(toks)
            out_logprobs.append(probs)
        return (out_tokens, out_logprobs if logprobs else None)
        # --8<-- [end:generate_output]

    # --8<-- [start:generate_check]
    def _check(self, prompt_tokens, max_gen_len, temperature, top_p) -> None:
        """The source post's asserts, and the rest of what ``generate`` needs, as errors that say what is wrong."""
        params = self.model.params
        if not isinstance(prompt_tokens, (list, tuple)):
            raise TypeError(f"prompt_tokens is a list of lists of token ids, got {type(prompt_tokens).__name__}")
        if len(prompt_tokens) == 0:
            raise ValueError("prompt_tokens is empty: give at least one prompt")
        if len(prompt_tokens) > params.max_batch_size:
            raise ValueError(f"{len(prompt_tokens)} prompts but max_batch_size is {params.max_batch_size}")
        for k, t in enumerate(prompt_tokens):
            if not isinstance(t, (list, tuple)):
                raise TypeError(f"prompt {k} is a {type(t).__name__}, not a list of token ids")
            if len(t) == 0:
                raise ValueError(f"prompt {k} is empty: a prompt needs at least one token")
            if len(t) >= params.max_seq_len:
                raise ValueError(
                    f"prompt {k} has {len(t)} tokens, which leaves no room to generate in max_seq_len={params.max_seq_len}"
                )
            for tok in t:
                if isinstance(tok, bool) or not isinstance(tok, numbers.Integral):
                    raise TypeError(f"prompt {k} holds {tok!r}, which is not an integer token id")
                if not 0 <= tok < params.vocab_size:
                    raise ValueError(f"prompt {k} holds token id {tok}, outside the vocabulary [0, {params.vocab_size})")
        check_sampling(max_gen_len, temperature, top_p)
    # --8<-- [end:generate_check]

    def text_completion(
        self,
        prompts: list[str],
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_gen_len: int | None = None,
        logprobs: bool = False,
        echo: bool = False,
    ) -> list[dict]:
        """Continue each text of ``prompts``: ``[{"generation": text}, ...]``, plus ``"tokens"``
        and ``"logprobs"`` when ``logprobs`` is true. ``max_gen_len=None`` allows up to the
        cache length."""
        if isinstance(prompts, str):
            raise TypeError("prompts is a list of strings; wrap a single prompt in a list")
        prompt_tokens = [self.tokenizer.encode(x, bos=True, eos=False) for x in prompts]
        return self._complete(prompt_tokens, temperature, top_p, max_gen_len, logprobs, echo)

    def chat_completion(
        self,
        dialogs: list[list[dict[str, str]]],
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_gen_len: int | None = None,
        logprobs: bool = False,
    ) -> list[dict]:
        """Answer each dialog (a list of ``{"role", "content"}`` messages) through the
        tokenizer's chat template: ``[{"generation": {"role": "assistant", "content": ...}}, ...]``."""
        prompt_tokens = [self.tokenizer.encode_dialog(dialog) for dialog in dialogs]
        results = self._complete(prompt_tokens, temperature, top_p, max_gen_len, logprobs)
        for result in results:
            result["generation"] = {"role": "assistant", "content": result["generation"]}
        return results

    def _complete(self, prompt_tokens, temperature, top_p, max_gen_len, logprobs, echo=False) -> list[dict]:
        """``generate``, decoded: ``{"generation": text}`` per row, plus ``"tokens"`` and
        ``"logprobs"`` when ``logprobs`` is true. ``max_gen_len=None`` allows up to the cache length."""
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        generation_tokens, generation_logprobs = self.generate(
            prompt_tokens=prompt_tokens,
            max_gen_len=max_gen_len,
            temperature=temperature,
            top_p=top_p,
            logprobs=logprobs,
            echo=echo,
        )
        results = []
        for k, t in enumerate(generation_tokens):
            result = {"generation": self.tokenizer.decode(t)}
            if logprobs:
                result["tokens"] = [self.tokenizer.decode([x]) for x in t]
                result["logprobs"] = generation_logprobs[k]
            results.append(result)
        return results


# --8<-- [start:sample_top_p]
def sample_top_p(probs: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample one token per row of ``probs`` from its top-``p`` nucleus (see :func:`top_p_nucleus`).

    ``probs`` is ``(bsz, vocab_size)``, or one distribution ``(vocab_size,)``; the draw
    uses ``generator`` if given, else torch's global random state. Returns the token
    ids, ``(bsz, 1)`` (or ``(1,)``).
    """
    probs_sort, probs_idx = top_p_nucleus(probs, p)
    next_token = torch.multinomial(probs_sort, num_samples=1, generator=generator)
    next_token = torch.gather(probs_idx, -1, next_token)
    return next_token


def top_p_nucleus(probs: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``p`` nucleus of ``probs``: ``(probs_sort, probs_idx)``.

    ``probs_idx`` lists the token ids from most to least probable, ``probs_sort`` their
    probabilities with every token outside the nucleus set to 0, renormalised to sum to 1.
    Going down the sorted list, a token is in the nucleus when the mass of the tokens
    before it is at most ``p``: the most probable token always is, and the nucleus is
    the smallest set of top tokens whose mass reaches ``p``.
    """
    _check_distribution(probs, p)
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True, stable=True)  # ties: lower id first
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p  # the mass before the token is above p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    return probs_sort, probs_idx
# --8<-- [end:sample_top_p]


def _check_distribution(probs: torch.Tensor, p: float) -> None:
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError("probs must be a floating-point tensor")
    if probs.dim() not in (1, 2) or probs.shape[-1] == 0:
        raise ValueError(f"probs must have shape (bsz, vocab_size) or (vocab_size,), got {tuple(probs.shape)}")
    if not 0 < p <= 1:
        raise ValueError(f"p={p} must be in (0, 1]")
    # Both checks in one read of the device (on a GPU, each read waits for it); details on failure only.
    sums = probs.sum(dim=-1, dtype=torch.float64)
    bad_entries = ~torch.isfinite(probs).all() | (probs < 0).any()
    if torch.stack([bad_entries, ((sums - 1).abs() > 1e-3).any()]).any():
        if bad_entries:
            raise ValueError("probs is not a probability distribution: it has negative, NaN or infinite entries")
        raise ValueError(f"probs is not a probability distribution: rows sum to {sums.tolist()}, not 1")
