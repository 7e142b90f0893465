source .venv/bin/activate                  # the environment make test installed
python snippets/sgd_train_digits.py        # about 5 s
llama-notes train --epochs 5               # about 5 s
llama-notes generate "Q: What is the largest animal?\nA:" --temperature 0   # under a minute
llama-notes doctor                         # about 5 s
