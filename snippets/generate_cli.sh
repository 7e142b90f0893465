llama-notes generate "Q: What is the largest animal?\nA:" --temperature 0
