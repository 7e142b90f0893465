"""``llama-notes generate PROMPT``: continue a prompt with SmolLM2, printing tokens as they come.

Like llama2.c's ``run``, it streams the text and ends with the speed in tokens per
second. The loop is :meth:`llama_notes.generation.Llama.generate`; its ``on_token``
callback hands each new token to a :class:`TokenStream`.
"""

from __future__ import annotations

import argparse
import sys
import time

from llama_notes.options import WEIGHT_FORMATS, check_sampling

# The KV cache the command builds: a prompt and its continuation share these positions.
MAX_SEQ_LEN = 2048


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="continue a prompt with SmolLM2-135M-Instruct, streaming tokens",
        description="Continue PROMPT with SmolLM2-135M-Instruct through Meta's generate loop, "
        "printing each token as it comes and the tokens per second at the end. "
        r"A literal \n in PROMPT stands for a newline.",
    )
    p.add_argument("prompt", help=r'the text to continue, e.g. "Q: What is the largest animal?\nA:"')
    p.add_argument(
        "--max-gen-len", type=int, default=64,
        help=f"most tokens to generate (default 64); prompt and answer share {MAX_SEQ_LEN} positions",
    )
    p.add_argument("--temperature", type=float, default=0.6, help="0 is greedy (default 0.6)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling threshold (default 0.9)")
    p.add_argument("--seed", type=int, default=1, help="seed of torch's random generator (default 1, as Meta's build)")
    p.add_argument("--echo", action="store_true", help="print the prompt before the generated text")
    p.add_argument("--logprobs", action="store_true", help="list each generated token with its log-probability")
    p.add_argument("--chat", action="store_true", help="send PROMPT as a user message through the chat template")
    p.add_argument("--device", default=None, help="cpu, cuda, mps... (default: the best available)")
    p.add_argument(
        "--weights", choices=WEIGHT_FORMATS, default="fp32",
        help="how the model holds its weights: fp32 (default), bf16, or q4, the GGUF file's 4-bit blocks",
    )
    p.add_argument(
        "--compile", action="store_true", help="compile the one-token step first: slow to start, faster per token"
    )
    p.set_defaults(func=run)


class TokenStream:
    """Write the text of a growing list of tokens, as soon as it is complete.

    SmolLM2's byte-level tokens can split one UTF-8 character (an accented letter, an
    emoji) across two tokens; decoding the first alone gives U+FFFD. So the whole list
    is decoded each time and only new text without a trailing U+FFFD is written.
    """

    def __init__(self, tokenizer, out=None):
        self.tokenizer = tokenizer
        self.out = out or sys.stdout
        self.tokens: list[int] = []
        self.printed = 0  # characters of the decoded text written so far

    def push(self, token: int) -> None:
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens)
        if not text.endswith("\ufffd"):
            self._write(text)

    def close(self) -> None:
        """Write what is left, even an incomplete character."""
        self._write(self.tokenizer.decode(self.tokens))

    def _write(self, text: str) -> None:
        self.out.write(text[self.printed :])
        self.out.flush()
        self.printed = len(text)


def run(args: argparse.Namespace) -> int:
    try:
        check_options(args)  # before the model loads: a typo costs no wait
        return generate(args)
    except ValueError as e:  # a bad option or device: checked before any token is generated
        print(f"llama-notes generate: error: {e}", file=sys.stderr)
        return 2


def check_options(args: argparse.Namespace) -> None:
    """What can be checked without the model: the sampling rules of ``Llama.generate``, the prompt."""
    check_sampling(args.max_gen_len, args.temperature, args.top_p)
    if not args.prompt.strip():
        raise ValueError("the prompt is empty: give the text to continue")
    if args.max_gen_len >= MAX_SEQ_LEN:
        raise ValueError(f"max_gen_len={args.max_gen_len} does not fit: prompt and answer share {MAX_SEQ_LEN} positions")


def generate(args: argparse.Namespace) -> int:
    from transformers.utils import logging

    from llama_notes.generation import Llama

    logging.disable_progress_bar()
    llama = Llama.build(max_seq_len=MAX_SEQ_LEN, max_batch_size=1, device=args.device, weights=args.weights,
                        seed=args.seed, compile=args.compile)
    tokenizer = llama.tokenizer
    prompt = args.prompt.replace("\\n", "\n")
    if args.chat:
        prompt_tokens = tokenizer.encode_dialog([{"role": "user", "content": prompt}])
    else:
        prompt_tokens = tokenizer.encode(prompt, bos=True, eos=False)
    if len(prompt_tokens) + args.max_gen_len > MAX_SEQ_LEN:
        raise ValueError(
            f"the prompt has {len(prompt_tokens)} tokens: max_gen_len can be at most "
            f"{MAX_SEQ_LEN - len(prompt_tokens)} (prompt and answer share {MAX_SEQ_LEN} positions)"
        )
    if args.compile:  # the first one-token step compiles: do it before the clock starts
        print("Compiling the one-token step...", file=sys.stderr)
        llama.generate([prompt_tokens], max_gen_len=2, temperature=0)
    stream = TokenStream(tokenizer)

    def on_token(cur_pos: int, next_token) -> None:
        if args.echo and cur_pos == len(prompt_tokens):  # the first new token: the checks passed
            stream.out.write(tokenizer.decode(prompt_tokens, skip_special=True))
        token = int(next_token[0])
        if token != tokenizer.eos_id:
            stream.push(token)

    start = time.perf_counter()
    tokens, logprobs = llama.generate(
        [prompt_tokens],
        max_gen_len=args.max_gen_len,
        temperature=args.temperature,
        top_p=args.top_p,
        logprobs=args.logprobs,
        echo=args.echo,
        on_token=on_token,
    )
    elapsed = time.perf_counter() - start
    stream.close()
    print()

    generated = tokens[0][len(prompt_tokens) :] if args.echo else tokens[0]
    if args.logprobs:
        for token, logprob in zip(tokens[0], logprobs[0]):
            print(f"{logprob:9.4f}  {tokenizer.decode([token])!r}")
    print(f"achieved tok/s: {len(generated) / elapsed:.2f} ({len(generated)} tokens in {elapsed:.2f} s)", file=sys.stderr)
    return 0
