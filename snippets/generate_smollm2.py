"""Greedy generation with SmolLM2-135M-Instruct through Meta's generate loop."""

from llama_notes.generation import Llama

generator = Llama.build(max_seq_len=128, max_batch_size=2)  # (1)!
prompts = [
    "Q: What is the largest animal?\nA:",  # (2)!
    "The capital of France is",
]
results = generator.text_completion(prompts, max_gen_len=32, temperature=0)  # (3)!
for prompt, result in zip(prompts, results):
    print(prompt + result["generation"])  # (4)!
    print("---")
