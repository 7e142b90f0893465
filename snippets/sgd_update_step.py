"""One step of the update from the source post, on a real mini-batch of digits: how far the weights move."""

import numpy as np

from llama_notes.digits import load_data_wrapper
from llama_notes.sgd import Network

training_data, test_data = load_data_wrapper()
mini_batch = training_data[:10]  # (1)!
eta = 3.0  # (2)!

net = Network([64, 30, 10], seed=3)  # (3)!
weights, biases = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
nabla_b, nabla_w = net.sum_gradients(mini_batch)  # (4)!
cost_before = net.total_cost(mini_batch)

net.update_mini_batch(mini_batch, eta)  # (5)!

for l, (w, w_new, nw) in enumerate(zip(weights, net.weights, nabla_w)):
    step = w_new - w
    print(f"weights[{l}] {w.shape}: largest move {np.abs(step).max():.4f}, "
          f"step == -(eta/len(mini_batch))*nabla_w: {np.allclose(step, -(eta / len(mini_batch)) * nw)}")  # (6)!
for l, (b, b_new) in enumerate(zip(biases, net.biases)):
    print(f"biases[{l}] {b.shape}: largest move {np.abs(b_new - b).max():.4f}")
print(f"cost on this mini-batch: {cost_before:.4f} before, {net.total_cost(mini_batch):.4f} after")  # (7)!
