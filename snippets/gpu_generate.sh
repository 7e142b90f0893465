source .venv/bin/activate
llama-notes doctor    # cuda: the card's name; torch.distributed backend: nccl
llama-notes generate "Q: What is the largest animal?\nA:" --temperature 0 --device cuda
