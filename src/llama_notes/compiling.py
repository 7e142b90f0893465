"""Compiling the one-token step of a :class:`~llama_notes.model.Transformer` with ``torch.compile``.

The model code is the same compiled or not; this module holds what TorchInductor
needs to be told, as PyTorch's gpt-fast keeps its compile settings apart from its
model.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from llama_notes.aot_step import AOTStep
from llama_notes.model import Transformer
from llama_notes.quant import Int4Linear


# Time Inductor's C++ GEMM templates against ATen's kernels, without printing the tables.
AUTOTUNE = {
    "max_autotune": True,
    "max_autotune_gemm_backends": "CPP,ATEN",
    "autotune_num_choices_displayed": 0,
    "max_autotune_report_choices_stats": False,
}
# What Dynamo does before each step. It checks that every module and tensor is the one it
# compiled for: with the first two, a module whose attribute dict has not changed since
# (CPython's dict version tags) is skipped with its whole subtree; SmolLM2 has some 280
# modules, more than the option's default limit of 256. And a dynamic step takes float
# attributes as inputs: unless specialized, each norm's eps would become a new tensor
# before every step (61 of them in SmolLM2).
DYNAMO = {
    "use_recursive_dict_tags_for_guards": True,
    "max_saved_pointers_for_recursive_dict_tags_check": 1024,
    "specialize_float": True,
}
# Sizes that happen to be equal at the first compile stay separate symbols: the first step of
# a batch of 3 prompts, the shortest 3 tokens long, has batch size, position and the tokens'
# storage offset all 3, and "duck sizing" would tie them and compile again at the next step.
NO_DUCK_SIZING = torch.fx.experimental._config.patch(use_duck_shape=False)
# The autotuner reads a deprecated storage API; the warning is PyTorch's, not the reader's.
warnings.filterwarnings("ignore", message="TypedStorage is deprecated", module="torch._inductor")


# --8<-- [start:compile_decoding]
def compile_decoding(model: Transformer) -> Transformer:
    """Compile every one-token step (``seqlen == 1``) of ``model`` with TorchInductor;
    returns ``model``.

    Generating a token for one prompt reads every weight once, so its time should be
    the time to stream the weights from memory. Run op by op, some fifty small
    operations per layer each pay a call from Python, and on a CPU they run slower
    still after each matrix product has pushed their code and data out of the
    caches. Compiled, the small operations become a few fused kernels called from
    C++. Prompts (``seqlen > 1``) run op by op, since they are processed once, except
    the prompt of one row of a 4-bit model on the CPU when only its last logits are
    wanted (``last_only``): op by op, its small operations took about two fifths of its
    time, so it is compiled ahead of time as well.

    On the CPU, the step of one prompt is exported and compiled ahead of time
    (:class:`~llama_notes.aot_step.AOTStep`): one C++ call per token, without the work
    ``torch.compile`` does around its kernels at every call. Other steps (a batch of
    prompts, a GPU, float16 weights) go through ``torch.compile``. The first step of
    batch 1, and the first of a larger batch, each compile (one to two minutes on a
    2-core CPU, seconds once it is in the package's or TorchInductor's on-disk cache)
    and need a C++ compiler on the CPU, Triton on a GPU. On the CPU the step of a
    batch of prompts has float weights frozen into it and repacked for oneDNN, whose
    kernels multiply several rows at close to the speed of one: change the weights,
    and compile again. So has every step of a float16 model, whose matrix products
    TorchInductor also times against its own C++ templates at the first compile
    (``max_autotune``), which takes longer; the products of a bfloat16 or 4-bit model
    are the package's own kernels (:mod:`llama_notes.bf16`, :mod:`llama_notes.quant`),
    called as they are. In float32 the logits differ
    from the op-by-op ones by rounding only (about 1e-5), because the fused kernels add
    in another order. In bfloat16 that difference would be a hundred times larger, and
    would change greedy answers where two tokens are close: the fused kernels round
    every intermediate result to bfloat16 as the op-by-op model does
    (``emulate_precision_casts``), and most steps give its logits bit for bit. Not
    every step: a float32 result that the compiled step computes in another order
    can round one bfloat16 value the other way, and the difference carries on through
    the layers (a few tenths of a logit, in one 4-bit SmolLM2 step seen).
    """
    # dynamic: one compiled step serves every start_pos, another every batch size above 1.
    # The guards on the modules stay (DYNAMO keeps them cheap): every Transformer shares
    # the code of _forward, and only they tell one model from another.
    compiled = torch.compile(model._forward, dynamic=True, fullgraph=True)
    low_precision = model.norm.weight.dtype in (torch.bfloat16, torch.float16)  # the activations' dtype
    # 16-bit nn.Linear layers: float16 ones (bfloat16 ones are the package's kernel on the CPU)
    linear_16bit = low_precision and any(isinstance(m, nn.Linear) for m in model.modules())
    # One row on the CPU, weights as they are: compiled ahead of time, without Dynamo's per-step
    # work. A bfloat16 or 4-bit step writes its attention out (aot_step.attention_as_sums): a
    # float32 step, its time in MKL's products, gained nothing measurable from it, and the
    # written-out attention makes a SmolLM2 compile about half as long again.
    one_row = prompt_row = None
    if not linear_16bit:
        one_row = AOTStep(model, {"emulate_precision_casts": low_precision}, attention_written_out=low_precision)
    # The prompt of one row too, with 4-bit weights: op by op, its small operations took about
    # two fifths of an 11-token prompt's time. A float32 or bfloat16 prompt spends most of its
    # time in MKL's products, and a second compile would add to the wait before the first token.
    if any(isinstance(m, Int4Linear) for m in model.modules()):
        prompt_row = AOTStep(model, {"emulate_precision_casts": True}, attention_written_out=True, prompt=True)

    def decode_step(tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
        if one_row is not None and tokens.device.type == "cpu" and tokens.shape[0] == 1:
            return one_row(tokens, start_pos)
        # On the CPU, one float32 row streams the weights fastest through MKL's
        # matrix-vector product; several rows, and 16-bit weights, through oneDNN's
        # kernels on frozen, repacked weights or Inductor's own templates.
        # Set around each call, not as torch.compile(options=...): the tracer reads
        # `freezing` itself, outside those options, whenever a new shape compiles.
        options = {}
        if tokens.device.type == "cpu":
            options = {"cpp_wrapper": True, "freezing": tokens.shape[0] > 1 or linear_16bit}
            if linear_16bit:
                options.update(AUTOTUNE)
        if low_precision:
            options["emulate_precision_casts"] = True  # on the GPU too: it is about the numbers
        with torch._inductor.config.patch(options), torch._dynamo.config.patch(DYNAMO), NO_DUCK_SIZING:
            return compiled(tokens, start_pos)

    decode_step.one_row = one_row
    model.decode_step = decode_step
    if prompt_row is not None:

        def prefill_step(tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
            if tokens.device.type == "cpu" and tokens.shape[0] == 1:
                return prompt_row(tokens, start_pos)
            return model._forward(tokens, start_pos, last_only=True)

        prefill_step.one_row = prompt_row
        model.prefill_step = prefill_step
    return model
# --8<-- [end:compile_decoding]
