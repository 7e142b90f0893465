torchrun --standalone --nproc_per_node 2 snippets/init_distributed.py
