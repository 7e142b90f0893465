"""SmolLM2 as its GGUF file ships it: 4-bit blocks, multiplied by the package's own 4-bit kernel."""

from llama_notes.generation import Llama

generator = Llama.build(max_seq_len=128, max_batch_size=2, weights="q4")  # (1)!
print(generator.model.layers[0].feed_forward)  # (2)!
print(generator.model.output)
print()
prompts = [
    "Q: What is the largest animal?\nA:",
    "The capital of France is",
]
results = generator.text_completion(prompts, max_gen_len=32, temperature=0)  # (3)!
for prompt, result in zip(prompts, results):
    print(prompt + result["generation"])
    print("---")
