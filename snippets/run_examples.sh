python snippets/sgd_train_digits.py
llama-notes train --epochs 5
llama-notes generate "Q: What is the largest animal?\nA:" --temperature 0
llama-notes doctor
