llama-notes generate --weights q4 --compile --temperature 0 "Q: What is the largest animal?\nA:"
