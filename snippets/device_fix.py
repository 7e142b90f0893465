"""The device fix from the source post, on SmolLM2: the tokenizer's tensors go to the model's device."""

import torch

from llama_notes.device import pick_device, to_model_device
from llama_notes.smollm2 import load_hf

model, tokenizer = load_hf(dtype=torch.float32)  # (1)!
model = model.to(pick_device())  # (2)!

prompt = "Q: What is the largest animal?\nA:"
input_ids = tokenizer(prompt, return_tensors="pt").input_ids  # (3)!
input_ids = input_ids.to(model.device)  # (4)!

inputs = to_model_device(tokenizer(prompt, return_tensors="pt"), model)  # (5)!
print("same ids, same device:", torch.equal(inputs["input_ids"], input_ids))

generation_output = model.generate(**inputs, max_new_tokens=32, do_sample=False)  # (6)!
print(tokenizer.decode(generation_output[0]))
