"""The per-example loop and the matrix variant: same seed, same mini-batches, same weights."""

from llama_notes.digits import load_data_wrapper
from llama_notes.sgd import Network
from llama_notes.sgd_matrix import MatrixNetwork

training_data, test_data = load_data_wrapper()
loop = Network([64, 30, 10], seed=3)  # (1)!
matrix = MatrixNetwork([64, 30, 10], seed=3)
loop_history = loop.SGD(training_data, 5, 10, 3.0, test_data=test_data)  # (2)!
matrix_history = matrix.SGD(training_data, 5, 10, 3.0, test_data=test_data)

print("test accuracy per epoch, loop:  ", [epoch.correct for epoch in loop_history])
print("test accuracy per epoch, matrix:", [epoch.correct for epoch in matrix_history])
difference = max(abs(p - q).max() for p, q in zip(loop.weights + loop.biases,
                                                   matrix.weights + matrix.biases))
print(f"largest difference between the weights: {difference:.1e}")  # (3)!
print("equal to 1e-12:", difference <= 1e-12)
