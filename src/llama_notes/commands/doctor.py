"""``llama-notes doctor``: what this machine can run, before a model download says otherwise.

It answers the three questions behind the errors of the source posts: which devices torch sees
(the device error), which ``torch.distributed`` backend ``init_distributed`` would
pick and why (the NCCL error), and which models fit in each device's memory (the
out-of-memory error).
"""

from __future__ import annotations

import argparse
import platform


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="versions, devices, distributed backend, what fits in memory",
        description="Report what this machine offers the examples: package versions, the devices torch "
        "can use, the torch.distributed backend torchrun would get, and which model sizes fit in memory.",
    )
    parser.add_argument("--max-seq-len", type=_size, default=128, help="KV cache positions (default: 128, as in Meta's example)")
    parser.add_argument("--max-batch-size", type=_size, default=4, help="KV cache batch rows (default: 4, as in Meta's example)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(report(args.max_seq_len, args.max_batch_size))
    return 0


def report(max_seq_len: int = 128, max_batch_size: int = 4) -> str:
    """The doctor's report as text."""
    import torch
    import transformers

    from llama_notes import __version__

    lines = [
        f"llama-notes {__version__}, python {platform.python_version()}, {platform.system()} {platform.machine()}",
        f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}), transformers {transformers.__version__}",
        "",
        "devices:",
        *(f"  {name}: {status}" for name, status in _device_status()),
        "",
        f"torch.distributed backend: {_backend_line()}",
    ]
    for device in _devices():
        lines += ["", *_fits(device, max_seq_len, max_batch_size)]
    return "\n".join(lines)


def _device_status() -> list[tuple[str, str]]:
    import torch

    cuda = (
        f"{torch.cuda.device_count()} device(s): "
        + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "not available" + ("" if torch.version.cuda else " (this torch is built without CUDA)")
    )
    mps = "available" if torch.backends.mps.is_available() else "not available"
    return [("cuda", cuda), ("mps", mps), ("cpu", "available")]


def _backend_line() -> str:
    import torch
    import torch.distributed as dist

    from llama_notes.device import distributed_backend

    if not dist.is_available():
        return "none (this torch build has no torch.distributed)"
    backend = distributed_backend()
    cuda, nccl = torch.cuda.is_available(), dist.is_nccl_available()
    why = f"CUDA {'available' if cuda else 'not available'}, NCCL {'built in' if nccl else 'not built in'}"
    rule = "NCCL needs both" if backend == "gloo" else "both present"
    return f"{backend} ({why}; {rule})"


def _devices() -> list:
    """Every device found: each CUDA GPU, Apple's MPS, the CPU."""
    import torch

    devices = [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append(torch.device("mps"))
    return devices + [torch.device("cpu")]


def _fits(device, max_seq_len: int, max_batch_size: int) -> list[str]:
    from llama_notes.memory import GiB, device_memory, fit_table

    memory = device_memory(device)
    kind = "physical RAM" if device.type == "cpu" else "memory"
    if memory is None:
        return [f"fits in {device}: cannot tell, this platform does not report its {kind}"]
    header = (f"fits in {device} ({memory / GiB:.2f} GiB {kind}; weights + KV cache for"
              f" max_seq_len={max_seq_len}, max_batch_size={max_batch_size}):")
    return [header] + ["  " + line for line in fit_table(memory, max_seq_len, max_batch_size).splitlines()]


def _size(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value
