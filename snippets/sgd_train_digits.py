"""Nielsen's chapter 1 run on scikit-learn's 8x8 digits: [64, 30, 10], 30 epochs, mini-batches of 10, eta 3.0."""

from llama_notes.digits import load_data_wrapper
from llama_notes.sgd_matrix import MatrixNetwork

training_data, test_data = load_data_wrapper()  # (1)!
net = MatrixNetwork([64, 30, 10], seed=3)  # (2)!
history = net.SGD(training_data, 30, 10, 3.0, test_data=test_data)  # (3)!

for epoch in history:
    print(f"Epoch {epoch.epoch}: {epoch.correct} / {epoch.total}, cost {epoch.cost:.4f}")  # (4)!
print(f"test accuracy: {history[-1].accuracy:.2%}")
