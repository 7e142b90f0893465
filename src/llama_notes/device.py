"""The device fix and the backend choice for ``torch.distributed``.

Two errors from the source posts live here. ``Expected all tensors to be on the same
device`` comes from a tokenizer's tensors left on the CPU while the model sits on
the GPU: :func:`to_model_device` moves them. ``Distributed package doesn't have
NCCL built in`` comes from Meta's ``Llama.build`` asking for NCCL on a machine
without it (macOS, Windows, any CPU-only torch): :func:`distributed_backend`
asks for NCCL only where it exists, and :func:`init_distributed` reads what
``torchrun`` set and falls back to a single process on a plain ``python`` run.
"""

from __future__ import annotations

import copy
import os
from collections import UserDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

DEVICE_TYPES = ("cuda", "mps", "cpu")  # pick_device's order of preference
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# --8<-- [start:to_model_device]
def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter: where its embedding expects the input ids."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError(
            f"{type(model).__name__} has no parameters, so it has no device to move inputs to"
        ) from None


def to_model_device(inputs, model: torch.nn.Module):
    """Move every tensor in ``inputs`` to the device of ``model``'s parameters.

    ``inputs`` is a tensor, a ``BatchEncoding`` (what a tokenizer returns), a dict, or a
    list or tuple of these, nested to any depth. Anything that is not a tensor (a string,
    an int, ``None``) comes back unchanged, and the structure comes back with the same
    type. The input is not modified: ``BatchEncoding.to`` moves in place, this copies.

    This is the source post's fix ``input_ids = input_ids.to(model.device)``, for everything a
    tokenizer can return.
    """
    return _move(inputs, model_device(model))


def _move(x, device: torch.device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, UserDict):  # BatchEncoding: keep its encodings, copy its data
        moved = copy.copy(x)
        moved.data = {k: _move(v, device) for k, v in x.data.items()}
        return moved
    if isinstance(x, Mapping):
        return type(x)({k: _move(v, device) for k, v in x.items()})
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # a namedtuple takes fields, not an iterable
        return type(x)(*(_move(v, device) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(_move(v, device) for v in x)
    return x
# --8<-- [end:to_model_device]


# --8<-- [start:pick_device]
def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer`` if given, else CUDA, then Apple's MPS, then the CPU.

    ``prefer`` is a device name such as ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``;
    a name torch does not know, or a device this machine does not have, raises
    ``ValueError`` instead of failing later at the first tensor moved there.
    """
    if prefer is None:
        for device_type in DEVICE_TYPES:
            if _has(device_type):
                return torch.device(device_type)
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {prefer!r}: expected one of {DEVICE_TYPES}") from e
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"unsupported device {prefer!r}: expected one of {DEVICE_TYPES}")
    if not _has(device.type):
        raise ValueError(f"device {prefer!r} is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {prefer!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def _has(device_type: str) -> bool:
    if device_type == "cuda":
        return torch.cuda.is_available()
    if device_type == "mps":
        return torch.backends.mps.is_available()
    return device_type == "cpu"
# --8<-- [end:pick_device]


# --8<-- [start:distributed_backend]
def distributed_backend(name: str | None = None) -> str:
    """The ``torch.distributed`` backend to use: ``"nccl"`` where CUDA and NCCL exist, else ``"gloo"``.

    NCCL moves CUDA tensors between NVIDIA GPUs; a torch built without CUDA (every macOS
    and CPU-only build) has no NCCL, and asking for it is what raises ``Distributed
    package doesn't have NCCL built in``. Gloo runs on the CPU everywhere. An explicit
    ``name`` is checked: a backend torch does not know, or one this build lacks, raises
    ``ValueError``.
    """
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed package")
    if name is None:
        return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    name = name.lower()
    available = {
        "gloo": dist.is_gloo_available(),
        "nccl": dist.is_nccl_available() and torch.cuda.is_available(),
        "mpi": dist.is_mpi_available(),
        "ucc": dist.is_ucc_available(),
    }
    if name not in available:
        raise ValueError(f"unknown torch.distributed backend {name!r}: expected one of {sorted(available)}")
    if not available[name]:
        raise ValueError(f"backend {name!r} is not available in this torch build on this machine")
    return name
# --8<-- [end:distributed_backend]


# --8<-- [start:init_distributed]
@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: its global ``rank`` among ``world_size`` processes, its
    ``local_rank`` on this machine (the GPU it drives), and the ``backend`` in use."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group ``torchrun`` set up, or run as a single process.

    Under ``torchrun`` every process finds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment; they are checked (all present,
    integers, ``0 <= RANK < WORLD_SIZE``) before the process group is created. On a plain
    ``python`` run none of them is set: the result is ``world_size=1`` and no process group
    is created, since one process has no one to talk to. Where CUDA exists, each process
    takes the GPU numbered by its local rank. Calling it again returns the existing group.
    """
    if dist.is_initialized():
        return _existing_group(backend)
    backend = distributed_backend(backend)
    env = {name: os.environ.get(name) for name in TORCHRUN_VARS}
    if env["RANK"] is None and env["WORLD_SIZE"] is None:
        return DistInfo(rank=0, world_size=1, local_rank=0, backend=backend)
    info = _check_env(env, backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)  # before NCCL: each rank owns one GPU
    dist.init_process_group(backend, rank=info.rank, world_size=info.world_size)
    return info


def _existing_group(backend: str | None) -> DistInfo:
    existing = dist.get_backend()
    if backend is not None and distributed_backend(backend) != existing:
        raise ValueError(f"a {existing!r} process group exists already; cannot switch to {backend!r}")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), existing)


def _check_env(env: dict[str, str | None], backend: str) -> DistInfo:
    missing = [name for name, value in env.items() if value is None]
    if missing:
        raise ValueError(f"RANK or WORLD_SIZE is set, but not {', '.join(missing)}: launch with torchrun")
    numbers = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            numbers[name] = int(env[name])
        except ValueError:
            raise ValueError(f"{name}={env[name]!r} is not an integer") from None
    rank, world_size, local_rank = numbers["RANK"], numbers["WORLD_SIZE"], numbers["LOCAL_RANK"]
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE={world_size} must be at least 1")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} must be in [0, WORLD_SIZE={world_size})")
    if not 0 <= local_rank <= rank:
        raise ValueError(f"LOCAL_RANK={local_rank} must be in [0, RANK={rank}]")
    if not 0 < numbers["MASTER_PORT"] < 65536:
        raise ValueError(f"MASTER_PORT={numbers['MASTER_PORT']} is not a TCP port")
    if torch.cuda.is_available() and local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return DistInfo(rank, world_size, local_rank, backend)
# --8<-- [end:init_distributed]
