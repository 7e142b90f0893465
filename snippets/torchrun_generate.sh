torchrun --standalone --nproc_per_node 2 -m llama_notes.generate_distributed \
    --temperature 0 --max-gen-len 16 \
    "I believe the meaning of life is" \
    "Simply put, the theory of relativity states that" \
    "The largest animal on Earth is"
