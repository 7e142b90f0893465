"""The torch.distributed backend this machine gets, and a process group that works with or without torchrun."""

import torch.distributed as dist

from llama_notes.device import init_distributed

info = init_distributed()  # (1)!
infos = [info]
if dist.is_initialized():  # (2)!
    infos = [None] * info.world_size
    dist.all_gather_object(infos, info)  # (3)!
    dist.barrier()  # (4)!
    dist.destroy_process_group()
if info.rank == 0:  # (5)!
    for each in infos:
        print(each)
